"""A tiny run of benchmarks/parl_budget_probe.py so that it cannot rot: the scripted expert
fails every policy at one critical step and solves the task with a generous budget."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bm25s")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parl_budget_probe.py"


def test_item_f1_per_budget_and_width() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--budgets", "1,40", "--tasks", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "1 train tasks of 5-8 rows, world seed 11, reader find: Item-F1"
    assert lines[1].split() == ["budget", "serial", "width", "2", "width", "4", "one", "per", "place"]
    rows = {int(line.split()[0]): [float(c) for c in line.split()[1:]] for line in lines[2:]}
    assert list(rows) == [1, 40]
    assert rows[1] == [0.0] * 4  # one critical step: no policy can answer
    assert rows[40] == [1.0] * 4  # enough steps: the expert's table is the gold one, however wide
