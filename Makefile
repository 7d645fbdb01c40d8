# Two commands do all the set-up on a fresh machine (Python 3.11 and pip; no conda):
#   make demo   install into .venv, then run the whole DAG on the embedded synthetic default
#   make test   install into .venv (with test tools), then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install demo test lint report clean-demo slurm-deps test-slurm slurm-up slurm-down

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

# The SLURM tests (tests/test_slurm.py) start a real single-node cluster from Debian's
# packages, as root; without them those tests skip (and fail under CI=true).
SLURM_PACKAGES := munge slurmctld slurmd slurm-client slurmdbd mariadb-server iproute2
slurm-deps:
	dpkg -s $(SLURM_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SLURM_PACKAGES); }

test-slurm: install
	$(BIN)/python -m pytest -q -m slurm

# A cluster to try the profile by hand: `make slurm-up`, then
#   .venv/bin/python tests/slurm_cluster.py run .slurm -- .venv/bin/snakemake --profile profiles/slurm ...
slurm-up: install
	$(BIN)/python tests/slurm_cluster.py up .slurm

slurm-down:
	$(BIN)/python tests/slurm_cluster.py down .slurm
