"""Where the real reference data lie beside the checkout (``../shared/data``): the tests'
(tests/shared_data.py adds their skip rules) and the benchmarks' one copy of the paths."""

from __future__ import annotations

from tstransfer.devtools.workflow_runs import ROOT

SHARED_DATA = ROOT.parent / "shared" / "data"
REAL_SP500 = SHARED_DATA / "sp500" / "GSPC_1927-12-30_2018-11-26.csv"
PUBLISHED_RESULTS = SHARED_DATA / "published-results" / "tstl_published_results.tar.gz"
LOMAX_KEEP_LIST = SHARED_DATA / "lomax" / "filter_lomax.py"
# The RO-Crate JSON-LD contexts, for validating the archive's crate offline (its README).
RO_CRATE_CONTEXTS = SHARED_DATA / "ro-crate"
# The paper this pipeline reproduces, as text (CITATION.cff's reference is checked against it).
PAPER_TEXT = SHARED_DATA.parent / "paper" / "otovic-et-al-transfer-learning-time-series.txt"
