"""benchmarks/cell_lines.py: the cell lines of look-up replies scored by position, and the look-ups'
first turns (header row, numbered list), on replies and traces written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from script_support import benchmark_module

from parlswarm.parl.notes import cell_lines, numbered_columns
from parlswarm.world.expert import table_line
from parlswarm.world.tasks import make_tasks, parse_query
from parlswarm.world.world import World

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "cell_lines.py"
COLUMNS = ["Highest point", "Coastline (km)", "Airports"]


def reply(lines: list[str]) -> str:
    return "\n".join([*lines, "| Kenya | Mount Kenya | 536 | 16 |", "", "Here is the table, read from the World Factbook pages:"])


def test_labels_and_numbers_are_scored_by_position() -> None:
    script = benchmark_module("cell_lines")
    right = cell_lines(COLUMNS, ["Mount Kenya", "536", "16"], "numbered_cells")
    wrong = ["1. Highest point = Mount Kenya", "1. Airports = 536", "3. Capital = 16"]  # label, number, neither
    runs = [{"columns": COLUMNS, "reply": reply(right)}, {"columns": COLUMNS, "reply": reply(["Kenya (ke): yes: kept", *wrong])}]
    counts = script.label_positions(runs, "numbered_cells")
    assert [counts["seen"][k] for k in range(3)] == [2, 2, 2]
    assert [counts["label"][k] for k in range(3)] == [2, 1, 1]
    assert [counts["number"][k] for k in range(3)] == [2, 1, 2]
    for style in ("cells", "lower_cells"):
        lines = cell_lines(COLUMNS, ["Mount Kenya", "536", "16"], style)
        counts = script.label_positions([{"columns": COLUMNS, "reply": reply([lines[0], lines[2], lines[1]])}], style)
        assert [counts["label"][k] for k in range(3)] == [1, 0, 0] and counts["seen"][2] == 1


def test_first_turns_and_the_script_end_to_end(tmp_path: Path) -> None:
    task = make_tasks("dev", World.load(1).factbook, world_seed=1)[0]
    parsed = parse_query(task.query)
    assert parsed is not None
    header = parsed.header[1:]
    listed = numbered_columns(header)
    firsts = {"good": [table_line(parsed.header), *listed], "bad": [table_line(parsed.header), listed[0], *listed[2:], listed[1]]}
    for name, lines in firsts.items():
        events = [{"kind": "agent_started", "task": task.query}, {"kind": "model_call", "content": "\n".join(lines)}]
        (tmp_path / f"{name}.xx.lookup.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    report = tmp_path / "report.json"
    runs = [{"columns": header, "reply": reply(cell_lines(header, ["1"] * len(header), "numbered_cells"))}]
    report.write_text(json.dumps({"subagent_lookups": {"runs": runs}}), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(report), "--style", "numbered_cells", "--traces", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    n = len(header)
    assert n > 2  # so that the bad list's second item (the third column) is wrong
    assert f"label right {', '.join(['1/1'] * n)}" in proc.stdout
    assert f"number right {', '.join(['1/1'] * n)}" in proc.stdout
    assert "first turns of 2 look-ups: header row right 2, numbered list right 1" in proc.stdout
    assert "list items by position 2/2, 1/2" in proc.stdout, proc.stdout
    empty = tmp_path / "empty.json"
    empty.write_text("{}", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(empty), "--style", "cells"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "no look-ups in this report" in proc.stderr
