# Two commands do all the set-up on a fresh machine (Python 3.11 and pip; no conda):
#   make demo   install into .venv, then run the whole DAG on the embedded synthetic default
#   make test   install into .venv (with test tools), then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install demo test lint report clean-demo system-deps slurm-deps browser-deps test-slurm slurm-up slurm-down

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

# Debian packages some tests need, installed as root (.ci/run does `make system-deps`):
# - the SLURM tests (tests/test_slurm.py) start a real single-node cluster;
# - the report test (tests/test_report_browser.py) screenshots the summary page in
#   headless Chromium.
# Without them those tests skip (and fail under CI=true).
SLURM_PACKAGES := munge slurmctld slurmd slurm-client slurmdbd mariadb-server iproute2
BROWSER_PACKAGES := chromium
define apt_install
	dpkg -s $(1) >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(1); }
endef

system-deps:
	$(call apt_install,$(SLURM_PACKAGES) $(BROWSER_PACKAGES))

slurm-deps:
	$(call apt_install,$(SLURM_PACKAGES))

browser-deps:
	$(call apt_install,$(BROWSER_PACKAGES))

test-slurm: install
	$(BIN)/python -m pytest -q -m slurm

# A cluster to try the profile by hand: `make slurm-up`, then
#   .venv/bin/python tests/slurm_cluster.py run .slurm -- .venv/bin/snakemake --profile profiles/slurm ...
slurm-up: install
	$(BIN)/python tests/slurm_cluster.py up .slurm

slurm-down:
	$(BIN)/python tests/slurm_cluster.py down .slurm
