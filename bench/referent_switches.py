"""The protocol switches' effect on referents alone (issue 21, item 9: ConvNetQuake_INGV on
the real S&P 500 file, 9k variant, 7 runs, against the authors' 7 published runs).

    python bench/referent_switches.py CONFIG OUT [--switches a b ...] [--validation]
        [--published ARCHIVE] [--cores N] [--dry-run]

CONFIG is a project config whose grid is the referents to compare (for item 9: the
paper's config with ``datasets.sp500.path`` the real file, ``targets: [sp500]``,
``architectures: [convnetquake_ingv]``, ``variants: {9k: 9000}``, ``protocol: paper``).
Arms, each in OUT/<arm> with its own config: ``baseline`` (CONFIG as given), each switch of
``--switches`` flipped alone, and with ``--validation`` the ``validation`` preset. Each arm
runs Snakemake up to its referents (``--until referent``: no pretraining, no fine-tuning).
Run i of every arm trains on the same subset from the same seed, so the arms' runs pair:
per arm it prints each run's test metric (MAE or weighted F1), their median, the mean
paired difference from the baseline with a seeded bootstrap 95 % interval and the exact
Wilcoxon signed-rank p, and with ``--published`` the authors' runs of the same (architecture, target, variant)
and a Mann-Whitney p of each arm against them. Writes OUT/referent_switches.csv. An arm
already run is not run again (Snakemake finds its results). ``--dry-run`` writes the arms'
configs and prints the Snakemake commands without running them.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats

from tstransfer.analysis.switch_effects import bootstrap_interval
from tstransfer.devtools import switch_arms
from tstransfer.fsutil import atomic_path

ROOT = Path(__file__).resolve().parents[1]


def referent_runs(workdir: Path) -> pd.DataFrame:
    """(arch, target, variant, run, test_metric, best_epoch, last_epoch) of the referents
    under ``workdir``'s results tree."""
    rows = []
    for path in sorted((workdir / "results" / "referent").glob("*/*/*/run*/result.json")):
        record = json.loads(path.read_text())
        arch, target, variant, run = path.parts[-5:-1]
        rows.append({"arch": arch, "target": target, "variant": variant, "run": int(run[3:]),
                     "test_metric": record.get("test_metric"), "best_epoch": record.get("best_epoch"),
                     "last_epoch": record.get("last_epoch")})
    return pd.DataFrame(rows)


def compare(runs: dict[str, pd.DataFrame], published: pd.DataFrame | None) -> pd.DataFrame:
    """One row per (arm, arch, target, variant): see the module docstring."""
    keys = ["arch", "target", "variant"]
    baseline = runs["baseline"].set_index([*keys, "run"])["test_metric"]
    rows = []
    for arm, table in runs.items():
        for key, group in table.groupby(keys):
            values = group.set_index([*keys, "run"])["test_metric"]
            paired = pd.concat([baseline, values], axis=1, keys=["base", "arm"], join="inner").dropna()
            differences = (paired["arm"] - paired["base"]).to_numpy(dtype=float)
            row = {"arm": arm, **dict(zip(keys, key)), "n_runs": len(values),
                   "runs": " ".join(f"{v:.4g}" for v in sorted(values)), "median": float(values.median())}
            if arm != "baseline" and len(differences):
                low, high = bootstrap_interval(differences)
                # the exact signed-rank test (scipy's default at these sizes), not the
                # paper's normal approximation (tstransfer.analysis.gains.wilcoxon_p): 7 pairs
                exact = scipy.stats.wilcoxon(paired["arm"], paired["base"]) if differences.any() else None
                row.update(mean_difference=float(differences.mean()), ci_low=low, ci_high=high,
                           wilcoxon_p=float(exact.pvalue) if exact is not None else 1.0)
            if published is not None:
                theirs = published[(published["arch"] == key[0]) & (published["target"] == key[1])
                                   & (published["variant"] == key[2])]["test_metric"].dropna()
                if len(theirs):
                    row["published_runs"] = " ".join(f"{v:.4g}" for v in sorted(theirs))
                    row["published_median"] = float(theirs.median())
                    row["mannwhitney_p"] = float(scipy.stats.mannwhitneyu(values, theirs).pvalue)
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = switch_arms.parser(__doc__.splitlines()[0], [])
    parser.add_argument("--validation", action="store_true", help="also run the validation preset")
    parser.add_argument("--published", type=Path, help="the authors' results archive (.tar.gz)")
    args, config = switch_arms.parse(parser, argv)
    if config is None:
        return 2
    published = None
    if args.published is not None:
        from tstransfer.analysis.published import load_published
        from tstransfer.analysis.results import ResultsError

        try:
            table = load_published(args.published)
        except (OSError, ResultsError) as error:
            print(f"error: --published {args.published}: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        published = table[table["kind"] == "referent"]
    out = args.out.resolve()
    runs = {}
    arm_configs = switch_arms.arms(config, args.switches, "validation" if args.validation else None)
    for name, workdir, configfile, _ in switch_arms.written(out, arm_configs):
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory",
               str(workdir), "--configfile", str(configfile), "--replace-workflow-config",
               "--cores", str(args.cores), "--until", "referent"]
        print(shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        subprocess.run(cmd, check=True, env=switch_arms.tree_env(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        runs[name] = referent_runs(workdir)
        if runs[name].empty:
            print(f"error: {workdir}: no referent result.json", file=sys.stderr)
            return 1
    if args.dry_run:
        return 0
    table = compare(runs, published)
    with atomic_path(out / "referent_switches.csv") as tmp:
        table.to_csv(tmp, index=False)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
