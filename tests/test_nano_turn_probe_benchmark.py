"""A tiny run of benchmarks/nano_turn_probe.py so that it cannot rot: the built-in nano model's
greedy turns at a few expert states of configs/sft-tiny.yaml's recipe."""

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
SCRIPT = ROOT / "benchmarks" / "nano_turn_probe.py"


def test_every_state_is_reported_and_counted() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(ROOT / "src" / "parlswarm" / "weights" / "nano"),
         "--config", str(ROOT / "configs" / "sft-tiny.yaml"), "--subagent", "2", "--serial", "1", "--max-new-tokens", "8"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    states = re.findall(r"^(subagent|serial): (.+)$", proc.stdout, flags=re.MULTILINE)
    assert [kind for kind, _ in states] == ["subagent", "subagent", "serial"]
    same = 0
    for _, verdict in states:
        left = re.fullmatch(r"leaves the expert at character (\d+) of (\d+)", verdict)
        assert verdict == "same turn" or left, verdict
        same += verdict == "same turn"
        if left:
            assert int(left.group(1)) <= int(left.group(2))
    assert proc.stdout.count("\n  expert ") == proc.stdout.count("\n  model  ") == 3 - same
    summary = re.search(r"^(.+): the model's turn was the expert's at (\d+) of (\d+) states \((\d+) not decoded\)$",
                        proc.stdout, flags=re.MULTILINE)
    assert summary, proc.stdout[-500:]
    assert (int(summary.group(2)), int(summary.group(3)), int(summary.group(4))) == (same, 3, 0)
