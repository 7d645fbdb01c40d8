# Two commands do all the set-up on a fresh machine (Python 3.11 and pip; no conda):
#   make demo   install into .venv, then run the whole DAG on the embedded synthetic default
#   make test   install into .venv (with test tools), then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
# The suite in three processes (pytest-xdist) on 2 cores: the SLURM tests, mostly waiting on the
# scheduler, beside everything else; work units as tests/conftest.py groups them.
# `make test PYTEST_PARALLEL=` runs it in one.
PYTEST_PARALLEL ?= -n 3

.PHONY: install demo test lint report clean-demo system-deps slurm-deps browser-deps test-slurm slurm-up slurm-down ucr-data cff-schema study-real env-wheels container-test

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

test: install ucr-data cff-schema env-wheels
	$(BIN)/python -m pytest -q $(PYTEST_PARALLEL)

# Real UCR/UEA datasets (the tests' tests/ucr_data.py, config/real.yaml's study): the aeon
# 1.6.0 wheel ships them in aeon/datasets/data/. pip downloads the wheel as a file, checked
# against its sha256, and it is unpacked, never installed: aeon pins pandas < 3.1 and,
# through numba, numpy < 2.4, which this project's pins exclude (own .ts reader instead).
# UCR_PROBLEMS is the one list of problems taken from the wheel: every real problem it
# ships (8 classification, 2 regression). Each is extracted on its own (a stamp per
# problem), so a longer list extracts only the problems not there yet.
# The CFF 1.2.0 JSON schema that tests/test_citation.py checks CITATION.cff against, as the
# cffconvert 2.0.0 wheel ships it (downloaded as a file, checked, unpacked, never installed:
# cffconvert needs jsonschema < 4, below snakemake's); nothing fetched is committed.
CFF_WHEEL := resources/wheels/cffconvert-2.0.0-py3-none-any.whl
CFF_WHEEL_SHA256 := 573c825e4e16173d99396dc956bd22ff5d4f84215cc16b6ab05299124f5373bb
CFF_SCHEMA := resources/cff/schema-1.2.0.json
CFF_SCHEMA_SHA256 := 0b8d22140da702d766df318dcff3a91af2f39521298dcf36d76315fd99cc169b
cff-schema: $(CFF_SCHEMA)
$(CFF_WHEEL): | $(BIN)/activate
	mkdir -p $(dir $@)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: cffconvert==2.0.0 -d $(dir $@)
	echo "$(CFF_WHEEL_SHA256)  $@" | sha256sum -c --quiet
$(CFF_SCHEMA): | $(CFF_WHEEL)
	mkdir -p $(dir $@)
	$(BIN)/python -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('cffconvert/schemas/1.2.0/schema.json'))" $(CFF_WHEEL) > $@.tmp
	echo "$(CFF_SCHEMA_SHA256)  $@.tmp" | sha256sum -c --quiet
	mv $@.tmp $@

# PyPI's wheels of every pip line of envs/*.yaml and of their dependencies (3.4 GB, with
# TensorFlow's CUDA wheels), downloaded as files and never installed here:
# tests/test_envs.py builds the envs from them offline, the way `snakemake --sdm conda`
# would, and containers/build-rootfs.sh looks in them before PyPI. Again when an env file
# changes.
ENV_WHEELS := resources/wheels/envs
ENV_FILES := envs/data.yaml envs/analysis.yaml envs/training.yaml
env-wheels: $(ENV_WHEELS)/.downloaded
$(ENV_WHEELS)/.downloaded: $(ENV_FILES) | $(BIN)/activate
	mkdir -p $(ENV_WHEELS)
	$(BIN)/python -c "import sys, yaml; [print(line) for f in sys.argv[1:] for d in yaml.safe_load(open(f))['dependencies'] \
	  if isinstance(d, dict) for line in d['pip']]" $(ENV_FILES) > $(ENV_WHEELS)/requirements.txt
	$(BIN)/python -m pip download --quiet --only-binary=:all: -d $(ENV_WHEELS) -r $(ENV_WHEELS)/requirements.txt
	touch $@

# The container image's definition tested here without Apptainer (as root, with the
# network; a few minutes and GB): containers/build-rootfs.sh debootstraps Debian bookworm
# into /work/rootfs-tstransfer (ROOTFS=...), runs containers/install.sh in it, the tiny
# config inside it with ch-run, and the tiny config again with this venv's Snakemake and
# `--sdm apptainer` (apptainer stood in for by ch-run). README, "Software on the cluster".
container-test: env-wheels
	$(call apt_install,debootstrap charliecloud-runtime)
	SNAKEMAKE=$(BIN)/snakemake bash containers/build-rootfs.sh

AEON_WHEEL := resources/wheels/aeon-1.6.0-py3-none-any.whl
AEON_SHA256 := d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409
UCR_PROBLEMS := ACSF1 ArrowHead BasicMotions GunPoint ItalyPowerDemand JapaneseVowels OSULeaf \
  PickupGestureWiimoteZ Covid3Month CardanoSentiment
UCR_DIR := resources/ucr
ucr-data: $(foreach p,$(UCR_PROBLEMS),$(UCR_DIR)/$(p)/.extracted)
$(AEON_WHEEL): | $(BIN)/activate
	mkdir -p $(dir $@)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: aeon==1.6.0 -d $(dir $@)
	echo "$(AEON_SHA256)  $@" | sha256sum -c --quiet
$(UCR_DIR)/%/.extracted: | $(AEON_WHEEL)
	echo "$(AEON_SHA256)  $(AEON_WHEEL)" | sha256sum -c --quiet
	rm -rf $(UCR_DIR)/.wheel-$* $(UCR_DIR)/$*
	$(BIN)/python -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  names = [n for n in z.namelist() if n.split('/')[3:4] == [sys.argv[3]]]; \
	  names or sys.exit(f'{sys.argv[1]}: no problem {sys.argv[3]} in aeon/datasets/data/'); \
	  [z.extract(n, sys.argv[2]) for n in names]" $(AEON_WHEEL) $(UCR_DIR)/.wheel-$* $*
	mkdir -p $(UCR_DIR)
	mv $(UCR_DIR)/.wheel-$*/aeon/datasets/data/$* $(UCR_DIR)/$*
	rm -rf $(UCR_DIR)/.wheel-$*
	touch $@

# The study on the real problems (config/real.yaml: every problem a source and a target),
# into results/ as the demo (a fresh clone, or make clean-demo first). The flag
# --replace-workflow-config keeps the Snakefile's default config/demo.yaml from merging
# its datasets and variants into this config.
REAL := --configfile config/real.yaml --replace-workflow-config
study-real: install ucr-data
	$(BIN)/snakemake --cores $(CORES) $(REAL)
	$(BIN)/snakemake $(REAL) --report results/report.html

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
#   .venv/bin/python -m tstransfer.devtools.slurm_cluster run .slurm -- .venv/bin/snakemake --profile profiles/slurm ...
slurm-up: install
	$(BIN)/python -m tstransfer.devtools.slurm_cluster up .slurm

slurm-down:
	$(BIN)/python -m tstransfer.devtools.slurm_cluster down .slurm
