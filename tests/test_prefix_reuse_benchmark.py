"""A tiny run of benchmarks/prefix_reuse.py so that it cannot rot: a random two-layer policy on one
task, with and without prefix reuse, twice; the same prompts on both sides, none reused without it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from nano_support import tiny_policy  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "prefix_reuse.py"


def test_both_sides_print_a_row_per_run_and_compare(tmp_path: Path) -> None:
    policy = tiny_policy(tmp_path / "policy")
    config = tmp_path / "parl.yaml"
    config.write_text(yaml.safe_dump({"policy": str(policy), "subagent": "expert", "world_seeds": [31], "min_rows": 3,
                                      "max_rows": 8, "max_new_tokens": 16, "expert_prefix": True,
                                      "out_dir": str(tmp_path / "unused")}))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--world-seed", "31", "--split", "test",
                           "--tasks", "1", "--repeats", "2", "--threads", "1"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"policy: {policy} (expert sub-agents, expert prefix); world 31 test, 1 tasks of 3-8 rows;")
    header = next(i for i, line in enumerate(lines) if line.startswith("run |"))
    rows = [[c.strip() for c in line.split("|")] for line in lines[header + 2 : header + 6]]
    assert [(r[0], r[1]) for r in rows] == [("1", "off"), ("1", "on"), ("2", "off"), ("2", "on")]
    prompts = {int(r[3]) for r in rows}
    assert len(prompts) == 1 and prompts.pop() > 0  # the same episodes on both sides
    assert all(int(r[4]) == 0 for r in rows if r[1] == "off")
    assert re.fullmatch(r"speed-up \(best off / best on\): \d+\.\d\dx; episodes played the same with and without reuse: 1 of 1",
                        lines[header + 6]), lines[header + 6]
