#!/usr/bin/env bash
# Make this machine able to run the admin page's browser test: Debian's `chromium` package, which
# Playwright drives through `executable_path` (Playwright never downloads a browser here).
# Idempotent and fast once done (one `command -v`). Run as root to install; as another user it
# only says what is missing.
#
#   deploy/provision-browser.sh
#
# Environment:
#   DAEMONFLOW_CHROMIUM   the browser binary to ensure (default /usr/bin/chromium)
set -euo pipefail

CHROMIUM="${DAEMONFLOW_CHROMIUM:-/usr/bin/chromium}"
say() { printf 'provision-browser: %s\n' "$*"; }

if [ -x "$CHROMIUM" ]; then
    say "chromium: present ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM"))"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "chromium is missing at $CHROMIUM; the browser test will be skipped (install: sudo bash deploy/provision-browser.sh)"
    exit 0
fi
T0=$SECONDS
say "chromium: missing, installing the Debian package with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
# The apt lock may be held by another provisioning step running at the same time: wait for it.
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
if [ ! -x "$CHROMIUM" ]; then
    say "chromium was installed but $CHROMIUM does not exist" >&2
    exit 1
fi
say "chromium: installed in $((SECONDS - T0))s ($("$CHROMIUM" --version 2>/dev/null))"
