"""Does LogME pick the source to transfer from? Its validation on a finished run.

    snakemake --cores 2 && snakemake --cores 2 zoo      # a finished run and its zoo
    python bench/logme_validation.py [RUN_DIR]          # RUN_DIR: the workflow folder (default .)
    python bench/logme_validation.py --partial RUN_DIR  # a run still going: what is finished so far

For every (target, variant) of the run and every compatible zoo model (architecture,
source), LogME (src/tstransfer/logme.py) on the frozen penultimate-layer features of the
target's training subsets (the mean over the run's subsets, the training sets the
fine-tuning used), beside the actual fine-tuning gain (the mean per-run performance gain
of the grid-selected model over its referent, tstransfer.analysis.stats). Prints the
Spearman correlation over all (arch, source, target) cells, per target and per
(target, architecture), and how often the top-ranked source is the best one (per target
and architecture) against a random pick; writes RUN_DIR/results/zoo_validation/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from tstransfer import zoo
from tstransfer.fsutil import json_safe
from tstransfer.protocol import selection_curve
from tstransfer.analysis import results, stats


def partial_run(run_dir: Path) -> tuple[Path, pd.DataFrame]:
    """A run still in progress: a zoo of the models selected so far (results/zoo_partial)
    and a table of the referent and fine-tuning jobs finished so far."""
    zoo_dir = run_dir / "results" / "zoo_partial"
    cards = []
    for selection in sorted((run_dir / "results" / "pretrain").glob("*/*/selected/selection.json")):
        arch, source = selection.parts[-4], selection.parts[-3]
        folder = zoo_dir / zoo.model_name(arch, source)
        zoo.export_model(arch, source, selection_json=selection, model=selection.parent / "model.keras",
                         store=run_dir / "results" / "data" / f"{source}.zarr", out_dir=folder)
        cards.append(folder / zoo.CARD_JSON)
    zoo.write_index(zoo_dir, cards, {"partial": True})
    paths = [p for kind in ("referent", "finetune") for p in (run_dir / "results" / kind).rglob("result.json")]
    return zoo_dir, results.build_results_table(paths)


def main(run_dir: Path, partial: bool = False) -> dict:
    if partial:
        zoo_dir, table = partial_run(run_dir)
    else:
        zoo_dir = run_dir / "results" / "zoo"
        table = results.read_table(run_dir / "results" / "tables" / "results.parquet")
    selection = selection_curve({"test_curves": bool(table["switch_test_curves"].dropna().any())})
    pairs = stats.paired_runs(table, selection)
    gains = stats.per_architecture_tables(pairs, "performance").rename(columns={"value": "gain"})
    scores = []
    for (target, variant), cell in pairs.groupby(["target", "variant"]):
        store = run_dir / "results" / "data" / f"{target}.zarr"
        for run in sorted(cell["run"].unique()):
            subset = run_dir / "results" / "data" / "subsets" / target / variant / f"run{run}.npz"
            ranking = zoo.rank(zoo_dir, store, subset=subset)
            scores.append(ranking.assign(target=target, variant=variant, run=run))
    scores = pd.concat(scores).groupby(["arch", "source", "target", "variant"], as_index=False)["logme"].mean()
    summary = zoo.validate_ranking(scores, gains)
    out = run_dir / "results" / "zoo_validation"
    out.mkdir(parents=True, exist_ok=True)
    cells = scores.merge(gains[["arch", "source", "target", "variant", "gain"]], on=["arch", "source", "target", "variant"])
    cells.to_csv(out / "logme_vs_gain.csv", index=False)
    text = json.dumps(json_safe(summary), indent=1)
    (out / "summary.json").write_text(text + "\n")
    print(cells.sort_values(["target", "variant", "arch", "logme"], ascending=[True, True, True, False]).to_string(index=False))
    print(text)
    return summary


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--partial"]
    main(Path(arguments[0] if arguments else "."), partial="--partial" in sys.argv[1:])
