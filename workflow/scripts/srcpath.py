"""Puts the workflow's own src/ first on sys.path, so that a rule's script imports the
tstransfer package of the workflow it belongs to, wherever the interpreter comes from.

Every script of a ``script:`` rule imports this module first. The rules' conda envs
(envs/*.yaml) do not install the project: Snakemake builds each env from a copy of its
file under .snakemake/conda/, where a path to the project (``-e ..``) would not hold.
Snakemake puts the script's own folder (this one) on sys.path, so ``import srcpath``
finds this file; the training rules' shell commands get the same folder through
PYTHONPATH instead ($TSTRANSFER_SRC, rules/common.smk).
"""

import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")
if SRC not in sys.path[:1]:
    sys.path.insert(0, SRC)
