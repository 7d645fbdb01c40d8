#!/bin/sh
# Installs the pinned project into a Debian bookworm image, as root: Debian's Python 3.11,
# a virtual environment at /opt/tstransfer/venv with the project (not editable) and every
# pinned dependency of its train and workflow extras (train includes data and analysis),
# and TensorFlow's CUDA libraries as wheels (no system CUDA needed; the host's driver is
# bound in by `apptainer --nv`).
#
# The one set of install steps for every way the image is made: containers/tstransfer.def
# (Apptainer) and containers/Dockerfile run it as their build step, and
# containers/build-rootfs.sh runs it in a debootstrapped root filesystem to test it here.
# Pins: pyproject.toml, and the one below (tests/test_pins.py checks they agree).
#   sh install.sh SOURCE    SOURCE: a copy of the repository (pyproject.toml, src/, ...)
set -eu
SOURCE=${1:-/opt/tstransfer/source}
VENV=/opt/tstransfer/venv

export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s python3.11 python3-venv ca-certificates >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3-venv ca-certificates
    rm -rf /var/lib/apt/lists/*
fi

python3.11 -m venv "$VENV"
# The project's own pins (pyproject.toml) and TensorFlow's CUDA wheels at the same version.
"$VENV/bin/python" -m pip install --no-cache-dir "$SOURCE[train,workflow]" "tensorflow[and-cuda]==2.21.0"
"$VENV/bin/python" -m pip check
# What the image runs: `python` and `snakemake` from the venv (PATH, in the def file and
# Dockerfile); the workflow's rules call `python`, which Debian itself does not provide.
"$VENV/bin/python" -c "import tstransfer, tensorflow, snakemake; print('tstransfer', tstransfer.__version__, 'tensorflow', tensorflow.__version__)"
