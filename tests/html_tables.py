"""The tables of an HTML page as a reader sees them: each ``<table>`` as rows of cell texts
(``th`` and ``td`` alike, nested elements' text joined by one space), by the standard
library's HTML parser, so that a test asserts a cell at its row and column rather than a
word somewhere in the page."""

from __future__ import annotations

from html.parser import HTMLParser


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._open: list[list[list[str]]] = []  # tables being read (nested ones too)
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._open.append([])
        elif tag == "tr" and self._open:
            self._open[-1].append([])
        elif tag in ("td", "th") and self._open and self._open[-1]:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._open[-1][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_tables(page: str) -> list[list[list[str]]]:
    """Every table of ``page``, in document order of their ends: rows of cell texts."""
    parser = _Tables()
    parser.feed(page)
    parser.close()
    return parser.tables


def table_cells(rows: list[list[str]]) -> dict[tuple[str, str], str]:
    """A table whose first row names the columns and whose first column names the rows:
    ``{(row name, column name): cell text}``."""
    header, body = rows[0], rows[1:]
    cells = {}
    for row in body:
        assert len(row) == len(header), (header, row)
        for column, text in zip(header[1:], row[1:]):
            cells[(row[0], column)] = text
    return cells
