"""Each protocol switch's effect on the headline gains (issue 21):

    python bench/switch_effects.py CONFIG OUT [--switches a b ...] [--paper] [--cores N] [--dry-run]

Runs the grid of CONFIG (a project config, e.g. a small cut of config/demo.yaml) once per
arm, each in its own folder OUT/<arm> with its own config: ``validation`` (CONFIG as given,
the baseline), then each switch of ``--switches`` (default: every switch of
tstransfer.protocol) flipped alone, and with ``--paper`` the whole ``paper`` preset. Raw
downloads are shared (``raw_dir`` is OUT/raw). Each arm runs Snakemake up to its results
table; then tstransfer.analysis.switch_effects pairs every arm's runs with the baseline's
and prints, per arm and gain, the mean paired difference with a bootstrap 95 % interval
and the Wilcoxon p, and writes OUT/switch_effects.csv. An arm already run is not run
again (Snakemake finds its results). Every arm trains the whole grid, pretraining
included: budget (arms) x (the grid's time). ``--dry-run`` writes the arms' configs and
prints the Snakemake commands without running them.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from tstransfer import protocol
from tstransfer.analysis.results import read_table
from tstransfer.analysis.switch_effects import switch_effects
from tstransfer.devtools import switch_arms
from tstransfer.fsutil import atomic_path
from tstransfer.layout import TABLES_DIR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = f"{TABLES_DIR}/results.parquet"


def command(workdir: Path, configfile: Path, cores: int) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--cores", str(cores), RESULTS]


def main(argv: list[str] | None = None) -> int:
    parser = switch_arms.parser(__doc__.splitlines()[0], list(protocol.SWITCHES))
    parser.add_argument("--paper", action="store_true", help="also run the whole paper preset")
    args, config = switch_arms.parse(parser, argv)
    if config is None:
        return 2
    out = args.out.resolve()
    config = {**config, "raw_dir": str(out / "raw")}
    tables = {}
    arm_configs = switch_arms.arms(config, args.switches, "paper" if args.paper else None)
    for name, workdir, configfile, arm_config in switch_arms.written(out, arm_configs):
        cmd = command(workdir, configfile, args.cores)
        print(shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        subprocess.run(cmd, check=True, env=switch_arms.tree_env(ROOT))
        tables[name] = (read_table(workdir / RESULTS), protocol.project_switches(arm_config))
    if args.dry_run:
        return 0
    baseline = tables.pop("baseline")
    effects = switch_effects(baseline[0], baseline[1], tables)
    with atomic_path(out / "switch_effects.csv") as tmp:
        effects.to_csv(tmp, index=False)
    print(effects.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
