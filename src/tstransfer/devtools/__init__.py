"""Tools for the test suite and the benchmarks (bench/), not used by the pipeline.

They live in the package so that bench/ scripts import them like any module, without
reaching into tests/. They need a source checkout (the Snakefile, config/, profiles/
beside src/): :data:`workflow_runs.ROOT` is that checkout.

- :mod:`.workflow_runs`: Snakemake run as a user runs it (no activated venv), the small
  config of the workflow tests, the SLURM profile's arguments and packing.
- :mod:`.slurm_cluster`: a real single-node SLURM cluster (needs root).
- :mod:`.switch_arms`: the arms (baseline, each switch flipped, a preset) of
  bench/switch_effects.py and bench/referent_switches.py.
- :mod:`.demo_cuts`: the smaller cuts of the demo config that tests/test_demo_effect.py
  runs, and the EMG separability check of tests/test_datasets_other.py.
"""
