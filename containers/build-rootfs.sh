#!/bin/bash
# Tests the image definition on this Debian machine, without Apptainer: builds the image's
# root filesystem from Debian's packages (debootstrap, the same bookworm the def file's
# docker://debian:bookworm-slim is) and runs containers/install.sh in it, as the def
# file's %post does; then runs the tiny config inside it with Charliecloud's user-namespace
# runtime (ch-run), as `apptainer exec` would run it on a cluster. `make container-test`.
#
# Needs root (debootstrap, chroot) and the network (Debian's mirror, PyPI). Not part of
# the test suite: it downloads a few GB and takes minutes.
#   ROOTFS   where the root filesystem goes (default /work/rootfs-tstransfer; outside
#            the repository, never committed)
#   MIRROR   the Debian mirror (default: the first one apt uses here, else deb.debian.org)
#   WHEELS   a folder of wheels pip looks in before PyPI (default resources/wheels/envs,
#            which `make env-wheels` fills; absent: PyPI only)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS=${ROOTFS:-/work/rootfs-tstransfer}
SUITE=bookworm
default_mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -1 || true)
MIRROR=${MIRROR:-${default_mirror:-http://deb.debian.org/debian}}
WHEELS=${WHEELS:-$REPO/resources/wheels/envs}
RUN=${RUN:-$ROOTFS.run}      # the tiny config's working directory (bound at /mnt/run)
export USER=${USER:-root}    # ch-run wants it

step() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
[ "$(id -u)" = 0 ] || { echo "error: build-rootfs.sh needs root (debootstrap, chroot)" >&2; exit 2; }
for tool in debootstrap ch-run; do
    command -v $tool >/dev/null || { echo "error: $tool missing (apt-get install debootstrap charliecloud-runtime)" >&2; exit 2; }
done

start=$(date +%s)
if [ ! -e "$ROOTFS/.debootstrap-done" ]; then
    step "debootstrap $SUITE from $MIRROR into $ROOTFS"
    rm -rf "$ROOTFS"
    debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates \
        "$SUITE" "$ROOTFS" "$MIRROR"
    touch "$ROOTFS/.debootstrap-done"
fi

step "containers/install.sh in the root filesystem (the def file's %files and %post)"
mkdir -p "$ROOTFS/opt/tstransfer/source" "$ROOTFS/wheels"
# %files: what the def file copies, and nothing else (a stale copy is replaced).
rm -rf "$ROOTFS/opt/tstransfer/source"/*
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/LICENSE" "$REPO/src" "$ROOTFS/opt/tstransfer/source/"
cp "$REPO/containers/install.sh" "$ROOTFS/opt/tstransfer/install.sh"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mounts=(proc sys dev)
cleanup() { for m in "${mounts[@]}" wheels; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$ROOTFS/proc"
mount --rbind /sys "$ROOTFS/sys"
mount --rbind /dev "$ROOTFS/dev"
find_links=""
if [ -d "$WHEELS" ]; then
    mount --bind "$WHEELS" "$ROOTFS/wheels"
    find_links=/wheels
fi
# A machine whose HTTPS goes through a proxy with its own CA names that CA's bundle in
# PIP_CERT (as this one does): pip in the image gets it for the build, not the image.
build_env=(PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root PIP_FIND_LINKS="$find_links")
if [ -n "${PIP_CERT:-}" ]; then
    cp "$PIP_CERT" "$ROOTFS/tmp/build-ca.crt"
    build_env+=(PIP_CERT=/tmp/build-ca.crt)
fi
rm -rf "$ROOTFS/opt/tstransfer/venv"
chroot "$ROOTFS" /usr/bin/env -i "${build_env[@]}" sh /opt/tstransfer/install.sh /opt/tstransfer/source
rm -f "$ROOTFS/tmp/build-ca.crt"
cleanup
trap - EXIT
built=$(date +%s)
echo "root filesystem built in $((built - start)) s: $(du -sh "$ROOTFS" | cut -f1)"

step "the tiny config inside the image (ch-run, user namespace)"
rm -rf "$RUN"
mkdir -p "$RUN" "$ROOTFS/mnt/repo" "$ROOTFS/mnt/run"
# Nothing from this machine's environment reaches the jobs but HOME and PATH; the image's
# venv comes first on PATH, as its %environment puts it. The workflow is the repository's
# (bound at /mnt/repo, as a cluster's checkout is bound into the container); every
# interpreter and package comes from the image.
in_image() {
    ch-run --unset-env='*' --set-env=HOME=/mnt/run --set-env=USER=tstransfer \
        --set-env=PATH=/opt/tstransfer/venv/bin:/usr/bin:/bin \
        -b "$REPO:/mnt/repo" -b "$RUN:/mnt/run" "$ROOTFS" -- sh -c "cd /mnt/run && $1"
}
in_image 'python -c "import tensorflow, tstransfer, sys; print(sys.executable, tensorflow.__version__, tstransfer.__file__)"'
# The tiny config of the test suite (tstransfer.devtools.workflow_runs, which reads the
# checkout's config/demo.yaml), written by the image's python.
in_image 'PYTHONPATH=/mnt/repo/src python -c "import yaml; from tstransfer.devtools.workflow_runs import tiny_config; yaml.safe_dump(tiny_config(), open(\"config.yaml\", \"w\"))"'
in_image 'snakemake -s /mnt/repo/Snakefile --configfile config.yaml --replace-workflow-config --cores 2 > snakemake.log 2>&1' \
    || { tail -60 "$RUN/snakemake.log"; exit 1; }
ran=$(date +%s)
tail -3 "$RUN/snakemake.log"
results=$(find "$RUN/results" -name result.json | wc -l)
[ -s "$RUN/results/MANIFEST.sha256" ] || { echo "error: no results/MANIFEST.sha256 in $RUN" >&2; exit 1; }
echo "container test passed: root filesystem built in $((built - start)) s, tiny config ($results training jobs) in $((ran - built)) s inside it"
