"""Find the markdown table in a free-text response, the way WideSearch does.

1. The first ```` ```markdown ```` fenced block, if there is one;
2. else, when the text has at least four ``|``, the first run of consecutive lines that
   start with ``|`` (the first may start anywhere before its first ``|``), looking from the
   line of the first ``|`` to the line of the last.

In what was found, lines without ``|`` and separator lines (only ``|``, ``-``, ``:`` and
spaces) are dropped; the first line left is the header. Cells are split on ``|`` and
stripped, and lose double quotes that wrap them (as pandas' reader does); columns whose header cell is empty (the outer pipes) are dropped; header names
are normalised (strip, lower-case, no spaces).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from parlswarm.scoring.tasks import norm_column

_MARKDOWN_BLOCK = re.compile(r"```markdown(.*?)```", re.DOTALL)
_PIPE_RUN = re.compile(r"((?:\|.*\n?)+)")
_SEPARATOR_CHARS = set("|- :")


class ResponseTable(BaseModel):
    """The table found in a response: normalised column names and rows of cell text."""

    columns: list[str]
    rows: list[list[str]] = Field(default_factory=list)
    source: str = "markdown_block"  # or "pipe_lines"


class TableError(ValueError):
    """A table was found but cannot be read (a row with more cells than the header)."""


def _unquote(cell: str) -> str:
    # WideSearch reads the table with pandas' CSV reader, which takes a cell wrapped in
    # double quotes as a quoted field: the quotes go and doubled quotes become one.
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        return cell[1:-1].replace('""', '"')
    return cell


def _find_table_text(text: str) -> tuple[str, str] | None:
    blocks = _MARKDOWN_BLOCK.findall(text)
    if blocks:
        return blocks[0], "markdown_block"
    pipes = [m.start() for m in re.finditer(r"\|", text)]
    if len(pipes) < 4:
        return None
    start = text.rfind("\n", 0, pipes[0])
    start = 0 if start == -1 else start
    end = text.find("\n", pipes[-1])
    end = len(text) if end == -1 else end
    runs = _PIPE_RUN.findall(text[start:end])
    return (runs[0], "pipe_lines") if runs else None


def extract_table(response_text: str) -> ResponseTable | None:
    """The first markdown table in ``response_text``, or None when there is none.

    Raises :class:`TableError` when the table has a row with more cells than its header
    (WideSearch's pandas reader fails on such a table, and the response scores 0).
    """
    found = _find_table_text(response_text or "")
    if found is None:
        return None
    raw, source = found
    lines = []
    for line in raw.strip().split("\n"):
        line = line.strip()
        if "|" not in line or set(line) <= _SEPARATOR_CHARS:
            continue
        lines.append([_unquote(cell.strip()) for cell in line.split("|")])
    if not lines:
        return None
    header, body = lines[0], lines[1:]
    keep = [i for i, name in enumerate(header) if name != ""]
    if not keep:
        return None
    rows = []
    for number, cells in enumerate(body, start=1):
        if len(cells) > len(header):
            raise TableError(
                f"data row {number} of the table has more '|'-separated fields ({len(cells)}) "
                f"than its header ({len(header)}); a '|' inside a cell?"
            )
        cells = cells + [""] * (len(header) - len(cells))
        rows.append([cells[i] for i in keep])
    return ResponseTable(columns=[norm_column(header[i]) for i in keep], rows=rows, source=source)





def _cell_text(value: object) -> str:
    # A '|' or a line break would split the cell when the table is read back.
    return str(value).replace("|", "/").replace("\r", " ").replace("\n", " ").strip()


def render_markdown_table(columns: list[str], rows: list[list[str]], fenced: bool = True) -> str:
    """A markdown table of ``rows`` under ``columns`` (in a ```markdown block by default),
    in the form WideSearch asks agents to answer in. ``|`` in a cell becomes ``/``."""
    lines = ["| " + " | ".join(_cell_text(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell_text(c) for c in row) + " |" for row in rows]
    body = "\n".join(lines)
    return f"```markdown\n{body}\n```" if fenced else body

__all__ = ["ResponseTable", "TableError", "extract_table", "render_markdown_table"]
