"""tstransfer: library behind the transfer-learning-for-time-series pipeline.

The Snakemake workflow (``Snakefile``, ``rules/``) only wires files together; every
piece of logic lives here so that it can be imported, unit-tested and reused.
"""

__version__ = "0.1.0"
