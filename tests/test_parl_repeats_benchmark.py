"""benchmarks/parl_repeats.py on hand-made run folders: a run started three times, whose dropped
logs hold two earlier runs (the second cut at the step the first ended on), and two runs of
other rewards that draw the same episodes until one step."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from script_support import BENCHMARKS, benchmark_module

repeats = benchmark_module("parl_repeats")


def metric(step: int, f1: float, seconds: float, total: float = 0.5, completion: int = 100) -> dict[str, Any]:
    return {"step": step, "episode/item_f1": f1, "episode/total": total, "loss/policy": 0.1,
            "train/completion_tokens": float(completion), "train/prompt_tokens_mean": 50.0, "train/seconds": seconds}


def episode(step: int, f1: float, total: float = 0.5, calls: int = 7) -> dict[str, Any]:
    return {"step": step, "task": "world_train_001", "item_f1": f1, "tool_calls": calls, "lambda1": 0.3, "total": total}


def write(path: Path, lines: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def run_folder(path: Path, metrics: list[dict[str, Any]], episodes: list[dict[str, Any]],
               dropped_metrics: list[dict[str, Any]] | None = None,
               dropped_episodes: list[dict[str, Any]] | None = None) -> Path:
    path.mkdir()
    (path / "config.yaml").write_text("tasks_per_step: 1\ngroup_size: 2\n", encoding="utf-8")
    write(path / "metrics.jsonl", metrics)
    write(path / "episodes.jsonl", episodes)
    if dropped_metrics is not None and dropped_episodes is not None:
        write(path / "metrics.dropped.jsonl", dropped_metrics)
        write(path / "episodes.dropped.jsonl", dropped_episodes)
    return path


@pytest.fixture
def started_thrice(tmp_path: Path) -> Path:
    # Run 1 logged steps 1-2; run 2 went on from step 1's checkpoint and logged step 2 again
    # (the same figures); run 3 started over and logged 1-3, with step 2's second episode otherwise.
    return run_folder(
        tmp_path / "run",
        metrics=[metric(1, 0.5, 10), metric(2, 0.25, 20), metric(3, 1.0, 30)],
        episodes=[episode(1, 0.5), episode(1, 0.5), episode(2, 0.5), episode(2, 0.0), episode(3, 1.0), episode(3, 1.0)],
        dropped_metrics=[metric(1, 0.5, 11), metric(2, 0.5, 21), metric(2, 0.5, 22)],
        dropped_episodes=[episode(1, 0.5), episode(1, 0.5), episode(2, 0.5), episode(2, 0.5),
                          episode(2, 0.5), episode(2, 0.5)],
    )


def test_a_dropped_log_splits_into_the_runs_it_came_from(started_thrice: Path) -> None:
    metrics, episodes = repeats.load_runs(started_thrice)
    assert [sorted(run) for run in metrics] == [[1, 2], [2], [1, 2, 3]]
    assert [sorted(run) for run in episodes] == [[1, 2], [2], [1, 2, 3]]
    assert [len(run[2]) for run in episodes] == [2, 2, 2]
    assert [run[2][0]["train/seconds"] for run in metrics] == [21, 22, 20]


def test_each_repeated_step_says_what_differs_from_the_current_log(started_thrice: Path) -> None:
    rows = repeats.repeat_rows(started_thrice)
    assert len(rows) == 3  # step 1 once before, step 2 twice before, step 3 never
    step1, step2_first, step2_second = rows
    assert step1.startswith("   1 | run 1 of 3") and step1.endswith("the same")
    assert "11 |" in step1 and "10 |" in step1  # the times, side by side
    for row in (step2_first, step2_second):
        assert row.endswith("episode/item_f1; episode 2: item_f1"), row


def test_two_runs_part_where_an_episode_or_the_text_differs(tmp_path: Path) -> None:
    # The same episodes under other reward terms, then other text, then another episode.
    a = run_folder(tmp_path / "a", [metric(1, 0.5, 1, total=0.8), metric(2, 0.5, 1), metric(3, 0.5, 1)],
                   [episode(1, 0.5, total=0.8), episode(1, 0.5, total=0.8), episode(2, 0.5), episode(2, 0.5),
                    episode(3, 0.5), episode(3, 0.5, calls=9)])
    b = run_folder(tmp_path / "b", [metric(1, 0.5, 2), metric(2, 0.5, 2, completion=120), metric(3, 0.5, 2)],
                   [episode(1, 0.5), episode(1, 0.5), episode(2, 0.5), episode(2, 0.5), episode(3, 0.5), episode(3, 0.5)])
    rows = repeats.against_rows(a, b)
    assert rows[0].endswith("| the same episodes") and "0.800 / 0.500" in rows[0]
    assert rows[1].endswith("the same episodes, other text: completion_tokens") and "100 / 120" in rows[1]
    assert rows[2].endswith("episode 2: tool_calls")
    assert all("| alike     |" in row for row in rows)


def test_rewards_that_order_a_group_otherwise_are_told_apart_from_larger_ones(tmp_path: Path) -> None:
    # Step 1: b's rewards are a's scaled (the order kept); step 2: a pays its first episode
    # above its second where b ties them; step 3: one run lacks an episode.
    a = run_folder(tmp_path / "a", [metric(1, 0.5, 1), metric(2, 0.5, 1), metric(3, 0.5, 1)],
                   [episode(1, 0.5, total=0.9), episode(1, 0.5, total=0.3), episode(2, 0.0, total=0.3),
                    episode(2, 0.0, total=0.0), episode(3, 0.5)])
    b = run_folder(tmp_path / "b", [metric(1, 0.5, 2), metric(2, 0.5, 2), metric(3, 0.5, 2)],
                   [episode(1, 0.5, total=0.6), episode(1, 0.5, total=0.0), episode(2, 0.0, total=0.0),
                    episode(2, 0.0, total=0.0), episode(3, 0.5), episode(3, 0.5)])
    assert repeats.ranked_alike([], []) == "-"
    rows = repeats.against_rows(a, b)
    assert ["| alike     |" in rows[0], "| otherwise |" in rows[1], "| -         |" in rows[2]] == [True] * 3


def test_the_script_runs_and_names_a_folder_it_cannot_read(started_thrice: Path, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(BENCHMARKS / "parl_repeats.py"), *args],
                              capture_output=True, text=True, timeout=120)

    proc = run(str(started_thrice))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "run 2 of 3" in proc.stdout
    proc = run(str(started_thrice), "--against", str(started_thrice))
    assert proc.returncode == 0 and proc.stdout.count("the same episodes") == 3, proc.stderr[-2000:]

    (tmp_path / "empty").mkdir()
    proc = run(str(tmp_path / "empty"))
    assert proc.returncode != 0 and f"{tmp_path / 'empty'}: no metrics.jsonl" in proc.stderr
    write(started_thrice / "episodes.dropped.jsonl", [episode(1, 0.5), episode(1, 0.5)])
    proc = run(str(started_thrice))
    assert proc.returncode != 0 and "do not hold the same steps" in proc.stderr


def test_a_replayed_step_is_marked_and_not_held_to_how_it_ran(tmp_path: Path) -> None:
    first = {**metric(1, 0.5, 100), "train/reused_prompt_share": 0.4}
    replayed = {**metric(1, 0.5, 40), "train/reused_prompt_share": 0.0, "train/replayed": 1.0}
    folder = run_folder(tmp_path / "run", [replayed], [episode(1, 0.5)] * 2, [first], [episode(1, 0.5)] * 2)
    (row,) = repeats.repeat_rows(folder)
    assert row.endswith("| the same (replayed: its policy turns read back from the log, not decoded)")
