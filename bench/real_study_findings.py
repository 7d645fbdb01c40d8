"""What a finished study shows, as Markdown: the README's "what the real study shows".

    python bench/real_study_findings.py [--results results] [--config config/real.yaml]

From the study's results table (``tables/results.parquet``), its source-selection
validation (``analysis/selection_validation.csv``) and config ``referent_check``, it prints

1. the referents beside the published accuracy of their family (tstransfer.analysis.competence);
2. transfer wins and losses (Table 3's triplets: per architecture, source and target, the
   mean over runs of the grid-selected fine-tuned model against the referent), between
   problems of the same config domain and of different ones, with the sign test; and the significant cells of the gain tables
   (Wilcoxon, BKY over all cells); each for all targets and for the targets whose
   referents are within the margin (the correction stays the one over all cells), and the
   wins for the (architecture, target)s whose own referents are;
3. the same for the convergence rate;
4. per target, the source that gained most;
5. the source-selection estimators: mean within-target Spearman, top-1 hit rate and regret
   against a random pick, for all targets and for the competent ones, and whether the
   best meets issue 20's goal (Spearman >= 0.5, regret at most half of a random pick's).

Nothing is trained; it reads what the study wrote. The figures of README "Transfer on real
data" come from this script on the run named there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from tstransfer import datasets
from tstransfer.analysis import competence, results, stats
from tstransfer.analysis.study import dataset_label
from tstransfer.selection import proxy, validation

ROOT = Path(__file__).resolve().parents[1]


def markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(value: object) -> str:
        if isinstance(value, (float, np.floating)):
            return "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def wins(triplets: pd.DataFrame, which: str, domains: dict[str, str]) -> pd.DataFrame:
    """Table 3's wins and losses (stats.wins_by_group) with its groups drawn from the config
    ``domain`` of each problem: "intra" where source and target share it. The paper's groups
    are seismology against the rest, and no problem here is seismic."""
    same = [domains.get(s) == domains.get(t) for s, t in zip(triplets["source"], triplets["target"])]
    grouped = triplets.assign(domain_group=np.where(same, "intra", "other_to_other"))
    table = stats.wins_by_group(grouped, which).set_index("group").loc[["intra", "cross", "total"]]
    table.index = ["same domain", "different domains", "total"]
    return table.rename_axis("triplets").reset_index()[["triplets", "wins", "losses", "ties", "n", "p_binomial"]] \
        .rename(columns={"p_binomial": "sign test p"})


def significant(cells: pd.DataFrame) -> str:
    tested = cells[cells["p"].notna()]
    positive = int((tested["significant"] & (tested["value"] > 0)).sum())
    negative = int((tested["significant"] & (tested["value"] < 0)).sum())
    return (f"{len(tested)} cells tested: {positive} significantly positive, {negative} significantly negative "
            f"(mean gain > 0 in {int((tested['value'] > 0).sum())})")


def estimator_summary(per_target: pd.DataFrame) -> pd.DataFrame:
    summary = validation.summarise(per_target, within=validation.STUDY_WITHIN)
    return summary[["estimator", "n_targets", "spearman", "top1", "regret", "regret_random"]]


def verdict(summary: pd.DataFrame) -> str:
    """The best estimators and issue 20's goal, each estimator against a random pick on its
    own targets (``regret_random``): estimators that skip a target (LEEP without a source
    head) are not compared with chance on targets they did not score."""
    rows = summary[(summary["estimator"] != validation.RANDOM) & (summary["n_targets"] > 0)]
    if rows.empty:
        return "no estimator could be validated"
    ratio = rows["regret"] / rows["regret_random"].where(rows["regret_random"] > 0)
    best_ratio = rows.loc[ratio.idxmin()] if ratio.notna().any() else None
    by_spearman = rows.sort_values("spearman", ascending=False, na_position="last").iloc[0]
    met = rows[(rows["spearman"] >= 0.5) & (rows["regret"] <= 0.5 * rows["regret_random"])]["estimator"].tolist()
    parts = [f"highest mean Spearman: {by_spearman['estimator']} ({by_spearman['spearman']:.3g}, "
             f"{int(by_spearman['n_targets'])} targets)"]
    if best_ratio is not None:
        parts.append(f"lowest regret against a random pick on the same targets: {best_ratio['estimator']} "
                     f"({best_ratio['regret']:.3g} vs {best_ratio['regret_random']:.3g} points, top-1 "
                     f"{best_ratio['top1']:.3g})")
    parts.append("issue 20's goal (Spearman >= 0.5 and regret at most half a random pick's) met by "
                 + (", ".join(met) if met else "none"))
    return "; ".join(parts)


def selection_per_target(results_dir: Path, table: pd.DataFrame, config: dict, *, finished: bool) -> pd.DataFrame | None:
    """The study's per-target validation (rule selection_validation's CSV) or, for an
    unfinished study whose ``analysis/selection_scores.csv`` exists (``snakemake
    results/analysis/selection_scores.csv`` needs only the zoo), the same harness on the
    gains measured so far, with the fine-tuning proxy read from the finished runs."""
    path = results_dir / "analysis" / "selection_validation.csv"
    if finished and path.is_file():
        return pd.read_csv(path, dtype={"variant": str})
    scores_path = results_dir / "analysis" / "selection_scores.csv"
    if not scores_path.is_file():
        return None
    scores = [pd.read_csv(scores_path, dtype={"variant": str})]
    proxy_settings = proxy.study_settings(config)
    finetunes = sorted((results_dir / "finetune").rglob("result.json"))
    scores.append(proxy.study_proxy_scores(finetunes, epochs=proxy_settings["epochs"], omega=proxy_settings["omega"]))
    per_target, _ = validation.study_tables(pd.concat(scores, ignore_index=True), table)
    return per_target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "real.yaml")
    args = parser.parse_args()
    if not args.config.is_file():
        print(f"{args.config}: no such config file", file=sys.stderr)
        return 2
    config = yaml.safe_load(args.config.read_text())
    datasets.register_config(config)  # the study's own datasets: titles and domains
    domains = {name: entry.get("domain") for name, entry in config["datasets"].items()}
    parquet = args.results / "tables" / "results.parquet"
    if parquet.is_file():
        table = results.read_table(parquet)
    else:  # a study still running: the jobs finished so far, said so in the heading
        paths = sorted(p for kind in ("pretrain", "referent", "finetune") for p in (args.results / kind).rglob("result.json"))
        if not paths:
            print(f"{args.results}: no tables/results.parquet and no result.json under it", file=sys.stderr)
            return 2
        table = results.build_results_table(paths)
        print(f"(unfinished study: {parquet} is missing; {len(paths)} result.json files read)\n")
    analysis = stats.analyse(table, "validation")
    published, margin, _ = competence.settings(config)
    check = competence.referent_check(table, published, margin=margin)
    short = competence.short_targets(check)
    targets = {t for t in table["target"] if t}
    no_figure = sorted(dataset_label(t) for t in targets if t not in published)
    competent = lambda frame: frame[[(t, v) not in short for t, v in zip(frame["target"], frame["variant"])]]  # noqa: E731
    # Per architecture: a triplet whose own architecture's referents are within the margin
    # (GunPoint's FCN triplets, say, where MagNet's referents fall short and mark the target).
    short_cells = competence.short_cells(check)
    own_competent = lambda frame: frame[[(a, t, v) not in short_cells for a, t, v in  # noqa: E731
                                         zip(frame["arch"], frame["target"], frame["variant"])]]
    own_label = ("(architecture, target)s whose own referents are within the margin"
                 + (f" or have no published figure ({', '.join(no_figure)})" if no_figure else ""))

    print(f"# What the study in {args.results} shows\n")
    runtime = table.groupby("kind")["runtime_s"].agg(["size", "sum", "median"])
    last_epoch = table.groupby("kind")["last_epoch"].median()  # below max_epochs: early stopping cut
    print("Training jobs (their own wall times, result.json runtime_s; median last epoch): "
          + "; ".join(f"{kind} {int(row['size'])}, sum {row['sum']:.0f} s, median {row['median']:.1f} s, "
                      f"epoch {last_epoch[kind]:g}" for kind, row in runtime.iterrows())
          + f"; all {runtime['sum'].sum():.0f} s; diverged: {int((table['status'] == 'diverged').sum())}.\n")
    unchecked = sorted(dataset_label(t) for t in targets if t in published and t not in set(check["target"]))
    kept_label = ("targets not marked (referents within the margin"
                  + (f"; no published figure: {', '.join(no_figure)}" if no_figure else "")
                  + (f"; no referent finished yet: {', '.join(unchecked)}" if unchecked else "") + ")")
    print(f"## 1. Referents beside the published accuracy (margin {100 * margin:g} points)\n")
    shown = check.assign(target=check["target"].map(dataset_label))
    print(markdown(shown[["arch", "target", "n_runs", "measure", "ours", "published", "gap_points", "competent"]]))
    print(f"\nWithin the margin: {int(check['competent'].sum())} of {len(check)} (architecture, target); "
          f"targets marked: {', '.join(sorted(dataset_label(t) for t, _ in short)) or 'none'}.\n")

    for number, which in ((2, "performance"), (3, "convergence")):
        triplets, cells = analysis["triplets"], analysis[f"domains_{which}"]
        print(f"## {number}. {which.capitalize()}: wins and losses of transfer\n")
        print("All targets:\n")
        print(markdown(wins(triplets, which, domains)))
        print(f"\nGain cells (source x target, architectures and runs pooled): {significant(cells)}.\n")
        if short:
            print(f"Only the {len(set(cells['target']) - {t for t, _ in short})} {kept_label}:\n")
            print(markdown(wins(competent(triplets), which, domains)))
            print(f"\nGain cells: {significant(competent(cells))}.\n")
        if short_cells:
            kept = own_competent(triplets)
            print(f"Only the {kept.groupby(['arch', 'target']).ngroups} {own_label}; "
                  "triplets only, as the pooled gain cells mix architectures:\n")
            print(markdown(wins(kept, which, domains)))
            print()

    cells = analysis["domains_performance"]
    best = cells.sort_values("value", ascending=False).drop_duplicates(["target", "variant"])
    best = best.assign(target=best["target"].map(dataset_label), source=best["source"].map(dataset_label),
                       referent_short=[(t, v) in short for t, v in zip(best["target"], best["variant"])])
    print("## 4. The best source per target (mean performance gain, %)\n")
    print(markdown(best[["target", "source", "value", "median", "significant", "referent_short"]].sort_values("target")))

    per_target = selection_per_target(args.results, table, config, finished=parquet.is_file())
    if per_target is not None:
        print("\n## 5. Source-selection estimators against the measured gains\n")
        print("Per (target, variant, architecture), means over targets; all targets:\n")
        summary = estimator_summary(per_target)
        print(markdown(summary))
        print(f"\n{verdict(summary)}.\n")
        if short:
            kept = competent(per_target)
            print(f"Only the {kept['target'].nunique()} {kept_label}:\n")
            summary = estimator_summary(kept)
            print(markdown(summary))
            print(f"\n{verdict(summary)}.")
        if short_cells and "arch" in per_target:
            kept = own_competent(per_target)
            print(f"\nOnly the {kept.groupby(['arch', 'target']).ngroups} {own_label}:\n")
            summary = estimator_summary(kept)
            print(markdown(summary))
            print(f"\n{verdict(summary)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
