"""Which cell lines a model trained on cell notes writes right, by position (stop 70).

The ``cells``, ``lower_cells`` and ``numbered_cells`` note styles (parlswarm.parl.notes) write a row's
cells one a line before it, each with its column's label. Over a ``benchmarks/nano_eval.py --out``
report (its look-ups' replies) this prints, for the k-th cell line of a reply, how often its label is
the k-th column's (and, for ``numbered_cells``, its number k); with ``--traces`` (the report's
``--traces`` folder) it also prints how often a look-up's first turn writes the header row, and the
numbered list under it, as the notes do. Stop 70 found every round write the first label right and
hardly ever a later one (docs/local-model.md, "Stop 70"):

    python benchmarks/cell_lines.py runs/s70/cells-1000.json --style cells
    python benchmarks/cell_lines.py runs/s70/numbered-1000.json --style numbered_cells --traces runs/s70/traces-numbered-1000
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from parlswarm.parl.notes import cell_lines, numbered_columns
from parlswarm.world.expert import table_line
from parlswarm.world.tasks import parse_query

STYLES = ("cells", "lower_cells", "numbered_cells")
_PLACE_NOTE = re.compile(r"^.+ \([a-z]{2}\): ")  # "Palau (ps): ..." is a place's note, not a cell line


def written_cell_lines(reply: str, style: str) -> list[tuple[int | None, str]]:
    """The cell lines of a reply's notes (before its table), in order: (number or None, label)."""
    notes = reply.split("Here is the table")[0].splitlines()
    found: list[tuple[int | None, str]] = []
    for line in notes:
        if line.startswith("| ") or _PLACE_NOTE.match(line):
            continue
        if style == "numbered_cells":
            m = re.match(r"^(\d+)\. (.+?) = ", line)
            if m:
                found.append((int(m.group(1)), m.group(2)))
        elif style == "cells" and " = " in line:
            found.append((None, line.split(" = ")[0]))
        elif style == "lower_cells" and re.match(r"^[a-z][^:]*: ", line):
            found.append((None, line.split(": ")[0]))
    return found


def label_positions(runs: Iterable[dict[str, Any]], style: str) -> dict[str, Counter[int]]:
    """Per position k: cell lines written (``seen``), with the k-th column's label (``label``), numbered
    k (``number``); a reply's lines past its columns are not counted."""
    counts: dict[str, Counter[int]] = {"seen": Counter(), "label": Counter(), "number": Counter()}
    for run in runs:
        columns: Sequence[str] = run["columns"]
        # the label each column's line is written with (the text before the value)
        wanted = [
            ln.rstrip(": =").removeprefix(f"{k}. ") for k, ln in enumerate(cell_lines(columns, [""] * len(columns), style), 1)
        ]
        for k, (number, label) in enumerate(written_cell_lines(run["reply"], style)[: len(columns)]):
            counts["seen"][k] += 1
            counts["label"][k] += label == wanted[k]
            counts["number"][k] += number == k + 1
    return counts


def first_turns(traces: Path) -> dict[str, Any]:
    """Of the look-ups' first turns (TASK.CODE.lookup.jsonl): header row right, numbered list right
    whole, and each list item right by position."""
    n = header = whole = 0
    seen, right = Counter[int](), Counter[int]()
    for path in sorted(traces.glob("*.lookup.jsonl")):
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        task = next(e["task"] for e in events if e["kind"] == "agent_started")
        first = next((e.get("content") or "" for e in events if e["kind"] == "model_call"), "")
        parsed = parse_query(task)
        if parsed is None:
            continue
        lines = first.splitlines()
        listed = numbered_columns(parsed.header[1:])
        n += 1
        header += bool(lines) and lines[0] == table_line(parsed.header)
        whole += lines[1 : 1 + len(listed)] == listed
        for k, item in enumerate(listed):
            seen[k] += 1
            right[k] += len(lines) > k + 1 and lines[k + 1] == item
    return {"lookups": n, "header_right": header, "list_right": whole, "seen": seen, "right": right}


def by_position(right: Counter[int], seen: Counter[int]) -> str:
    return ", ".join(f"{right[k]}/{seen[k]}" for k in sorted(seen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a benchmarks/nano_eval.py --out report with look-ups")
    parser.add_argument("--style", choices=STYLES, required=True, help="the note style the model was trained on")
    parser.add_argument("--traces", type=Path, default=None, help="the report's --traces folder: also score the first turns")
    args = parser.parse_args()
    report = json.loads(args.report.read_text(encoding="utf-8"))
    if "subagent_lookups" not in report:
        raise SystemExit(f"{args.report}: no look-ups in this report (run nano_eval.py with --lookups N)")
    counts = label_positions(report["subagent_lookups"]["runs"], args.style)
    print(f"{args.report}: cell lines by position: label right {by_position(counts['label'], counts['seen'])}")
    if args.style == "numbered_cells":
        print(f"{args.report}: cell lines by position: number right {by_position(counts['number'], counts['seen'])}")
    if args.traces is not None:
        ft = first_turns(args.traces)
        print(
            f"{args.traces}: first turns of {ft['lookups']} look-ups: header row right {ft['header_right']}, numbered list "
            f"right {ft['list_right']}; list items by position {by_position(ft['right'], ft['seen'])}"
        )


if __name__ == "__main__":
    main()
