# Entry points of the study. `make help` lists them.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Stages run `python`: the project's environment comes first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup repro test test-fast lint format check ui bench clean

help: ## Show this list of targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(INSTALLED) ## Create .venv and install the project with its test tools

repro: setup ## Run the whole pipeline: data, checks, training, figures, report
	$(BIN)/dvc repro

test: setup ## Run the whole test suite, end-to-end pipeline runs included
	$(BIN)/pytest

test-fast: setup ## Run the test suite without the slow end-to-end runs
	$(BIN)/pytest -m "not slow"

lint: setup ## Check lint and formatting with ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## Reformat the code with ruff
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: setup ## Check committed results against thresholds.yaml and against the code
	$(BIN)/nnlab check

ui: setup ## Open the MLflow UI on 127.0.0.1:5000 over the project's store
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
		--default-artifact-root file://$(CURDIR)/mlartifacts

bench: setup ## Benchmarks: gradients, training per backend, whole stages, pipeline wall time
	$(BIN)/python bench/gradient.py
	$(BIN)/python bench/training.py
	$(BIN)/python bench/stages.py
	$(BIN)/python bench/pipeline.py

clean: ## Remove the environment and caches (keeps data, results and the MLflow store)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
