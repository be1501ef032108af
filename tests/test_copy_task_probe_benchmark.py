"""A tiny run of benchmarks/copy_task_probe.py so that it cannot rot: one accuracy line every
``--every`` steps, for each copying task the run trained on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "copy_task_probe.py"
LINE = re.compile(r"^step (\d+): (.+) \(\d+s\)$")


def _probe(*args: str) -> list[tuple[int, dict[str, float]]]:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "4", "--every", "2", "--batch", "2", "--pairs", "2", "--key-pool", "4",
         "--length", "8", "--threads", "1", *args],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    out = []
    for line in lines:
        match = LINE.match(line)
        assert match, line  # nothing else is printed
        accs = dict(part.split(" accuracy ") for part in match.group(2).split(", "))
        out.append((int(match.group(1)), {kind: float(acc) for kind, acc in accs.items()}))
    return out


def test_both_tasks_are_reported_every_few_steps() -> None:
    lines = _probe("--kind", "both")  # the built-in nano model, trained on repeat and recall in turn
    assert [step for step, _ in lines] == [2, 4]
    for _, accs in lines:
        assert set(accs) == {"repeat", "recall"}
        assert all(0.0 <= a <= 1.0 for a in accs.values())


def test_a_scratch_model_trains_on_the_world_lists() -> None:
    lines = _probe("--model", "scratch", "--kind", "lists")
    assert [step for step, _ in lines] == [2, 4]
    assert all(set(accs) == {"lists"} and 0.0 <= accs["lists"] <= 1.0 for _, accs in lines)
