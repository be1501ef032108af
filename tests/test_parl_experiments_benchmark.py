"""A tiny run of benchmarks/parl_experiments.py so that it cannot rot: two conditions, one
seed, one GRPO step each from a tiny random warm start (side by side, in two processes), then
the evaluation on one test task, the results files and the plot; a second run finds the
training done; a third evaluates at two critical-step budgets; later ones gather evaluations,
find a run whose checkpoints are gone finished, and keep what an evaluation that fails halfway
finished."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")
pytest.importorskip("matplotlib")

from nano_support import tiny_policy  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parl_experiments.py"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_two_conditions_train_evaluate_and_plot(tmp_path: Path) -> None:
    policy = tiny_policy(tmp_path / "policy")
    config = tmp_path / "parl.yaml"
    config.write_text(yaml.safe_dump({
        "policy": str(policy), "subagent": "expert", "world_seeds": [31], "min_rows": 3, "max_rows": 8,
        "steps": 5, "tasks_per_step": 1, "group_size": 2, "minibatch": 2, "max_new_tokens": 16, "lr": 1e-3,
        "checkpoint_every": 1, "out_dir": str(tmp_path / "unused"), "eval_every": 1, "eval_tasks": 1,
        # Room for the scripted fixed-width control to finish its table.
        "budgets": {"max_critical_steps": 40, "max_orchestrator_steps": 40, "max_subagent_steps": 40, "max_tool_calls": 300},
    }))
    out = tmp_path / "exp"
    args = ["--config", str(config), "--conditions", "A,B", "--seeds", "0", "--steps", "1", "--eval-tasks", "1",
            "--width", "2", "--out", str(out), "--prefix-notes", "verbatim", "--temperature", "0.8"]
    first = _run(*args, "--jobs", "2")  # the two runs side by side, each in its own process
    assert f"{out / 'A-perf-only' / 'seed0'}: training 1 steps" in first.stdout
    assert f"{out / 'B-annealed' / 'seed0'}: training 1 steps" in first.stdout
    assert "A-perf-only/seed0 step 1: reward" in first.stdout and "B-annealed/seed0 step 1: reward" in first.stdout

    # Condition A trains on r_perf alone; B keeps the config's annealed lambda1.
    lambda1 = {}
    for condition in ("A-perf-only", "B-annealed"):
        metrics = [json.loads(line) for line in (out / condition / "seed0" / "metrics.jsonl").read_text().splitlines()]
        assert [m["step"] for m in metrics] == [1]
        lambda1[condition] = metrics[0]["episode/lambda1"]
    assert lambda1["A-perf-only"] == 0.0 < lambda1["B-annealed"]
    saved = yaml.safe_load((out / "A-perf-only" / "seed0" / "config.yaml").read_text())
    assert saved["prefix_notes"] == "verbatim" and saved["temperature"] == 0.8

    rows = json.loads((out / "results.json").read_text())
    assert [(r["condition"], r["seed"]) for r in rows] == [("warm start", None), ("control", None), ("A", 0), ("B", 0)]
    # Each row names what it evaluated: the warm start's folder, the control, each run's last checkpoint.
    assert [r["policy"] for r in rows] == [str(policy), "expert:find,agents=2",
                                          str(out / "A-perf-only" / "seed0" / "checkpoints" / "step-00001"),
                                          str(out / "B-annealed" / "seed0" / "checkpoints" / "step-00001")]
    for r in rows:
        assert r["tasks"] == 1 and r["eval_world_seed"] == 77 and r["eval_split"] == "test" and r["critical_budget"] == 40
        assert 0.0 <= r["item_f1"] <= 1.0 and r["errors"] >= 0
    assert all(r["seconds"] >= 0 for r in rows) and rows[0]["seconds"] > 0
    assert rows[0]["policy_tokens"] > 0 and rows[1]["policy_tokens"] == 0  # a local policy's tokens; the scripted control has none
    control = rows[1]
    assert control["label"] == "fixed width 2 (scripted orchestrator)"
    assert control["subagents"] == 2 and control["item_f1"] > 0.5  # the expert control answers
    md = (out / "results.md").read_text()
    assert md.startswith("| orchestrator | critical-step budget | sub-agents run | tasks | Item-F1 |")
    assert "| A perf-only | 1 (world 77 test) | 40 | 1 |" in md and "| B annealed | 1 (world 77 test) | 40 | 1 |" in md
    assert (out / "parl-curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    training = (out / "training.md").read_text().splitlines()
    assert training[0].startswith("| run | steps | episodes |")
    assert training[2].startswith("| A perf-only seed0 | 1 | 2 |") and training[3].startswith("| B annealed seed0 | 1 | 2 |")
    # Each run evaluated itself greedily before its step and after it (eval_every): a table and a plot of it.
    assert training[5] == "Greedy evaluations during training (the config's eval_every):"
    assert training[9].startswith("| A perf-only seed0 | 2 (world 78, dev, 1) |")
    assert training[10].startswith("| B annealed seed0 | 2 (world 78, dev, 1) |") and len(training) == 11
    assert (out / "parl-eval-curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    second = _run(*args, "--skip-eval")  # resumable: finished runs are not trained again
    assert second.stdout.count(": finished earlier") == 2 and ": training " not in second.stdout

    # Each policy once per critical-step budget: at 3 steps nothing may run past 3. The rows at 40
    # replace those of the first evaluation in place (B's stays); those at 3 come after.
    _run(*args, "--skip-train", "--conditions", "A", "--eval-critical-steps", "40,3")
    # The plots and training.md cover every run under --out, not only this invocation's conditions.
    assert [line.split(" | ")[0] for line in (out / "training.md").read_text().splitlines()[2:4]] == [
        "| A perf-only seed0", "| B annealed seed0"]
    rows = json.loads((out / "results.json").read_text())
    assert [(r["condition"], r["critical_budget"]) for r in rows] == [
        ("warm start", 40), ("control", 40), ("A", 40), ("B", 40), ("warm start", 3), ("control", 3), ("A", 3)]
    assert all(r["critical_steps"] <= 3 for r in rows if r["critical_budget"] == 3)
    episodes = [json.loads(line) for line in (out / "results-episodes.jsonl").read_text().splitlines()]
    # The episodes in the rows' order: those at 40 in place of the first evaluation's (B's stays), those at 3 after.
    assert [(e["condition"], e["critical_budget"]) for e in episodes] == [(r["condition"], r["critical_budget"]) for r in rows]
    assert all(e["task"].startswith("world_test_") and "answer" in e and e["critical_steps"] <= e["critical_budget"] for e in episodes)
    assert rows[5]["item_f1"] < rows[1]["item_f1"]  # the control cannot finish its table in 3 steps

    # The runs alone: the warm start and the control scored as before. The new evaluation replaces
    # the same row of the old and leaves the rest: evaluations of several sessions gather.
    (out / "results.json").write_text(json.dumps([{**r, "item_f1": -1.0} if r["condition"] == "A" else r for r in rows]))
    # A's episode at 3, moved first and marked, is replaced where it stands.
    moved = [{**e, "stale": True} for e in episodes if (e["condition"], e["critical_budget"]) == ("A", 3)]
    rest = [e for e in episodes if (e["condition"], e["critical_budget"]) != ("A", 3)]
    (out / "results-episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in moved + rest))
    _run(*args, "--skip-train", "--conditions", "A", "--eval-critical-steps", "3", "--no-baselines")
    gathered = json.loads((out / "results.json").read_text())
    assert [(r["condition"], r["critical_budget"]) for r in gathered] == [(r["condition"], r["critical_budget"]) for r in rows]
    assert [r["item_f1"] for r in gathered] == [r["item_f1"] for r in rows[:2]] + [-1.0] + [r["item_f1"] for r in rows[3:]]
    again = [json.loads(line) for line in (out / "results-episodes.jsonl").read_text().splitlines()]
    assert [(e["condition"], e["critical_budget"]) for e in again] == [("A", 3)] + [(e["condition"], e["critical_budget"]) for e in rest]
    assert "stale" not in again[0] and again[1:] == rest

    # Another split (to choose among checkpoints without the test tasks) adds rows beside the test split's.
    _run(*args, "--skip-train", "--conditions", "A", "--eval-critical-steps", "3", "--no-baselines", "--eval-split", "dev")
    both = json.loads((out / "results.json").read_text())
    assert both[:-1] == gathered and (both[-1]["condition"], both[-1]["eval_split"]) == ("A", "dev")
    last = (out / "results.md").read_text().split("\n\nMean")[0].splitlines()[-1]
    assert last.startswith("| A seed 0 | 3 | ") and "| 1 (world 77 dev) |" in last
    gathered = both

    # A record whose checkpoints are gone (experiments/ keeps logs in git, not weights): trained, not evaluable.
    shutil.rmtree(out / "A-perf-only" / "seed0" / "checkpoints")
    kept = _run(*args, "--conditions", "A", "--no-baselines")
    assert "A-perf-only/seed0: finished earlier (its checkpoints are gone, its record stays)" in kept.stdout
    assert "A-perf-only/seed0: no checkpoint to evaluate" in kept.stdout
    assert json.loads((out / "results.json").read_text()) == gathered

    # An evaluation cut short keeps what it finished: B's checkpoint no longer loads, so the run
    # stops at B, after the warm start and the control were evaluated at the new budget.
    final_b = out / "B-annealed" / "seed0" / "checkpoints" / "step-00001"
    for weights in final_b.glob("*.safetensors"):
        weights.write_bytes(b"not weights")
    broken = subprocess.run([sys.executable, str(SCRIPT), *args, "--skip-train", "--conditions", "B",
                             "--eval-critical-steps", "5"], capture_output=True, text=True, timeout=300)
    assert broken.returncode != 0
    kept_rows = json.loads((out / "results.json").read_text())
    assert kept_rows[:len(gathered)] == gathered
    assert [(r["condition"], r["critical_budget"]) for r in kept_rows[len(gathered):]] == [("warm start", 5), ("control", 5)]
    budgets = [(e["condition"], e["critical_budget"]) for e in map(json.loads, (out / "results-episodes.jsonl").read_text().splitlines())]
    assert budgets[-2:] == [("warm start", 5), ("control", 5)] and "| 5 |" in (out / "results.md").read_text()

    # Baselines alone: rows for them, no empty training plot.
    alone = tmp_path / "baselines"
    _run(*args, "--conditions=", "--skip-train", "--eval-critical-steps", "3", "--out", str(alone))
    assert [r["condition"] for r in json.loads((alone / "results.json").read_text())] == ["warm start", "control"]
    assert not (alone / "parl-curves.png").exists() and not (alone / "parl-eval-curves.png").exists()
    # Another warm start (--policy) gets rows of its own beside the config's; the control is redone in place.
    _run(*args, "--conditions=", "--skip-train", "--eval-critical-steps", "3", "--out", str(alone), "--policy", str(policy))
    labels = [r["label"] for r in json.loads((alone / "results.json").read_text())]
    assert labels == ["warm start", "fixed width 2 (scripted orchestrator)", f"warm start ({policy})"]

    bad = subprocess.run([sys.executable, str(SCRIPT), *args, "--skip-train", "--eval-critical-steps", "8,0"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--eval-critical-steps takes numbers of at least 1, not '8,0'" in bad.stderr


def test_stop_after_leaves_the_runs_after_a_stopped_one_unstarted(tmp_path: Path) -> None:
    policy = tiny_policy(tmp_path / "policy")
    config = tmp_path / "parl.yaml"
    config.write_text(yaml.safe_dump({
        "policy": str(policy), "subagent": "expert", "world_seeds": [31], "min_rows": 3, "max_rows": 8, "steps": 2,
        "tasks_per_step": 1, "group_size": 2, "minibatch": 2, "max_new_tokens": 16, "out_dir": str(tmp_path / "unused"),
    }))
    out = tmp_path / "exp"
    args = ["--config", str(config), "--conditions", "A,B", "--seeds", "0", "--out", str(out), "--skip-eval"]
    refused = subprocess.run([sys.executable, str(SCRIPT), *args, "--stop-after", "0"], capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode != 0 and "--stop-after takes a number of minutes above 0" in refused.stderr
    marginless = subprocess.run([sys.executable, str(SCRIPT), *args, "--stop-after", "5", "--stop-margin", "0.5"],
                                capture_output=True, text=True, timeout=300)
    assert marginless.returncode != 0 and "--stop-margin takes a factor of at least 1, not 0.5" in marginless.stderr
    niceless = subprocess.run([sys.executable, str(SCRIPT), *args, "--nice", "20"], capture_output=True, text=True,
                              timeout=300)
    assert niceless.returncode != 0 and "--nice takes a number from 0 to 19, not 20" in niceless.stderr
    # A deadline 6 ms away has passed before the first step: A starts none, B is not started. At the lowest
    # priority, in a session of its own so that the suite's session is not lowered with it.
    stopped = subprocess.run([sys.executable, str(SCRIPT), *args, "--stop-after", "0.0001", "--nice", "19"],
                             capture_output=True, text=True, timeout=300, start_new_session=True)
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert "--nice 19: process nice" in stopped.stdout or os.getpriority(os.PRIO_PROCESS, 0) == 19
    assert f"{out / 'A-perf-only' / 'seed0'}: stopped for the deadline at step 0 of 2; the same command resumes it" in stopped.stdout
    assert not (out / "B-annealed" / "seed0" / "config.yaml").exists()
