#!/usr/bin/env bash
# Make this machine able to run Daemonflow's sandboxes: a Docker engine that answers and the sandbox
# image. Idempotent: each step is skipped when already done, so CI and developers can run it every
# time. Run as root (it may install packages and start dockerd).
#
#   deploy/provision-docker.sh
#
# Environment:
#   DAEMONFLOW_SANDBOX_IMAGE  image to ensure (default daemonflow-sandbox:latest, as in config/settings.py)
#   DOCKERD_LOG               where a dockerd started here logs (default /var/log/dockerd.log, else /tmp)
#   DOCKERD_WAIT_S            how long to wait for the engine to answer (default 60)
#
# Without systemd (containers, CI runners, this project's dev VMs) dockerd is started in the
# background with nohup; it lives until the machine stops. With systemd, the docker unit is started.
set -euo pipefail

IMAGE="${DAEMONFLOW_SANDBOX_IMAGE:-daemonflow-sandbox:latest}"
WAIT_S="${DOCKERD_WAIT_S:-60}"
HERE="$(cd "$(dirname "$0")" && pwd)"
T0=$SECONDS

say() { printf 'provision-docker: %s\n' "$*"; }
elapsed() { printf '%ss' "$((SECONDS - $1))"; }

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        say "need root to $1 (re-run with sudo)" >&2
        exit 1
    fi
}

default_log() {
    if [ -n "${DOCKERD_LOG:-}" ]; then echo "$DOCKERD_LOG"
    elif [ -w /var/log ]; then echo /var/log/dockerd.log
    else echo /tmp/dockerd.log
    fi
}

dockerd_running() {
    [ -r /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null
}

ensure_engine() {
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        say "engine: already running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
        return
    fi
    local t=$SECONDS
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        need_root "install docker.io"
        say "engine: dockerd or the docker CLI missing, installing docker.io with apt-get ..."
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends docker.io >/dev/null
        say "engine: docker.io installed in $(elapsed "$t")"
        # The package's postinst may have started the engine (systemd hosts).
        if docker info >/dev/null 2>&1; then
            say "engine: started by the package"
            return
        fi
    fi
    local log
    log="$(default_log)"
    if dockerd_running; then
        say "engine: dockerd is starting (pid $(cat /var/run/docker.pid)), waiting for it"
    elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        need_root "start the docker service"
        say "engine: starting the docker unit with systemctl"
        systemctl start docker || true
    else
        need_root "start dockerd"
        say "engine: starting dockerd in the background (log: $log)"
        nohup dockerd >>"$log" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + WAIT_S))
    until docker info >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "engine: no answer from 'docker info' after ${WAIT_S}s; last lines of $log:" >&2
            tail -n 40 "$log" >&2 2>/dev/null || journalctl -u docker -n 40 --no-pager >&2 || true
            exit 1
        fi
        sleep 0.5
    done
    say "engine: running ($(docker version --format '{{.Server.Version}}')) after $(elapsed "$t")"
}

ensure_image() {
    if docker image inspect "$IMAGE" >/dev/null 2>&1; then
        say "image: $IMAGE already present"
        return
    fi
    local t=$SECONDS
    say "image: $IMAGE missing, building it offline (debootstrap) ..."
    "$HERE/sandbox/build-offline.sh" "$IMAGE"
    say "image: $IMAGE built in $(elapsed "$t")"
}

ensure_engine
ensure_image
say "done in $(elapsed "$T0")"
