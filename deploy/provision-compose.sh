#!/usr/bin/env bash
# Make `docker-compose config` available to validate docker-compose.yml (tests/test_deploy.py).
# Idempotent. Uses the Compose v2 plugin when present, else Debian's docker-compose (v1.29), which
# needs no registry. Run as root to install; otherwise it only says what is missing.
set -euo pipefail

say() { printf 'provision-compose: %s\n' "$*"; }

if docker compose version >/dev/null 2>&1; then
    say "docker compose $(docker compose version --short 2>/dev/null) available"
    exit 0
fi
if command -v docker-compose >/dev/null 2>&1; then
    say "docker-compose $(docker-compose version --short 2>/dev/null) available"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    say "no docker compose; install it (as root: apt-get install docker-compose)" >&2
    exit 0
fi
say "installing docker-compose with apt-get ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
say "docker-compose $(docker-compose version --short 2>/dev/null) installed"
