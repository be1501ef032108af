"""A tiny run of benchmarks/parl_merge_probe.py so that it cannot rot: the expert's merge
scores 1.0 with scripted sub-agents, and each policy gets one summary line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "parl_merge_probe.py"


def test_expert_states_and_a_line_per_policy() -> None:
    policy = str(ROOT / "src" / "parlswarm" / "weights" / "nano")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--policy", policy, "--tasks", "2", "--max-new-tokens", "64", "--show", "0"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "2 tasks of 5-8 rows, world seed 77 (test); the expert's own merge: Item-F1 1.000"
    m = re.fullmatch(rf"{re.escape(policy)}: merge Item-F1 ([0-9.]+) \(expert 1\.000\); as good as the expert's at (\d) of 2 states", lines[-1])
    assert m is not None, lines[-1]
    assert 0.0 <= float(m.group(1)) <= 1.0
