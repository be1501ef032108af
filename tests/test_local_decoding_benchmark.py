"""A tiny run of benchmarks/local_decoding.py so that it cannot rot: a random two-layer policy on one
task, with and without prefix reuse, twice (the same prompts on both sides, none reused without
it); lockstep against continuous batching once, greedy and sampled (a PARL step's rollouts)."""

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

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "local_decoding.py"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("local-decoding")
    policy = tiny_policy(folder / "policy")
    path = folder / "parl.yaml"
    path.write_text(yaml.safe_dump({"policy": str(policy), "subagent": "expert", "world_seeds": [31], "min_rows": 3,
                                    "max_rows": 8, "max_new_tokens": 16, "expert_prefix": True,
                                    "out_dir": str(folder / "unused")}))
    return path


def _run(config: Path, *args: str) -> tuple[list[str], list[list[str]], str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--config", str(config), "--world-seed", "31", "--split", "test",
                           "--tasks", "1", "--threads", "1", *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"policy: {config.parent / 'policy'} (expert sub-agents, expert prefix); world 31 test, 1 tasks of 3-8 rows, ")
    header = next(i for i, line in enumerate(lines) if line.startswith("run |"))
    assert [c.strip() for c in lines[header].split("|")] == ["run", "side", "seconds", "prompt tokens", "reused", "generated",
                                                             "batches", "Item-F1"]
    rows = [[c.strip() for c in line.split("|")] for line in lines[header + 2 : -1]]
    return lines, rows, lines[-1]


def test_with_and_without_prefix_reuse(config: Path) -> None:
    lines, rows, last = _run(config, "--repeats", "2")
    assert "rows, greedy;" in lines[0]
    assert [(r[0], r[1]) for r in rows] == [("1", "no reuse"), ("1", "reuse"), ("2", "no reuse"), ("2", "reuse")]
    prompts = {int(r[3]) for r in rows}
    assert len(prompts) == 1 and prompts.pop() > 0  # the same episodes on both sides
    assert all(int(r[4]) == 0 for r in rows if r[1] == "no reuse")
    assert re.fullmatch(r"speed-up \(best no reuse / best reuse\): \d+\.\d\dx; episodes played the same both ways: 1 of 1", last), last


def test_lockstep_against_continuous_batching(config: Path) -> None:
    _, rows, last = _run(config, "--compare", "continuous")
    assert [(r[0], r[1]) for r in rows] == [("1", "lockstep"), ("1", "continuous")]
    assert rows[0][3] == rows[1][3] and int(rows[0][6]) >= 1 and int(rows[1][6]) >= 1
    assert re.fullmatch(r"speed-up \(best lockstep / best continuous\): \d+\.\d\dx; episodes played the same both ways: 1 of 1", last), last


def test_sampled_rollouts_draw_the_same_both_ways(config: Path) -> None:
    lines, rows, last = _run(config, "--compare", "continuous", "--sampled")
    assert "rows, 4 sampled episodes a task at 1.0;" in lines[0]
    assert [(r[0], r[1]) for r in rows] == [("1", "lockstep"), ("1", "continuous")]
    assert rows[0][3] == rows[1][3] and rows[0][5] == rows[1][5]  # the same prompts, the same tokens drawn
    assert re.fullmatch(r"speed-up \(best lockstep / best continuous\): \d+\.\d\dx; episodes played the same both ways: 4 of 4", last), last
