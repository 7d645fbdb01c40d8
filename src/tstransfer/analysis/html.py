"""HTML renderings of the tables, for the Snakemake report and a browser.

Every table the report shows is written as a small self-contained HTML page next to
its CSV, from the same data: :func:`table_page` for the paper's tables (display strings,
significance colours, the median and single-run mark under each mean), :func:`frame_page`
for plain frames (the results table, the comparisons). The CSS is scoped under the
``tstl`` class, so a fragment can be inlined into the report's landing page without
restyling the report around it.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from tstransfer.analysis.tables import MARK_NEGATIVE, MARK_POSITIVE, SINGLE_RUN_MARK, Table

STYLE = """
.tstl { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; font-size: 14px; color: #1f2933; }
.tstl h1 { font-size: 1.5em; margin: 0.4em 0; }
.tstl h2 { font-size: 1.2em; margin: 1.2em 0 0.4em; border-bottom: 1px solid #d0d7de; }
.tstl table { border-collapse: collapse; margin: 0.4em 0 0.8em; width: auto; }
.tstl th, .tstl td { border: 1px solid #d0d7de; padding: 3px 7px; text-align: right; vertical-align: top; }
.tstl th { background: #f3f5f7; }
.tstl tbody th { text-align: left; font-weight: 600; }
.tstl td.positive { background: #c8efc8; font-weight: 700; }
.tstl td.negative { background: #f6c6c6; font-weight: 700; }
.tstl td.flagged { outline: 2px dashed #b7791f; outline-offset: -3px; }
.tstl .extra { display: block; font-size: 0.82em; color: #52606d; font-weight: 400; }
.tstl ul.notes { font-size: 0.9em; color: #3e4c59; }
.tstl .good { color: #17702e; font-weight: 700; }
.tstl .bad { color: #a61b1b; font-weight: 700; }
"""
MAX_FRAME_ROWS = 1000


def page(title: str, body: str, *, extra_style: str = "", div_id: str | None = None) -> str:
    """A complete HTML document around ``body``, with the scoped style (plus
    ``extra_style``); ``div_id`` names the scoping div."""
    div = f'<div class="tstl" id="{html.escape(div_id)}">' if div_id else '<div class="tstl">'
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}{extra_style}</style></head>\n"
        f"<body>{div}\n{body}\n</div></body></html>\n"
    )


def table_fragment(table: Table) -> str:
    """One of the paper's tables: title, an HTML table with marks and medians, notes."""
    display = table.display
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in display.columns)
    corner = html.escape(str(display.index.name or ""))
    rows = []
    for row, values in display.iterrows():
        cells = [f"<th>{html.escape(str(row))}</th>"]
        for column, value in values.items():
            classes = []
            mark = table.marks.loc[row, column] if table.marks is not None else ""
            if mark in (MARK_POSITIVE, MARK_NEGATIVE):
                classes.append(mark)
            extra = str(table.extras.loc[row, column]) if table.extras is not None else ""
            if extra.endswith(SINGLE_RUN_MARK):
                classes.append("flagged")
            arrow = " ↑" if mark == MARK_POSITIVE else " ↓" if mark == MARK_NEGATIVE else ""
            text = html.escape(str(value)) + arrow
            if extra:
                text += f"<span class=\"extra\">{html.escape(extra)}</span>"
            attr = f" class=\"{' '.join(classes)}\"" if classes else ""
            cells.append(f"<td{attr}>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = list(table.notes)
    if table.marks is not None:
        notes.append("Green / red with ↑ / ↓: significant, TL better / worse.")
    notes_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (
        f"<h2>{html.escape(table.title)}</h2>\n"
        f"<table><thead><tr><th>{corner}</th>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        + (f"<ul class=\"notes\">{notes_html}</ul>\n" if notes else "")
    )


def table_page(table: Table) -> str:
    return page(table.title, table_fragment(table))


def format_value(value: object) -> str:
    """A frame cell as text: floats with 4 significant digits, missing values (None, NaN,
    pandas' NA in nullable columns) as empty."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def frame_fragment(frame: pd.DataFrame, max_rows: int = MAX_FRAME_ROWS) -> str:
    """A plain data frame as an HTML table (the first ``max_rows`` rows, said so)."""
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = [
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in record) + "</tr>"
        for record in shown.itertuples(index=False)
    ]
    note = ""
    if len(frame) > max_rows:
        note = f"<p>The first {max_rows} of {len(frame)} rows; the CSV holds them all.</p>\n"
    return f"{note}<table><thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"


def frame_page(title: str, frame: pd.DataFrame, intro: str = "") -> str:
    body = f"<h1>{html.escape(title)}</h1>\n"
    if intro:
        body += f"<p>{html.escape(intro)}</p>\n"
    return page(title, body + frame_fragment(frame))
