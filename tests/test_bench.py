"""``parlswarm bench``: runs, scores, measures and reports; bad input is reported, not fatal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from world_support import cache_dir, tasks, world

import parlswarm.bench as bench_module
from parlswarm.bench import (
    BenchConfig,
    BenchResult,
    LatencyModel,
    finish,
    load_bench_tasks,
    run_bench,
    write_reports,
)
from parlswarm.cli import main
from parlswarm.models import ScriptedModel
from parlswarm.scoring import aevaluate_files
from parlswarm.types import Budgets
from parlswarm.world.expert import ExpertModel
from parlswarm.world.tasks import write_tasks
from parlswarm.world.tools import world_tools


@pytest.fixture
def task_dir(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four small test tasks of world seed 0, as files."""
    small = [t for t in tasks("test", 0, tmp_path_factory) if len(t.rows) <= 9][:4]
    write_tasks(small, tmp_path / "tasks")
    return tmp_path / "tasks"


def test_budgets_come_from_one_config_by_task_size(tmp_path: Path) -> None:
    config = BenchConfig()
    assert config.budgets_for(5).max_orchestrator_steps < config.budgets_for(45).max_orchestrator_steps
    assert config.budgets_for(45).max_tool_calls == 1500
    custom = tmp_path / "bench.yaml"
    custom.write_text("tiers:\n  - min_rows: 0\n    budgets: {max_orchestrator_steps: 7}\n", encoding="utf-8")
    assert BenchConfig.from_yaml(custom).budgets_for(100).max_orchestrator_steps == 7
    custom.write_text("tiers:\n  - min_rows: 0\n    budgets: {max_steps: 7}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"bench config {custom}"):
        BenchConfig.from_yaml(custom)
    capped = config.capped(20)  # every tier, orchestrator and sub-agents; lower budgets stay
    assert [t.budgets.max_orchestrator_steps for t in capped.tiers] == [20, 20]
    assert capped.budgets_for(45).max_subagent_steps == 20 and capped.budgets_for(45).max_tool_calls == 1500
    assert config.capped(1000).budgets_for(5) == config.budgets_for(5)
    with pytest.raises(ValueError, match="at least 1"):
        config.capped(0)


async def test_latency_model_is_labelled_and_waits_before_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(bench_module.asyncio, "sleep", fake_sleep)
    model = LatencyModel(ScriptedModel(["hi"], name="inner"), 0.2)
    assert model.name == "inner [+0.2s/call emulated latency]"
    response = await model.complete([], [])
    assert response.message.content == "hi" and waits == [0.2]
    with pytest.raises(ValueError, match="latency must be ≥ 0 seconds"):
        LatencyModel(model, -1)


async def test_bench_runs_scores_and_writes_reports(task_dir: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    chosen, errors, seed = load_bench_tasks(task_dir / "tasks.jsonl", task_dir / "gold")
    assert not errors and seed == 0 and len(chosen) == 4
    seen = []
    runs = await run_bench(
        chosen, [ExpertModel()], world_tools(world(0, tmp_path_factory)), trials=2, trace_dir=tmp_path / "traces", on_run=seen.append
    )
    assert len(runs) == len(seen) == 4 * 2 * 2
    assert all(r.item_f1 == 1.0 and r.row_f1 == 1.0 and r.success == 1.0 and r.complete for r in runs)
    assert all(r.subagents == 0 for r in runs if r.mode == "single") and all(r.subagents >= 2 for r in runs if r.mode == "swarm")
    assert len(list((tmp_path / "traces").glob("*.jsonl"))) == 16
    result = finish(BenchResult(
        tasks_file=str(task_dir / "tasks.jsonl"), gold_dir=str(task_dir / "gold"), world_seed=0, models=["scripted expert"],
        modes=["single", "swarm"], trials=2, latency=None, config=BenchConfig(), runs=runs,
    ))  # fmt: skip
    by_mode = {g.mode: g for g in result.summary}
    assert by_mode["single"].tasks == 4 and by_mode["single"].runs == 8 and by_mode["swarm"].item_f1 == 1.0
    assert by_mode["swarm"].critical_steps < by_mode["single"].critical_steps
    ratio = result.ratios[0]
    assert ratio.subset == "all tasks" and ratio.tasks == 4 and ratio.critical_steps is not None and ratio.critical_steps < 1
    out = tmp_path / "out"
    paths = write_reports(result, out)
    data = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert len(data["runs"]) == 16 and data["summary"][0]["model"] == "scripted expert"
    md = paths["md"].read_text(encoding="utf-8")
    for heading in ("| mode | model | tasks | Item-F1 | Row-F1 | success | critical steps | total steps | sub-agents | tool calls | tokens | wall-clock (s)", "## Swarm vs single"):
        assert heading in md
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The saved responses score the same with `parlswarm eval`'s library.
    report = await aevaluate_files(task_dir / "tasks.jsonl", task_dir / "gold", out / "responses" / "swarm.scripted-expert.jsonl")
    assert report.summary.at("item_f1") == 1.0 and report.trials == 2


async def test_a_response_without_a_table_scores_zero_and_says_why(task_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    chosen, _, _ = load_bench_tasks(task_dir / "tasks.jsonl", task_dir / "gold", limit=1)
    runs = await run_bench(chosen, [ScriptedModel(["I could not find it."], name="shrug")], world_tools(world(0, tmp_path_factory)), modes=["single"])
    assert runs[0].item_f1 == 0.0 and runs[0].error and "table" in runs[0].error


def test_bad_input_is_reported_with_file_and_task_and_the_rest_still_run(
    task_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks_file, gold = task_dir / "tasks.jsonl", task_dir / "gold"
    lines = tasks_file.read_text(encoding="utf-8").splitlines()
    ids = [json.loads(line)["instance_id"] for line in lines]
    unknown = json.loads(lines[2])
    unknown["spec"]["columns"].append("favourite_food")
    lines[2] = json.dumps(unknown)
    lines.insert(1, '{"instance_id": "broken", "query": ')  # malformed line 2
    tasks_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (gold / f"{ids[3]}.csv").unlink()
    world(0, tmp_path_factory)
    out = tmp_path_factory.mktemp("bench-out")
    monkeypatch.setattr(sys, "argv", [
        "parlswarm", "bench", "--tasks", str(tasks_file), "--gold", str(gold), "--model", "expert",
        "--out", str(out), "--cache-dir", str(cache_dir(tmp_path_factory)),
    ])  # fmt: skip
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    assert done.value.code == 1
    err = " ".join(captured.err.split())
    assert f"{tasks_file} line 2: not valid JSON" in err
    assert f"{tasks_file} (task {ids[2]}): bad spec: unknown field 'favourite_food'" in err
    assert f"{gold / (ids[3] + '.csv')} (task {ids[3]}): gold table for task {ids[3]} not found" in err
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert sorted({r["instance_id"] for r in data["runs"]}) == [ids[0], ids[1]]
    assert all(r["item_f1"] == 1.0 for r in data["runs"]) and len(data["input_errors"]) == 3
    assert "## Input errors (these tasks were not run)" in (out / "results.md").read_text(encoding="utf-8")
    assert "| single | scripted expert | 2 | 100.0 |" in captured.out


def test_cli_split_run_with_filters(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    world(0, tmp_path_factory)
    out = tmp_path / "b"
    monkeypatch.setattr(sys, "argv", [
        "parlswarm", "bench", "--split", "test", "--max-rows", "8", "--limit", "2", "--mode", "swarm", "--out", str(out),
        "--subagent-model", "expert:find", "--cache-dir", str(cache_dir(tmp_path_factory)),
    ])  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main()
    captured = capsys.readouterr()
    assert done.value.code in (0, None), captured.err
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["modes"] == ["swarm"] and len(data["runs"]) == 2 and all(r["rows"] <= 8 for r in data["runs"])
    assert (out / "tasks" / "tasks.jsonl").is_file()
    # The frozen sub-agents' model is named in the results, the report and the printed table.
    assert data["models"] == ["scripted expert"] and data["subagent_model"] == "scripted expert (find)"
    assert "Sub-agents in swarm mode: `scripted expert (find)` (frozen)" in (out / "results.md").read_text(encoding="utf-8")
    assert "sub-agents: scripted expert (find)" in captured.out
    capped = tmp_path / "capped"  # --max-steps: a looping local model stops at the cap
    monkeypatch.setattr(sys, "argv", [
        "parlswarm", "bench", "--split", "test", "--limit", "1", "--mode", "single", "--max-steps", "3", "--out", str(capped),
        "--cache-dir", str(cache_dir(tmp_path_factory)),
    ])  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None), capsys.readouterr().err
    run = json.loads((capped / "results.json").read_text(encoding="utf-8"))["runs"][0]
    assert run["steps"] == 3 and run["stop_reason"] == "max_steps"
    monkeypatch.setattr(sys, "argv", ["parlswarm", "bench", "--out", str(out), "--mode", "swarm,solo", "--split", "test"])
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 2 and "--mode takes single and/or swarm, not solo" in capsys.readouterr().err


def test_other_world_seed_tasks_are_refused_by_name(task_dir: Path) -> None:
    _, errors, seed = load_bench_tasks(task_dir / "tasks.jsonl", task_dir / "gold", world_seed=3)
    assert seed == 3 and len(errors) == 4
    assert "made for world seed 0, the bench runs world seed 3" in str(errors[0])


async def test_budgets_of_the_config_bind_the_runs(task_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    chosen, _, _ = load_bench_tasks(task_dir / "tasks.jsonl", task_dir / "gold", limit=1)
    config = BenchConfig.model_validate({"tiers": [{"min_rows": 0, "budgets": Budgets(max_orchestrator_steps=3).model_dump()}]})
    runs = await run_bench(chosen, [ExpertModel()], world_tools(world(0, tmp_path_factory)), modes=["single"], config=config)
    assert runs[0].steps == 3 and not runs[0].complete and runs[0].stop_reason == "max_steps" and runs[0].item_f1 == 0.0
