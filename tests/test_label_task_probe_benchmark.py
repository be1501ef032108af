"""A tiny run of benchmarks/label_task_probe.py so that it cannot rot, and its split of a cell's
first token (the line chosen) from the rest (the copy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch  # noqa: E402
from script_support import benchmark_module  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "label_task_probe.py"
LINE = re.compile(r"^step (\d+): choice accuracy ([\d.]+), copy accuracy ([\d.]+) \(\d+s\)$")


def test_a_few_steps_report_the_choice_and_the_copy() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--steps", "3", "--every", "2", "--batch", "2", "--held-out", "1", "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [LINE.match(line) for line in proc.stdout.splitlines()]
    assert all(lines), proc.stdout  # nothing else is printed
    assert [int(m.group(1)) for m in lines if m] == [0, 2, 3]  # every 2 steps and at the end
    assert all(0.0 <= float(m.group(k)) <= 1.0 for m in lines if m for k in (2, 3))


def test_a_cells_first_token_is_the_choice_and_the_others_the_copy() -> None:
    probe = benchmark_module("label_task_probe")

    class Says:  # a model whose likeliest next token is a fixed table: logits one-hot on `said`
        def __init__(self, said: torch.Tensor) -> None:
            self.said = said

        def __call__(self, ids: torch.Tensor) -> object:
            return type("Out", (), {"logits": torch.nn.functional.one_hot(self.said, 10).float()})()

    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 7]])
    target = torch.tensor([[False, False, True, True, False, True, True]])  # two cells: tokens 2-3 and 5-6
    right = torch.tensor([[2, 3, 4, 5, 6, 7, 0]])  # predicts every next token
    assert probe.split_accuracy(Says(right), ids, target) == (2, 2, 2, 2)
    wrong_first = torch.tensor([[2, 9, 4, 5, 9, 7, 0]])  # each cell's first token wrong, the copies right
    assert probe.split_accuracy(Says(wrong_first), ids, target) == (0, 2, 2, 2)
