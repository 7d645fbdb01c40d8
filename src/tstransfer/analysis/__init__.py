"""Analysis of the experiment: results table, statistics, tables, figures and report pages.

- :mod:`.results`: the tidy results table built from per-job JSON files.
- :mod:`.published`: the paper authors' per-run results mapped onto the same table.
- :mod:`.stats`: grid-search selection, pairing with referents and :func:`analyse`
  (every statistic at once); it re-exports the statistics of
  :mod:`.gains` (per-run gains, sign and Wilcoxon tests, the robust summary),
  :mod:`.wins` (Tables 3, 4, 5 and 10) and :mod:`.cells` (Tables 6-9, the
  per-architecture tables, Figure 8's data, Table 2).
- :mod:`.study`: what a results table covers (sources, targets, variants, multipliers),
  which the tables and figures lay out, and the paper's domain groups.
- :mod:`.tables`: the paper's tables as data and display strings; comparison with
  the published results.
- :mod:`.render`: Markdown / LaTeX rendering and :func:`write_all_outputs`.
- :mod:`.figures`: Figure 8 and heatmaps of Tables 6-9.
- :mod:`.html`: the tables as HTML pages for the Snakemake report.
- :mod:`.summary`: the report's summary page.
- :mod:`.referents`: our referents beside the published ones, from the command line.
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
