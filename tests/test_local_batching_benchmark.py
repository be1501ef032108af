"""A tiny run of benchmarks/local_batching.py so that it cannot rot: one row per sub-agent
count, every concurrent request of a cell answered in a single batch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "local_batching.py"


def test_batched_and_one_by_one_rows_per_count() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--counts", "1,3", "--new-tokens", "3", "--repeats", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert re.match(r"^model: .+ \(\d+\.\d M parameters\), torch .+, 1 threads; 3 new tokens per reply$", lines[0]), lines[0]
    assert "best of 1 runs per cell" in lines
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("sub-agents |"))
    assert [c.strip() for c in lines[header].split("|")] == ["sub-agents", "one by one tok/s", "batched tok/s", "speed-up", "batches"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[header + 2 :]]
    assert [int(r[0]) for r in rows] == [1, 3]
    for _, alone, batched, ratio, batches in rows:
        assert float(alone) > 0 and float(batched) > 0 and ratio.endswith("x") and float(ratio[:-1]) > 0
        assert int(batches) == 1  # the n requests of one cell decode together
