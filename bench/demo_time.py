"""Where a finished run's time goes: per-job fixed cost against training, per rule.

    python bench/demo_time.py [results]

Reads every training job's result.json (its own timings: start-up, data load, model
build, training, evaluation) and Snakemake's benchmark files (the job's wall time as
Snakemake saw it, including the client process), and prints, per rule, the job count,
median and total wall time, the median training time, and the fixed cost (wall time
minus training and evaluation) with its share of the total.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

KINDS = {"pretrain": "pretrain", "referent": "referent", "finetune": "finetune", "stream_max": "stream_max"}


def benchmark_seconds(tsv: Path) -> float:
    lines = tsv.read_text().splitlines()
    return float(lines[1].split("\t")[0])


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for kind, folder in KINDS.items():
        for path in sorted((results / folder).glob("**/result.json")):
            if "selected" in path.parts:
                continue
            result = json.loads(path.read_text())
            relative = path.parent.relative_to(results / folder)
            tsv = results / "benchmarks" / folder / f"{relative}.tsv"
            timings = result.get("timings", {})
            wall = benchmark_seconds(tsv) if tsv.is_file() else float(result["runtime_s"])
            work = timings.get("training", 0.0) + timings.get("evaluation", 0.0)
            rows[kind].append({"wall": wall, "training": timings.get("training", 0.0),
                               "fixed": max(wall - work, 0.0), "start": timings.get("import", 0.0)})
    convert = [benchmark_seconds(p) for p in (results / "benchmarks" / "convert").glob("*.tsv")]
    print(f"{'rule':<11} {'jobs':>5} {'wall med s':>10} {'wall sum s':>10} {'train med s':>11} "
          f"{'fixed med s':>11} {'fixed share':>11}")
    for kind, items in rows.items():
        walls = [r["wall"] for r in items]
        fixed = [r["fixed"] for r in items]
        print(f"{kind:<11} {len(items):>5} {statistics.median(walls):>10.2f} {sum(walls):>10.1f} "
              f"{statistics.median(r['training'] for r in items):>11.2f} "
              f"{statistics.median(fixed):>11.2f} {sum(fixed) / sum(walls):>11.0%}")
    if convert:
        print(f"{'convert':<11} {len(convert):>5} {statistics.median(convert):>10.2f} {sum(convert):>10.1f}")


if __name__ == "__main__":
    main()
