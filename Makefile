# Two commands do all the set-up on a fresh machine (Python 3.11 and pip; no conda):
#   make demo   install into .venv, then run the whole DAG on the embedded synthetic default
#   make test   install into .venv (with test tools), then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install demo test lint report clean-demo

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall whenever the pinned dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules

report: install
	$(BIN)/snakemake --report results/report.html

clean-demo:
	rm -rf results resources/synthetic .snakemake
