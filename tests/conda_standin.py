"""A stand-in for the `conda` command, for tests/test_envs.py: as much of conda as
Snakemake's `--sdm conda` calls, with `conda env create` done by venv and pip.

conda itself (and conda-forge) cannot be reached here. The env files list Python and pip
from conda and everything else as pinned pip lines, so this is what conda would do with
them but for the interpreter: a fresh virtual environment (no system site-packages) of
this machine's Python, which must be the version the file asks for, then the pip section
installed the way conda's own pip installer does it: written to a
``condaenv.<random>.requirements.txt`` beside the env file (Snakemake's copy under
.snakemake/conda/) and run as ``pip install -U -r`` from that folder, so a relative path
in the file resolves against that folder exactly as under conda. Any other conda package
fails the creation. pip is offline: the test sets PIP_NO_INDEX and PIP_FIND_LINKS.

Run as ``python conda_standin.py ROOT_PREFIX ARGS...``; ROOT_PREFIX/bin/activate is the
script Snakemake sources (``source ROOT_PREFIX/bin/activate ENV; cmd``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

VERSION = "24.7.1"  # Snakemake 9 wants conda >= 24.7.1
ACTIVATE = '''# Sourced by Snakemake: `source <root>/bin/activate <env>`.
export CONDA_PREFIX="$1"
export PATH="$1/bin:$PATH"
'''


def create(env_file: Path, prefix: Path) -> int:
    spec = yaml.safe_load(env_file.read_text())
    pip_lines: list[str] = []
    for entry in spec.get("dependencies", []):
        if isinstance(entry, dict):
            pip_lines += entry.get("pip", [])
        elif entry.startswith("python="):
            wanted = entry.split("=", 1)[1]
            have = f"{sys.version_info.major}.{sys.version_info.minor}"
            if not have.startswith(wanted):
                print(f"conda stand-in: {env_file}: python={wanted}, this machine has {have}", file=sys.stderr)
                return 1
        elif entry != "pip":
            print(f"conda stand-in: {env_file}: conda package {entry!r} cannot be installed here "
                  "(conda-forge is not reachable)", file=sys.stderr)
            return 1
    subprocess.run([sys.executable, "-m", "venv", str(prefix)], check=True)
    if pip_lines:
        workdir = env_file.resolve().parent  # conda: the env file's folder
        with tempfile.NamedTemporaryFile("w", dir=workdir, prefix="condaenv.", suffix=".requirements.txt",
                                         delete=False) as requirements:
            requirements.write("\n".join(pip_lines) + "\n")
        try:
            done = subprocess.run(
                [str(prefix / "bin" / "python"), "-m", "pip", "install", "-U", "-r", requirements.name,
                 "--exists-action=b", "--disable-pip-version-check"],
                cwd=workdir,
            )
        finally:
            os.unlink(requirements.name)
        return done.returncode
    return 0


def main(argv: list[str]) -> int:
    root, args = Path(argv[0]), argv[1:]
    if args == ["--version"]:
        print(f"conda {VERSION}")
    elif args[:2] == ["info", "--json"]:
        print(json.dumps({"conda_prefix": str(root), "root_prefix": str(root), "platform": "linux-64",
                          "conda_version": VERSION}))
    elif args[:3] == ["config", "--get", "channel_priority"]:
        print(json.dumps({"get": {"channel_priority": "strict"}, "rc_path": None, "success": True,
                          "warnings": []}))
    elif args[:2] == ["env", "create"]:
        files = [args[i + 1] for i, arg in enumerate(args) if arg == "--file"]
        prefixes = [args[i + 1] for i, arg in enumerate(args) if arg == "--prefix"]
        return create(Path(files[0]), Path(prefixes[0]))
    elif args[:1] == ["clean"]:
        pass
    else:
        print(f"conda stand-in: unsupported command {args}", file=sys.stderr)
        return 1
    return 0


def install(root: Path, bin_dir: Path) -> None:
    """Put `conda` on ``bin_dir`` and the activate script under ``root``."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    (root / "bin" / "activate").write_text(ACTIVATE)
    bin_dir.mkdir(parents=True, exist_ok=True)
    conda = bin_dir / "conda"
    conda.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "{root}" "$@"\n')
    conda.chmod(0o755)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
