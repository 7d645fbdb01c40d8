"""Our referent models beside the authors' published ones, from the command line.

    python -m tstransfer.analysis.referents RESULTS_DIR PUBLISHED [--label TEXT] [--csv OUT]

Reads every ``referent/**/result.json`` under ``RESULTS_DIR`` (however few runs finished:
the comparison is per (arch, target, variant) that ran), imports the authors' archive or
folder ``PUBLISHED`` and prints :func:`tstransfer.analysis.tables.compare_referents` as a
Markdown table; ``--csv`` also writes it. The workflow's ``comparison`` rule writes the
same table for a whole run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from tstransfer.analysis.published import load_published
from tstransfer.analysis.results import build_results_table
from tstransfer.analysis.tables import compare_referents
from tstransfer.fsutil import atomic_path

COLUMNS = {
    "arch": "arch", "target": "target", "variant": "variant", "metric": "metric",
    "ours_n": "ours n", "ours_median": "ours median", "ours_q1": "ours Q1", "ours_q3": "ours Q3",
    "published_n": "published n", "published_median": "published median",
    "published_q1": "published Q1", "published_q3": "published Q3",
    "median_ratio": "median ratio", "p": "Mann-Whitney p",
}


def markdown(comparison: pd.DataFrame) -> str:
    """The comparison as a Markdown table (4 significant digits), protocols underneath."""
    shown = comparison[list(COLUMNS)].rename(columns=COLUMNS)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    for row in shown.itertuples(index=False):
        cells = [f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    if len(comparison):
        lines.append("")
        lines.append(f"ours: {comparison['ours_protocol'].iloc[0]}; "
                     f"published: {comparison['published_protocol'].iloc[0]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tstransfer.analysis.referents",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("results_dir", type=Path, help="the run's results/ folder")
    parser.add_argument("published", type=Path, help="the authors' archive (.tar.gz) or folder")
    parser.add_argument("--label", default=None, help="our side's protocol, as printed")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)
    paths = sorted(args.results_dir.glob("referent/**/result.json"))
    if not paths:
        print(f"no referent results under {args.results_dir}/referent", file=sys.stderr)
        return 2
    ours = build_results_table(paths)
    comparison = compare_referents(ours, load_published(args.published), label=args.label)
    print(markdown(comparison))
    if args.csv is not None:
        with atomic_path(args.csv) as tmp:
            comparison.to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
