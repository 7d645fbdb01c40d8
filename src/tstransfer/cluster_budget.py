"""The paper experiment's GPU hours and wall time on a cluster, estimated from measured figures.

    python -m tstransfer.cluster_budget [--config config/config.yaml] [--figures FIGURES.json ...]
                                        [--gpus 4 16 64] [--epoch-fraction 0.2] [--group-size N]

The jobs are the config's plan (:func:`tstransfer.plan.paths`, as Snakemake plans a fresh
run): pretraining, the stream_max study and the referents on their own; fine-tuning
cells packed as the README's ``--groups finetune=ft_{arch}_{source}_{target}_{variant}_{run}
--group-components ...=10`` packs them (``--group-size`` cells of one run per allocation;
default: the config's number of multipliers). Seed selection needs no GPU and is counted only.

One training job costs ``fixed + epochs x epoch + test``:

* ``epochs`` = ``training.max_epochs`` x ``--epoch-fraction``, the assumed mean share of
  the epoch budget that early stopping leaves (an assumption: say it with the result);
* an epoch trains on ``n_train`` instances (a 1k5/9k variant's size; pretraining and the
  stream_max study: the source's whole training split) at the measured training rate,
  then predicts the whole validation split at the measured prediction rate (every job
  validates on the full split, every epoch; with switch ``test_curves`` the test split too);
  the split sizes are the dataset's real size (:func:`tstransfer.datasets.paper_instances`)
  times the store's split fractions (LOMAX and SPEECH ship their own splits, so theirs are
  approximate);
* ``fixed``: a fresh process's cost beside its epochs (imports, device initialisation,
  model build, data load, first-step tracing, result writing). Unpacked, every job pays
  it. Packed, an allocation pays the import once (its job server imports TensorFlow) and
  each forked cell pays the rest (``fixed - import``).

Wall time for N GPUs: per stage (pretraining, stream_max and referents; then fine-tuning,
which waits for the selected models) the longer of the stage's allocation seconds / N and
its longest allocation -- an ideal scheduler with no queue wait.

``--figures``: the ``--json`` file of ``bench/gpu.py`` (training and prediction instances/s
per architecture and dataset at the dataset's input shape; fixed and import seconds per
architecture), or several (runs that each measured some cells: ``--archs``/``--datasets``),
merged. A cell no file measured is an error, not a guess. Without it, :data:`DEFAULT_FIGURES`: CPU figures of this project's 2-core
development machine (REFERENCE.md section 7), not a GPU's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# CPU training instances/s at batch 32 by input length (3 channels), REFERENCE.md section 7,
# measured on the project's 2-core machine; prediction is taken as PREDICT_SPEEDUP times
# faster (a forward pass without the backward one, an assumption); the fixed cost and the
# import are bench/gpu.py --quick's on the same machine (commit e1b1066: 11.4 s and 13.2 s
# in two runs, of which 6.7 s and 7.4 s the import; README).
CPU_TRAIN_RATES: dict[str, dict[int, float]] = {
    "convnetquake_ingv": {80: 6479, 540: 2759, 1001: 1776, 8000: 302},
    "magnet": {80: 2756, 540: 660, 1001: 302, 8000: 39},
    "mlstm_fcn": {80: 420, 540: 62, 1001: 31, 8000: 2},
    "tcn": {80: 1353, 540: 230, 1001: 110, 8000: 15},
}
PREDICT_SPEEDUP = 3.0
CPU_IMPORT_S = 7.0
CPU_FIXED_S = 12.0
DEFAULT_FIGURES_DEVICE = "CPU, 2 cores (REFERENCE.md section 7; not a GPU)"

STAGES = {"pretrain": 1, "stream_max": 1, "referent": 1, "finetune": 2}


class BudgetError(ValueError):
    """Bad figures or config: printed as one line ``error: ...`` by the command."""


def interpolated_rate(rates: Mapping[int, float], length: int) -> float:
    """Instances/s at ``length`` from rates measured at other lengths: linear in log-log
    between the neighbouring lengths, the nearest segment's slope beyond them."""
    points = sorted((int(k), float(v)) for k, v in rates.items())
    if len(points) == 1:
        return points[0][1] * points[0][0] / length
    i = max(1, min(len(points) - 1, next((j for j, (x, _) in enumerate(points) if x >= length), len(points) - 1)))
    (x0, y0), (x1, y1) = points[i - 1], points[i]
    slope = (math.log(y1) - math.log(y0)) / (math.log(x1) - math.log(x0))
    return math.exp(math.log(y0) + slope * (math.log(length) - math.log(x0)))


def default_figures(config: Mapping[str, Any]) -> dict[str, Any]:
    """Figures in ``bench/gpu.py --json``'s form from :data:`CPU_TRAIN_RATES` at each
    dataset's input length (see the module docstring)."""
    from .datasets import input_shape

    rows = []
    for arch in config["architectures"]:
        if arch not in CPU_TRAIN_RATES:
            raise BudgetError(f"config architectures: no CPU rates for {arch!r} (known: "
                              f"{', '.join(CPU_TRAIN_RATES)}); measure it with bench/gpu.py --json "
                              "and pass the figures")
        for name in _datasets(config):
            shape = input_shape(name, config["datasets"][name].get("extract"))
            train = interpolated_rate(CPU_TRAIN_RATES[arch], shape.length)
            rows.append({"arch": arch, "dataset": name, "length": shape.length,
                         "train_ips": train, "predict_ips": train * PREDICT_SPEEDUP})
    fixed = {arch: {"fixed_s": CPU_FIXED_S, "import_s": CPU_IMPORT_S} for arch in config["architectures"]}
    return {"device": DEFAULT_FIGURES_DEVICE, "throughput": rows, "fixed": fixed}


def _datasets(config: Mapping[str, Any]) -> list[str]:
    names = [*config["sources"], *config["targets"], *config["stream_max_study"]["datasets"]]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Figures:
    """Rates per (arch, dataset) and fixed/import seconds per arch, checked against a config."""

    device: str
    rates: dict[tuple[str, str], tuple[float, float]]  # (train_ips, predict_ips)
    fixed: dict[str, tuple[float, float]]  # (fixed_s, import_s)

    @classmethod
    def read(cls, data: Mapping[str, Any], config: Mapping[str, Any], source: str) -> Figures:
        from .datasets import input_shape

        try:
            rates = {}
            for row in data["throughput"]:
                name = row["dataset"]
                if name in config["datasets"] and "format" not in config["datasets"][name]:
                    want = input_shape(name, config["datasets"][name].get("extract")).length
                    if int(row["length"]) != want:
                        raise BudgetError(f"{source}: {row['arch']} on {name} measured at length {row['length']}, "
                                          f"the config's input is {want} (a --quick figures file?)")
                train, predict = float(row["train_ips"]), float(row["predict_ips"])
                if not (train > 0 and predict > 0):
                    raise BudgetError(f"{source}: {row['arch']} on {name}: rates must be positive")
                rates[(row["arch"], name)] = (train, predict)
            fixed = {arch: (float(v["fixed_s"]), float(v["import_s"])) for arch, v in data["fixed"].items()}
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, BudgetError):
                raise
            raise BudgetError(f"{source}: not a bench/gpu.py --json figures file ({type(error).__name__}: {error})") from None
        for arch, (total, imported) in fixed.items():
            if not 0 <= imported <= total:
                raise BudgetError(f"{source}: fixed.{arch}: need 0 <= import_s <= fixed_s")
        return cls(str(data.get("device", "unknown device")), rates, fixed)

    def rate(self, arch: str, dataset: str, source: str) -> tuple[float, float]:
        try:
            return self.rates[(arch, dataset)]
        except KeyError:
            raise BudgetError(f"{source}: no throughput for {arch} on {dataset}") from None

    def fixed_cost(self, arch: str, source: str) -> tuple[float, float]:
        try:
            return self.fixed[arch]
        except KeyError:
            raise BudgetError(f"{source}: no fixed.{arch} (fixed_s, import_s)") from None


def split_sizes(name: str) -> tuple[int, int, int]:
    """(train, val, test) instances of dataset ``name``'s real data under the store's fractions."""
    from .datasets import paper_instances
    from .store import DEFAULT_FRACTIONS

    n = paper_instances(name)
    train, val = round(n * DEFAULT_FRACTIONS[0]), round(n * DEFAULT_FRACTIONS[1])
    return train, val, n - train - val


@dataclass
class KindBudget:
    kind: str
    jobs: int
    allocations_unpacked: int
    allocations_packed: int
    training_s: float  # epochs and the final test pass, summed over jobs
    fixed_unpacked_s: float
    fixed_packed_s: float
    longest_unpacked_s: float
    longest_packed_s: float

    @property
    def unpacked_s(self) -> float:
        return self.training_s + self.fixed_unpacked_s

    @property
    def packed_s(self) -> float:
        return self.training_s + self.fixed_packed_s


def estimate(config: Mapping[str, Any], figures: Figures, *, epoch_fraction: float,
             group_size: int | None = None, source: str = "figures") -> dict[str, KindBudget]:
    """Per kind of job, its GPU seconds unpacked and packed (see the module docstring)."""
    from .plan import count_jobs, paths
    from .protocol import job_switches

    if not 0 < epoch_fraction <= 1:
        raise BudgetError(f"epoch fraction must be in (0, 1], got {epoch_fraction}")
    group_size = int(group_size or len(config["omegas"]))
    if group_size < 1:
        raise BudgetError(f"group size must be at least 1, got {group_size}")
    training = config["training"]
    epochs = int(training["max_epochs"]) * epoch_fraction
    test_every_epoch = job_switches(config)["test_curves"]
    variants = {str(k): int(v) for k, v in config["variants"].items()}

    def job_seconds(arch: str, dataset: str, n_train: int) -> float:
        train_ips, predict_ips = figures.rate(arch, dataset, source)
        _, n_val, n_test = split_sizes(dataset)
        evaluated = n_val + (n_test if test_every_epoch else 0)
        return epochs * (n_train / train_ips + evaluated / predict_ips) + n_test / predict_ips

    budgets: dict[str, KindBudget] = {}
    patterns = {"pretrain": "{arch}\t{source}\tfull\t{seed}", "stream_max": "{arch}\t{dataset}\tfull\t{smax}{seed}",
                "referent": "{arch}\t{target}\t{variant}\t{run}",
                "finetune": "{arch}\t{target}\t{variant}\t{source}/{run}"}
    for kind, pattern in patterns.items():
        groups: dict[str, list[tuple[float, float, float]]] = {}  # allocation group -> (train, fixed, import)
        for line in paths(kind, pattern, config):
            arch, dataset, variant, group = line.split("\t")
            n_train = split_sizes(dataset)[0] if variant == "full" else variants[variant]
            fixed, imported = figures.fixed_cost(arch, source)
            key = f"{arch}/{dataset}/{variant}/{group}" if kind == "finetune" else line
            groups.setdefault(key, []).append((job_seconds(arch, dataset, n_train), fixed, imported))
        jobs = sum(len(cells) for cells in groups.values())
        assert jobs == count_jobs(config, (kind,))[kind]
        size = group_size if kind == "finetune" else 1
        packed = [cells[i:i + size] for cells in groups.values() for i in range(0, len(cells), size)]
        training_s = sum(t for cells in groups.values() for t, _, _ in cells)
        budgets[kind] = KindBudget(
            kind, jobs, jobs, len(packed), training_s,
            fixed_unpacked_s=sum(f for cells in groups.values() for _, f, _ in cells),
            fixed_packed_s=sum(max(i for _, _, i in alloc) + sum(f - i for _, f, i in alloc) for alloc in packed),
            longest_unpacked_s=max((t + f for cells in groups.values() for t, f, _ in cells), default=0.0),
            longest_packed_s=max((max(i for _, _, i in alloc) + sum(t + f - i for t, f, i in alloc)
                                  for alloc in packed), default=0.0),
        )
    selection = count_jobs(config, ("select_pretrained",))["select_pretrained"]
    budgets["select_pretrained"] = KindBudget("select_pretrained", selection, selection, selection, 0.0, 0.0, 0.0, 0.0, 0.0)
    return budgets


def wall_seconds(budgets: Mapping[str, KindBudget], gpus: int, *, packed: bool) -> float:
    """Wall time on ``gpus`` GPUs: per stage, max(allocation seconds / gpus, longest allocation)."""
    total = 0.0
    for stage in sorted(set(STAGES.values())):
        kinds = [b for k, b in budgets.items() if STAGES.get(k) == stage]
        seconds = sum(b.packed_s if packed else b.unpacked_s for b in kinds)
        longest = max((b.longest_packed_s if packed else b.longest_unpacked_s for b in kinds), default=0.0)
        total += max(seconds / gpus, longest)
    return total


def table(budgets: Mapping[str, KindBudget], gpus: Sequence[int]) -> str:
    """The printed table: per kind jobs, allocations and GPU hours; totals and wall times."""
    head = (f"{'kind':<18}{'jobs':>7}{'alloc.unpacked':>15}{'alloc.packed':>13}{'train GPU h':>12}"
            f"{'fixed h unpacked':>17}{'fixed h packed':>15}{'GPU h unpacked':>15}{'GPU h packed':>13}")
    lines = [head]
    for b in budgets.values():
        lines.append(f"{b.kind:<18}{b.jobs:>7}{b.allocations_unpacked:>15}{b.allocations_packed:>13}"
                     f"{b.training_s / 3600:>12.1f}{b.fixed_unpacked_s / 3600:>17.1f}{b.fixed_packed_s / 3600:>15.1f}"
                     f"{b.unpacked_s / 3600:>15.1f}{b.packed_s / 3600:>13.1f}")
    total = lambda attr: sum(getattr(b, attr) for b in budgets.values()) / 3600  # noqa: E731
    lines.append(f"{'total':<18}{sum(b.jobs for b in budgets.values()):>7}"
                 f"{sum(b.allocations_unpacked for b in budgets.values()):>15}"
                 f"{sum(b.allocations_packed for b in budgets.values()):>13}{total('training_s'):>12.1f}"
                 f"{total('fixed_unpacked_s'):>17.1f}{total('fixed_packed_s'):>15.1f}"
                 f"{total('unpacked_s'):>15.1f}{total('packed_s'):>13.1f}")
    lines.append("")
    lines.append(f"{'GPUs':>6}{'wall h unpacked':>17}{'wall h packed':>15}")
    for n in gpus:
        lines.append(f"{n:>6}{wall_seconds(budgets, n, packed=False) / 3600:>17.1f}"
                     f"{wall_seconds(budgets, n, packed=True) / 3600:>15.1f}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tstransfer.cluster_budget",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/config.yaml", help="the experiment's config (default: the paper's)")
    parser.add_argument("--figures", nargs="+", help="bench/gpu.py --json output(s), merged, later ones winning "
                        "(default: the CPU figures of REFERENCE.md)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[4, 16, 64], help="GPU counts for the wall time")
    parser.add_argument("--epoch-fraction", type=float, default=0.2,
                        help="assumed mean share of training.max_epochs a job runs before early stopping (default 0.2)")
    parser.add_argument("--group-size", type=int, help="fine-tuning cells per packed allocation (default: the config's multipliers)")
    args = parser.parse_args(argv)
    import yaml

    from .datasets import register_config

    try:
        try:
            config = yaml.safe_load(Path(args.config).read_text())
            register_config(config)
        except (OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as error:
            raise BudgetError(f"{args.config}: {str(error).splitlines()[0]}") from None
        if args.figures:
            figures = None
            for path in args.figures:  # several files: one bench run's cells each, later ones win
                try:
                    data = json.loads(Path(path).read_text())
                except (OSError, ValueError) as error:
                    raise BudgetError(f"{path}: {str(error).splitlines()[0]}") from None
                read = Figures.read(data, config, path)
                figures = read if figures is None else Figures(
                    f"{figures.device}; {read.device}" if read.device != figures.device else read.device,
                    {**figures.rates, **read.rates}, {**figures.fixed, **read.fixed})
        else:
            figures = Figures.read(default_figures(config), config, "default figures")
        if any(n < 1 for n in args.gpus):
            raise BudgetError("--gpus: counts must be at least 1")
        budgets = estimate(config, figures, epoch_fraction=args.epoch_fraction, group_size=args.group_size,
                           source=", ".join(args.figures or ["default figures"]))
    except (BudgetError, KeyError) as error:
        print(f"error: {error if isinstance(error, BudgetError) else f'{args.config}: missing key {error}'}",
              file=sys.stderr)
        return 2
    epochs = int(config["training"]["max_epochs"]) * args.epoch_fraction
    print(f"figures: {figures.device}; {epochs:g} epochs per job ({args.epoch_fraction:g} x max_epochs "
          f"{config['training']['max_epochs']}), fine-tuning packed {args.group_size or len(config['omegas'])} cells "
          "per allocation")
    print(table(budgets, args.gpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
