"""A tiny run of benchmarks/sft_turn_lengths.py so that it cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("bm25s")

ROOT = Path(__file__).resolve().parents[1]


def test_turn_lengths_table_counts_the_samples_over_the_limit() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "sft_turn_lengths.py"), "--config", str(ROOT / "configs" / "sft-tiny.yaml"),
         "--model", str(ROOT / "src" / "parlswarm" / "weights" / "nano"), "--world-seed", "31", "--conversations", "4"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rows = [r for r in proc.stdout.splitlines() if re.match(r"^\| (serial|parallel) \| \d+ \|", r)]
    assert any(r.startswith("| serial | 0 |") for r in rows) and any(r.startswith("| parallel | 3 |") for r in rows)
    for r in rows:
        samples, median, longest, over_limit, over_context = (int(c) for c in r.strip("|").split("|")[2:])
        assert median <= longest and over_context <= over_limit <= samples
        assert (over_limit > 0) == (longest > 1536)  # sft-tiny's max_tokens
