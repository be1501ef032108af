"""A tiny run of benchmarks/fanout.py so that it cannot rot (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fanout.py"


def test_fanout_benchmark_runs_and_reports_the_ratio() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--n", "5", "--k", "3", "--latency", "0.01", "--repeats", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "critical steps: 7 (plain loop: 7)" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("overhead vs plain openai loop: ")
