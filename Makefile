# Two commands do all the set-up on a fresh machine (Python 3.11 and the package registries):
#   make repro [PROFILE=smoke|paper]   install, get data/, run the DVC pipeline
#   make test                          install, run the whole test suite
# Both create .venv on first use and reinstall only when requirements.lock, pyproject.toml
# or requirements-nodeps.txt change (a stamp file records the hash), so a second run starts working within seconds.

PYTHON  ?= python3
VENV    ?= .venv
PROFILE ?=
PYTEST_ARGS ?=
# Stale stages run on a local Dask cluster (`latentgeo repro`, docs/cluster.md): WORKERS=N worker
# processes (default: the profile's cluster.workers, else 2, measured fastest on 2 cores);
# WORKERS=0 runs plain sequential `dvc repro` instead. Both leave the same dvc.lock.
WORKERS ?=
# SKIP_INSTALL=1 uses VENV as it is (the end-to-end tests hand over the environment they run in).
SKIP_INSTALL ?=
# make repro ends with `latentgeo verify` against the committed results (docs/reproducibility.md):
# VERIFY=strict fails the target when they were not reproduced; VERIFY=report only says so.
VERIFY ?= strict

BIN     := $(VENV)/bin
PIN_HASH := $(shell cat requirements.lock requirements-nodeps.txt pyproject.toml | sha256sum | cut -c1-16)
STAMP   := $(VENV)/.installed-$(PIN_HASH)
ENV_READY := $(if $(SKIP_INSTALL),,$(STAMP))
export PATH := $(abspath $(BIN)):$(PATH)
export HF_HUB_DISABLE_TELEMETRY := 1
export DVC_NO_ANALYTICS := 1

.PHONY: install repro test test-fast pull lock clean-venv help smoke-reference

help:
	@echo "make repro [PROFILE=smoke|paper] [WORKERS=N]  reproduce the pipeline (default: params.yaml as it is)"
	@echo "make test                         run the test suite"
	@echo "make test-fast                    the suite without the slow tests (real weights, notebooks, pipelines): under 2 min"
	@echo "make smoke-reference              regenerate the smoke profile's committed reference results"
	@echo "make pull                         fetch data/ and cached outputs from remote storage"
	@echo "make lock                         re-pin requirements.lock from requirements.in"

install: $(STAMP)

$(STAMP): requirements.lock requirements-nodeps.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

repro: $(ENV_READY)
	@if [ -n "$(PROFILE)" ]; then $(BIN)/latentgeo params use $(PROFILE); fi
	$(BIN)/latentgeo params check params.yaml
	$(BIN)/latentgeo data get
	$(if $(filter 0,$(WORKERS)),$(BIN)/dvc repro,$(BIN)/latentgeo repro$(if $(WORKERS), --workers $(WORKERS)))
	$(BIN)/latentgeo verify --quiet --no-reference-ok$(if $(filter report,$(VERIFY)), || true)

# The smoke profile's committed reference (tests/reference/smoke), rerun from this working tree;
# regenerate it whenever the code changes what the smoke pipeline writes.
smoke-reference: $(ENV_READY)
	$(BIN)/python scripts/smoke_reference.py

pull: $(ENV_READY)
	$(BIN)/latentgeo remote pull
	$(BIN)/latentgeo data get

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests marked slow (real packaged weights, notebooks, DVC, pipelines).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lock:
	rm -rf /tmp/latentgeo-lock && $(PYTHON) -m venv /tmp/latentgeo-lock
	/tmp/latentgeo-lock/bin/pip install --quiet -r requirements.in
	{ sed -n '/^#/p' requirements.lock; \
	  /tmp/latentgeo-lock/bin/pip freeze --all | grep -E '^setuptools=='; \
	  /tmp/latentgeo-lock/bin/pip freeze --exclude-editable | sed -E 's/^torch==([0-9.]+)\+cpu$$/torch==\1/'; \
	} > requirements.lock.new && mv requirements.lock.new requirements.lock

clean-venv:
	rm -rf $(VENV)
