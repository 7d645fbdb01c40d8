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

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tstransfer import protocol
from tstransfer.analysis.results import read_table
from tstransfer.analysis.switch_effects import switch_effects
from tstransfer.layout import TABLES_DIR

ROOT = Path(__file__).resolve().parents[1]
RESULTS = f"{TABLES_DIR}/results.parquet"


def arms(config: dict, switches: list[str], paper: bool) -> dict[str, dict]:
    """Arm name -> its config: the baseline, each switch flipped alone, the paper preset."""
    base = protocol.project_switches(config)
    out = {"baseline": config}
    for name in switches:
        flipped = {**(config.get("protocol_switches") or {}), name: not base[name]}
        out[name] = {**config, "protocol_switches": flipped}
    if paper:
        out["paper"] = {**config, "protocol": "paper", "protocol_switches": {}}
    return out


def command(workdir: Path, configfile: Path, cores: int) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(configfile), "--cores", str(cores), RESULTS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--switches", nargs="*", default=list(protocol.SWITCHES))
    parser.add_argument("--paper", action="store_true", help="also run the whole paper preset")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.switches) - set(protocol.SWITCHES))
    if unknown:
        print(f"error: --switches: unknown switch {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        config = yaml.safe_load(args.config.read_text())
        protocol.project_switches(config)
    except (OSError, yaml.YAMLError, ValueError) as error:
        print(f"error: {args.config}: {' '.join(str(error).split())}", file=sys.stderr)  # one line, YAML's too
        return 2
    out = args.out.resolve()
    config = {**config, "raw_dir": str(out / "raw")}
    tables = {}
    for name, arm_config in arms(config, args.switches, args.paper).items():
        workdir = out / name
        workdir.mkdir(parents=True, exist_ok=True)
        configfile = workdir / "config.yaml"
        configfile.write_text(yaml.safe_dump(arm_config, sort_keys=False))
        cmd = command(workdir, configfile, args.cores)
        print(shlex.join(cmd), flush=True)
        if args.dry_run:
            continue
        # the jobs run in workdir: this tree's package, whatever a relative PYTHONPATH says
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        subprocess.run(cmd, check=True, env=env)
        tables[name] = (read_table(workdir / RESULTS), protocol.project_switches(arm_config))
    if args.dry_run:
        return 0
    baseline = tables.pop("baseline")
    effects = switch_effects(baseline[0], baseline[1], tables)
    effects.to_csv(out / "switch_effects.csv", index=False)
    print(effects.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
