#!/bin/bash
# Tests the image definition on this Debian machine, without Apptainer: builds the image's
# root filesystem from Debian's packages (debootstrap, the same bookworm the def file's
# docker://debian:bookworm-slim is) and runs containers/install.sh in it, as the def
# file's %post does; then runs the tiny config inside it with Charliecloud's user-namespace
# runtime (ch-run), as `apptainer exec` would run it on a cluster, and once more with
# Snakemake on the host and `--sdm apptainer` putting every job in it. `make container-test`.
#
# Needs root (debootstrap, chroot) and the network (Debian's mirror, PyPI). Not part of
# the test suite: it downloads a few GB and takes minutes.
#   ROOTFS   where the root filesystem goes (default /work/rootfs-tstransfer; outside
#            the repository, never committed)
#   MIRROR   the Debian mirror (default: the first one apt uses here, else deb.debian.org)
#   WHEELS   a folder of wheels pip looks in beside PyPI (default resources/wheels/envs,
#            which `make env-wheels` fills; absent: PyPI only)
#   SNAKEMAKE  the host's snakemake for the last step, `--sdm apptainer` with `apptainer`
#            stood in for by ch-run (default .venv/bin/snakemake; absent: step left out)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS=${ROOTFS:-/work/rootfs-tstransfer}
SUITE=bookworm
default_mirror=$(grep -rhoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | head -1 || true)
MIRROR=${MIRROR:-${default_mirror:-http://deb.debian.org/debian}}
WHEELS=${WHEELS:-$REPO/resources/wheels/envs}
SNAKEMAKE=${SNAKEMAKE:-$REPO/.venv/bin/snakemake}   # the host's, for the --sdm apptainer run
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
# The def file's %environment, where `apptainer build` puts it (`apptainer exec` sources
# /.singularity.d/env/*.sh before the command).
mkdir -p "$ROOTFS/.singularity.d/env"
awk '/^%/ {on = ($1 == "%environment"); next} on && NF {sub(/^[ \t]+/, ""); print}' \
    "$REPO/containers/tstransfer.def" > "$ROOTFS/.singularity.d/env/90-environment.sh"
grep -q '^export PATH=/opt/tstransfer/venv/bin:' "$ROOTFS/.singularity.d/env/90-environment.sh"
cleanup
trap - EXIT
built=$(date +%s)
echo "root filesystem built in $((built - start)) s: $(du -sh "$ROOTFS" | cut -f1)"

step "the tiny config inside the image (ch-run, user namespace)"
rm -rf "$RUN"
mkdir -p "$RUN" "$ROOTFS/mnt/repo" "$ROOTFS/mnt/run"
# Nothing from this machine's environment reaches the jobs but HOME and USER; PATH is
# Apptainer's default with the image's %environment on top (its venv first). The workflow
# is the repository's (bound at /mnt/repo, as a cluster's checkout is bound into the
# container); every interpreter and package comes from the image.
in_image() {
    ch-run --unset-env='*' --set-env=HOME=/mnt/run --set-env=USER=tstransfer \
        --set-env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        -b "$REPO:/mnt/repo" -b "$RUN:/mnt/run" "$ROOTFS" -- \
        sh -c ". /.singularity.d/env/90-environment.sh && cd /mnt/run && $1"
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
echo "tiny config inside the image: $results training jobs in $((ran - built)) s"

# Snakemake on the host, every job in the image: `--sdm apptainer` with the root filesystem
# as the image (a sandbox directory, as Apptainer accepts one) and `apptainer` stood in for
# by ch-run (containers/apptainer-standin.py). Run from a copy of the checkout, as the
# README says to run it on a cluster (the working directory is bound into the container).
if [ -z "$SNAKEMAKE" ] || [ ! -x "$SNAKEMAKE" ]; then
    echo "no host snakemake (SNAKEMAKE=$SNAKEMAKE): --sdm apptainer not tried"
    exit 0
fi
step "--sdm apptainer: Snakemake on this machine, every job in the image"
checkout=$RUN/apptainer/checkout
mkdir -p "$checkout" "$RUN/apptainer/bin"
git -C "$REPO" ls-files -z --cached --others --exclude-standard | (cd "$REPO" && xargs -0 cp --parents -t "$checkout")
cp "$RUN/config.yaml" "$checkout/config.yaml"
ln -sf "$REPO/containers/apptainer-standin.py" "$RUN/apptainer/bin/apptainer"
(cd "$checkout" && PATH="$RUN/apptainer/bin:$PATH" PYTHONPATH="$checkout/src" \
    "$SNAKEMAKE" --sdm apptainer --config container="$ROOTFS" --configfile config.yaml \
    --replace-workflow-config --cores 2 > snakemake.log 2>&1) || { tail -60 "$checkout/snakemake.log"; exit 1; }
done_at=$(date +%s)
tail -3 "$checkout/snakemake.log"
[ -s "$checkout/results/MANIFEST.sha256" ] || { echo "error: no results/MANIFEST.sha256 in $checkout" >&2; exit 1; }
grep -q "Activating singularity image $ROOTFS" "$checkout/snakemake.log"
# The jobs ran in the image: Debian's Python, not this machine's.
image_python=$(in_image 'python -c "import platform; print(platform.python_version())"')
host_python=$("$(dirname "$SNAKEMAKE")/python" -c "import platform; print(platform.python_version())")
job_python=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['versions']['python'])" \
    "$(find "$checkout/results/referent" -name result.json | head -1)")
echo "python: image $image_python, host $host_python, a referent job $job_python"
[ "$job_python" = "$image_python" ]
echo "container test passed: root filesystem built in $((built - start)) s, tiny config in it in $((ran - built)) s, with --sdm apptainer in $((done_at - ran)) s"
