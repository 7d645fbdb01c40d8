"""Does one source transfer to a target better than another, on the demo's synthetic data?

    python bench/transfer_pair.py TARGET SOURCE [SOURCE ...] [--runs 3] [--arch magnet] [--seed S]

A quick check for designing the synthetic datasets (config/demo.yaml's sizes and training
settings), without a whole demo run: the sources are pretrained once, then per run the
target's variant-size subset is drawn, a referent trained from scratch on it, and every
pretrained source fine-tuned on it at omega 1.0, all through the pipeline's own job
functions (as tests/test_demo_effect.py does for STEAD and SPEECH to LOMAX). Prints each
source's pretraining test metric, the referents' test metrics, and each source's per-run
gain in percent (stats.performance_gain: positive = transfer better).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from tstransfer import jobs, pipeline, store
from tstransfer.analysis import stats

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("sources", nargs="+")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--arch", default="magnet")
    parser.add_argument("--seed", type=int, help="default: config/demo.yaml's")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.yaml")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    if args.seed is not None:
        config["seed"] = args.seed
    variant, size = next(iter(config["variants"].items()))
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        stores = {}
        for dataset in dict.fromkeys([args.target, *args.sources]):
            raw = tmp / "raw" / dataset
            pipeline.synthesize(dataset, raw, config["synthetic"][dataset], config["seed"])
            stores[dataset] = tmp / f"{dataset}.zarr"
            pipeline.convert(dataset, raw, stores[dataset], config["datasets"][dataset]["extract"], config["seed"])
        pretrained = {}
        for source in args.sources:
            out = tmp / "pretrain" / source
            result = jobs.pretrain(config, args.arch, source, 0, stores[source], out)
            pretrained[source] = out / "model.keras"
            print(f"pretrained on {source}: test {result['metric']} {result['test_metric']:.4g}", flush=True)
        referent, tuned = [], {source: [] for source in args.sources}
        for run in range(args.runs):
            subset = tmp / f"subset{run}.npz"
            store.make_subset(stores[args.target], subset, variant=variant, size=size, run=run, seed=config["seed"])
            result = jobs.referent(config, args.arch, args.target, variant, run, stores[args.target], subset,
                                   tmp / f"referent{run}")
            referent.append(result["test_metric"])
            metric = result["metric"]
            for source, model in pretrained.items():
                tuned[source].append(jobs.finetune(
                    config, args.arch, source, args.target, variant, run, 1.0, model, stores[args.target],
                    subset, tmp / f"finetune_{source}{run}")["test_metric"])
    print(f"\n{args.target} {variant} ({size} instances), {args.arch}, {args.runs} runs, seed {config['seed']}")
    print(f"referents' test {metric}: {np.round(referent, 3).tolist()}")
    for source, values in tuned.items():
        gains = stats.performance_gain(np.array(referent), np.array(values), metric)
        print(f"from {source:>8}: gain % per run {np.round(gains, 1).tolist()}  (mean {gains.mean():.1f})")


if __name__ == "__main__":
    main()
