"""A tiny run of benchmarks/parl_decision_probe.py so that it cannot rot: one row per policy,
log-probabilities at most 0 and parallel shares between 0 and 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from nano_support import tiny_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "parl_decision_probe.py"


def test_a_row_per_policy(tmp_path: Path) -> None:
    policies = [str(ROOT / "src" / "parlswarm" / "weights" / "nano"), str(tiny_policy(tmp_path / "tiny-policy"))]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--policy", policies[0], "--policy", policies[1], "--tasks", "2", "--reader", "find",
         "--notes", "verbatim"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "2 decision points (world seed 11, train tasks of 5-8 rows)"
    assert lines[1].startswith("policy") and lines[1].count("share") == 2
    assert [line[:40].strip() for line in lines[2:4]] == [p[-40:] for p in policies]
    for line in lines[2:4]:
        lp, ls, share, dp, ds, dshare = (float(c) for c in line[40:].split())
        assert lp < 0 and ls < 0 and dp < 0 and ds < 0
        assert 0.0 <= share <= 1.0 and 0.0 <= dshare <= 1.0
        assert dp >= lp - 1e-3 and ds >= ls - 1e-3  # a turn's opening tokens are at least as likely as the turn
    assert lines[4].startswith("share = P(parallel) / (P(parallel) + P(serial))")
