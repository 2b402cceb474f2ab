#!/usr/bin/env bash
# Build the Daemonflow sandbox image without any image registry: debootstrap a minimal Debian
# (python3, git, ca-certificates) from the Debian mirror and `docker import` the root filesystem.
# Same layout as deploy/sandbox/Dockerfile: user `sandbox` uid/gid 1000 with home /home/sandbox,
# /workspace owned by it, WORKDIR /workspace, USER sandbox, CMD sleep infinity.
#
#   deploy/sandbox/build-offline.sh [IMAGE] [--force]
#
# IMAGE defaults to $DAEMONFLOW_SANDBOX_IMAGE or daemonflow-sandbox:latest. An existing image is
# kept unless --force is given. Run as root (debootstrap needs it); installs debootstrap if missing.
#
# Environment:
#   SANDBOX_SUITE   Debian suite (default: this host's codename when it is Debian, else bookworm)
#   SANDBOX_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   TMPDIR          where the temporary root filesystem is built (default /var/tmp; needs ~400 MB)
set -euo pipefail

IMAGE="${DAEMONFLOW_SANDBOX_IMAGE:-daemonflow-sandbox:latest}"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "build-offline: unknown option $arg" >&2; exit 2 ;;
        *) IMAGE="$arg" ;;
    esac
done

say() { printf 'build-offline: %s\n' "$*"; }
T0=$SECONDS

if [ "$(id -u)" -ne 0 ]; then
    say "must run as root (debootstrap creates device nodes and chroots)" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    say "the Docker engine does not answer; run deploy/provision-docker.sh first" >&2
    exit 1
fi
if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    say "$IMAGE already exists (use --force to rebuild)"
    exit 0
fi

host_suite() {
    # shellcheck disable=SC1091
    if [ -r /etc/os-release ] && . /etc/os-release && [ "${ID:-}" = debian ] && [ -n "${VERSION_CODENAME:-}" ]; then
        echo "$VERSION_CODENAME"
    else
        echo bookworm
    fi
}
SUITE="${SANDBOX_SUITE:-$(host_suite)}"
MIRROR="${SANDBOX_MIRROR:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null 2>&1; then
    say "installing debootstrap with apt-get ..."
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

WORK="$(mktemp -d "${TMPDIR:-/var/tmp}/daemonflow-sandbox.XXXXXX")"
ROOTFS="$WORK/rootfs"
cleanup() {
    # debootstrap mounts /proc and /sys inside the target; never let rm walk into them.
    local m
    for m in $(awk -v root="$ROOTFS" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

say "debootstrap $SUITE (minbase + python3 git ca-certificates) from $MIRROR ..."
t=$SECONDS
debootstrap --variant=minbase --include=python3,git,ca-certificates \
    "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    say "debootstrap failed; last lines of its log:" >&2
    tail -n 30 "$WORK/debootstrap.log" >&2
    tail -n 30 "$ROOTFS/debootstrap/debootstrap.log" >&2 2>/dev/null || true
    exit 1
}
say "debootstrap done in $((SECONDS - t))s"

# The user, written directly: minbase does not guarantee useradd, and no chroot is needed.
grep -q '^sandbox:' "$ROOTFS/etc/group" || echo 'sandbox:x:1000:' >>"$ROOTFS/etc/group"
grep -q '^sandbox:' "$ROOTFS/etc/passwd" ||
    echo 'sandbox:x:1000:1000:Daemonflow sandbox:/home/sandbox:/bin/sh' >>"$ROOTFS/etc/passwd"
grep -q '^sandbox:' "$ROOTFS/etc/shadow" || echo 'sandbox:!:19000:0:99999:7:::' >>"$ROOTFS/etc/shadow"
mkdir -p "$ROOTFS/home/sandbox" "$ROOTFS/workspace"
chown 1000:1000 "$ROOTFS/home/sandbox" "$ROOTFS/workspace"
chmod 0755 "$ROOTFS/home/sandbox" "$ROOTFS/workspace"

# Smaller image: package caches, lists, docs and logs are of no use inside a sandbox.
rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* \
       "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log \
       "$ROOTFS"/var/log/apt/* "$ROOTFS"/debootstrap "$ROOTFS"/dev/*
say "root filesystem: $(du -sh --one-file-system "$ROOTFS" | cut -f1)"

OLD_ID="$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
t=$SECONDS
tar --numeric-owner -C "$ROOTFS" -c . | docker import \
    --change 'USER sandbox' \
    --change 'WORKDIR /workspace' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV HOME=/home/sandbox' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change "LABEL daemonflow.image=sandbox daemonflow.build=offline daemonflow.suite=$SUITE" \
    --change 'CMD ["sleep", "infinity"]' \
    --message "daemonflow sandbox: debootstrap $SUITE minbase + python3 git" \
    - "$IMAGE" >/dev/null
say "docker import done in $((SECONDS - t))s"
if [ -n "$OLD_ID" ]; then
    # The replaced image, unless a container still uses it (then Docker refuses and it stays).
    docker image rm "$OLD_ID" >/dev/null 2>&1 && say "removed the previous image ${OLD_ID#sha256:}" || true
fi

docker run --rm "$IMAGE" sh -c 'test "$(id -u)" = 1000 && python3 --version && git --version' |
    sed 's/^/build-offline: check: /'
say "$IMAGE built in $((SECONDS - T0))s ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
