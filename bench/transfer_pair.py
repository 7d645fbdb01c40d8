"""Does one source transfer to a target better than another, on the demo's synthetic data?

    python bench/transfer_pair.py TARGET SOURCE [SOURCE ...] [--runs 3] [--arch magnet] [--seed S]

A quick check for designing the synthetic datasets (config/demo.yaml's sizes and training
settings), without a whole demo run: the sources are pretrained once, then per run the
target's variant-size subset is drawn, a referent trained from scratch on it, and every
pretrained source fine-tuned on it at omega 1.0, all through the pipeline's own job
functions (tstransfer.pairs, which tests/test_demo_effect.py runs on smaller cuts).
Prints each source's pretraining test metric, the referents' test metrics, and each
source's per-run gain in percent (stats.performance_gain: positive = transfer better).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import yaml

from tstransfer.pairs import transfer_gains

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
        result = transfer_gains(config, args.target, args.sources, scratch, runs=args.runs, arch=args.arch)
    for source, value in result.pretrained.items():
        print(f"pretrained on {source}: test {value:.4g}")
    print(f"\n{args.target} {variant} ({size} instances), {args.arch}, {args.runs} runs, seed {config['seed']}")
    print(f"referents' test {result.metric}: {np.round(result.referent, 3).tolist()}")
    for source, gains in result.gains().items():
        print(f"from {source:>8}: gain % per run {np.round(gains, 1).tolist()}  (mean {gains.mean():.1f})")


if __name__ == "__main__":
    main()
