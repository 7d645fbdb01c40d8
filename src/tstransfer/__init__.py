"""tstransfer: library behind the transfer-learning-for-time-series pipeline.

The Snakemake workflow (``Snakefile``, ``rules/``) only wires files together; every
piece of logic lives here so that it can be imported, unit-tested and reused.
"""

__version__ = "0.1.0"
# As pyproject.toml, LICENSE and CITATION.cff give them (tests/test_citation.py): the model
# cards and the archive's RO-Crate carry them.
__license__ = "MIT"  # an SPDX identifier
__author__ = "The tstransfer contributors"
