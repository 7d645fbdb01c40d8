"""Analysis of the experiment: results table, statistics, tables and figures.

- :mod:`.results`: the tidy results table built from per-job JSON files.
- :mod:`.published`: the paper authors' per-run results mapped onto the same table.
- :mod:`.stats`: grid-search selection, gains, sign tests, Wilcoxon + BKY tables.
- :mod:`.tables`: the paper's tables as data and display strings; comparison with
  the published results.
- :mod:`.render`: Markdown / LaTeX rendering and :func:`write_all_outputs`.
- :mod:`.figures`: Figure 8 and heatmaps of Tables 6-9.
"""

from tstransfer.analysis.published import load_published
from tstransfer.analysis.render import write_all_outputs
from tstransfer.analysis.results import build_results_table, read_table, write_table
from tstransfer.analysis.stats import analyse, select_grid
from tstransfer.analysis.tables import compare_with_published

__all__ = [
    "analyse",
    "build_results_table",
    "compare_with_published",
    "load_published",
    "read_table",
    "select_grid",
    "write_all_outputs",
    "write_table",
]
