# TCUL teaching kit. `make help` lists the targets; each one bootstraps .venv on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
PROFILE ?= classroom
SEED ?= 0
export MPLBACKEND ?= Agg

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the kit and its dependencies into $(VENV) (first run only) ..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,lab]"
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: install
install: $(STAMP) ## Create .venv and install the kit with its lab and dev extras

.PHONY: demo
demo: $(STAMP) ## The main job: run the whole method on the synthetic worlds, write runs/demo/report.md
	$(PY) -m tcul_helpers demo --profile $(PROFILE) --seed $(SEED)

.PHONY: sweeps
sweeps: $(STAMP) ## Parameter sweeps (lambda_fr, K, crowd density, reappearance) cached under runs/<profile>/seed<S>/sweeps
	$(PY) -m tcul_helpers sweeps --profile $(PROFILE) --seed $(SEED)

.PHONY: test
test: $(STAMP) ## Run every test, notebooks included (TCUL_PROFILE=smoke)
	$(PY) -m pytest -q

.PHONY: lab
lab: $(STAMP) ## Open JupyterLab on notebooks/ with the kit's environment as kernel
	$(PY) -m ipykernel install --user --name tcul-kit --display-name "TCUL kit (.venv)" >/dev/null
	$(PY) -m jupyter lab notebooks/

.PHONY: lint
lint: $(STAMP) ## ruff over the package, tests, benchmarks
	$(PY) -m ruff check tcul_helpers tests benchmarks

.PHONY: bench
bench: $(STAMP) ## Run the benchmark scripts under benchmarks/ (prints figures and ratios)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: clean
clean: ## Remove generated worlds, runs, caches (keeps .venv; `make distclean` removes it too)
	rm -rf data/generated runs .pytest_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +

.PHONY: distclean
distclean: clean ## clean, and remove the virtual environment
	rm -rf $(VENV)

.PHONY: help
help: ## This list
	@echo "TCUL teaching kit — make targets (PROFILE=$(PROFILE), SEED=$(SEED)):"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
