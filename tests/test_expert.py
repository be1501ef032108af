"""The scripted expert: it solves the world's tasks by reading pages through the runtime."""

from __future__ import annotations

import dataclasses
import json

import pytest
from world_support import tasks, world

from parlswarm import Budgets, Swarm
from parlswarm.models import ModelSpecError, load_model
from parlswarm.models.registry import split_model_list
from parlswarm.scoring import WideSearchTask, load_gold, score_response
from parlswarm.trace.events import AgentStarted, ModelCalled, ToolStarted
from parlswarm.world.expert import NAME, ExpertModel
from parlswarm.world.fields import get_field
from parlswarm.world.tasks import TaskSpec, WorldTask, parse_query, render_query, write_tasks
from parlswarm.world.tools import world_tools
from parlswarm.world.world import World

BIG = Budgets(max_orchestrator_steps=400, max_tool_calls=1500)


def pick(all_tasks: list[WorldTask], low: int, high: int) -> WorldTask:
    return next(t for t in all_tasks if low <= len(t.rows) <= high)


def score(task: WorldTask, answer: str, tmp_path_factory: pytest.TempPathFactory) -> float:
    folder = tmp_path_factory.mktemp("gold")
    tasks_file, gold_dir = write_tasks([task], folder)
    wide = WideSearchTask.model_validate_json(tasks_file.read_text(encoding="utf-8").splitlines()[0])
    result = score_response(wide, load_gold(gold_dir, task.instance_id), answer)
    assert result.error is None, result.error
    return result.item_f1


@pytest.mark.parametrize("seed", [0, 1])
async def test_serial_and_swarm_solve_a_filtered_task(seed: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    w = world(seed, tmp_path_factory)
    task = next(t for t in tasks("test", seed, tmp_path_factory) if t.spec.filter is not None and len(t.rows) <= 15)
    for mode in ("single", "swarm"):
        result = await Swarm(ExpertModel(), tools=world_tools(w), mode=mode, budgets=BIG).run(task.query)
        assert result.complete
        assert score(task, result.answer, tmp_path_factory) == 1.0, (seed, mode)


async def test_serial_makes_one_tool_call_per_step_and_no_subagents(tmp_path_factory: pytest.TempPathFactory) -> None:
    task = pick(tasks("test", 0, tmp_path_factory), 6, 9)
    result = await Swarm(ExpertModel(), tools=world_tools(world(0, tmp_path_factory)), mode="single", budgets=BIG).run(task.query)
    calls = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    assert all(c.tool_calls <= 1 for c in calls) and calls[-1].tool_calls == 0
    assert result.summary.subagents == 0 and result.summary.steps == result.summary.tool_calls + 1
    tools_used = [e.tool for e in result.trace.events if isinstance(e, ToolStarted)]
    assert tools_used[:2] == ["search", "open_page"] and set(tools_used) == {"search", "open_page"}
    assert calls[0].model == NAME == "scripted expert"


async def test_swarm_partitions_rows_over_subagents_with_the_real_orchestration_tools(tmp_path_factory: pytest.TempPathFactory) -> None:
    task = pick(tasks("test", 0, tmp_path_factory), 20, 25)
    tools = world_tools(world(0, tmp_path_factory))
    serial = await Swarm(ExpertModel(), tools=tools, mode="single", budgets=BIG).run(task.query)
    swarm = await Swarm(ExpertModel(), tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert serial.answer == swarm.answer and score(task, swarm.answer, tmp_path_factory) == 1.0
    orchestrator_tools = [e.tool for e in swarm.trace.events if isinstance(e, ToolStarted) and e.agent_id == "orchestrator"]
    assert orchestrator_tools[:3] == ["search", "open_page", "create_subagent"]
    assigned = orchestrator_tools.count("assign_task")
    places = len(world(0, tmp_path_factory).factbook.regions[task.spec.region].members)
    assert assigned == swarm.summary.subagents == -(-places // 2)  # two places per sub-agent
    subagents = [e for e in swarm.trace.events if isinstance(e, AgentStarted) and e.parent_id == "orchestrator"]
    assert {s.name for s in subagents} == {"factbook-reader"} and len({s.parent_step for s in subagents}) == 1
    assert swarm.summary.critical_steps * 4 <= serial.summary.critical_steps


async def test_expert_reads_pages_not_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Change France's capital on its page only: the expert's answer follows the page."""
    base = world(0, tmp_path_factory)
    doc = base.docs["fr/government"]
    edited = dataclasses.replace(doc, text=doc.text.replace("## Capital\nname: Paris", "## Capital\nname: Lutetia"))
    assert edited.text != doc.text
    docs = {**base.docs, "fr/government": edited}
    altered = World(0, base.factbook, docs, base.index)
    query = render_query(TaskSpec(region="europe", columns=["capital", "population"]))
    result = await Swarm(ExpertModel(), tools=world_tools(altered), mode="swarm", budgets=BIG).run(query)
    france = next(line for line in result.answer.splitlines() if line.startswith("| France |"))
    assert "| Lutetia |" in france and "Paris" not in france
    assert base.value("fr", get_field("capital")) == "Paris"


async def test_budget_refusal_ends_with_a_partial_table(tmp_path_factory: pytest.TempPathFactory) -> None:
    task = pick(tasks("test", 0, tmp_path_factory), 17, 30)
    tight = Budgets(max_orchestrator_steps=400, max_tool_calls=12)
    result = await Swarm(ExpertModel(), tools=world_tools(world(0, tmp_path_factory)), mode="single", budgets=tight).run(task.query)
    assert result.complete and "incomplete: a budget ran out" in result.answer
    f1 = score(task, result.answer, tmp_path_factory)
    assert 0.0 < f1 < 1.0


async def test_other_tasks_get_a_plain_refusal(tmp_path_factory: pytest.TempPathFactory) -> None:
    result = await Swarm(ExpertModel(), tools=world_tools(world(0, tmp_path_factory))).run("Write a poem about the sea.")
    assert result.summary.tool_calls == 0 and result.answer.startswith("scripted expert: I only solve World Factbook table tasks")


async def test_find_reader_reads_each_place_in_one_turn_of_find_calls(tmp_path_factory: pytest.TempPathFactory) -> None:
    task = next(t for t in tasks("test", 1, tmp_path_factory) if t.spec.filter is not None and 4 <= len(t.rows) <= 15)
    tools = world_tools(world(1, tmp_path_factory))
    finder = load_model("expert:serial,find")
    assert isinstance(finder, ExpertModel) and finder.reader == "find" and finder.name == "scripted expert (serial, find)"
    serial = await Swarm(finder, tools=tools, mode="single", budgets=BIG).run(task.query)
    swarm = await Swarm(ExpertModel(reader="find"), tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert score(task, serial.answer, tmp_path_factory) == score(task, swarm.answer, tmp_path_factory) == 1.0
    used = {e.tool for e in serial.trace.events if isinstance(e, ToolStarted)}
    assert used == {"search", "open_page", "find"}  # open_page only for the region's index page
    places = len(world(1, tmp_path_factory).factbook.regions[task.spec.region].members)
    assert serial.summary.steps == 2 + places + 1  # search, index, one turn per place, answer
    sub_tools = [e.tool for e in swarm.trace.events if isinstance(e, ToolStarted) and e.agent_id != "orchestrator"]
    assert set(sub_tools) == {"find"}
    # Without the find tool on offer the find reader opens pages as before.
    plain = world_tools(world(1, tmp_path_factory)).subset(["search", "open_page"])
    fallback = await Swarm(finder, tools=plain, mode="single", budgets=BIG).run(task.query)
    assert score(task, fallback.answer, tmp_path_factory) == 1.0


async def test_model_forms(tmp_path_factory: pytest.TempPathFactory) -> None:
    auto, serial, wide = load_model("expert"), load_model("expert:serial"), load_model("expert:rows=5,agents=3")
    assert isinstance(auto, ExpertModel) and auto.name == "scripted expert"
    assert isinstance(serial, ExpertModel) and serial.name == "scripted expert (serial)"
    assert isinstance(wide, ExpertModel) and (wide.rows_per_agent, wide.max_agents) == (5, 3)
    assert split_model_list("expert:rows=5,agents=3,builtin,expert:serial,find") == [
        "expert:rows=5,agents=3", "builtin", "expert:serial,find"
    ]
    stepwise = load_model("expert:stepwise")
    assert isinstance(stepwise, ExpertModel) and stepwise.stepwise and stepwise.reader == "find"
    assert stepwise.name == "scripted expert (find, stepwise)"
    with pytest.raises(ValueError, match="reader='find'"):
        ExpertModel("auto", stepwise=True)
    with pytest.raises(ModelSpecError, match="unknown option 'fast' of model 'expert'"):
        load_model("expert:fast")
    task = pick(tasks("test", 0, tmp_path_factory), 12, 20)
    tools = world_tools(world(0, tmp_path_factory))
    collapsed = await Swarm(serial, tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert collapsed.summary.subagents == 0  # serial collapse on purpose: the baseline inside a swarm
    capped = await Swarm(wide, tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert capped.summary.subagents == 3
    assert score(task, collapsed.answer, tmp_path_factory) == score(task, capped.answer, tmp_path_factory) == 1.0


async def test_short_subtasks_carry_the_places_filter_and_columns_only(tmp_path_factory: pytest.TempPathFactory) -> None:
    task = next(t for t in tasks("test", 1, tmp_path_factory) if t.spec.filter is not None and 4 <= len(t.rows) <= 15)
    tools = world_tools(world(1, tmp_path_factory))
    short = load_model("expert:find,short")
    assert isinstance(short, ExpertModel) and short.name == "scripted expert (find, short)"
    result = await Swarm(short, tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert score(task, result.answer, tmp_path_factory) == 1.0
    prompts = [json.loads(e.arguments)["prompt"] for e in result.trace.events if isinstance(e, ToolStarted) and e.tool == "assign_task"]
    assert prompts
    parsed = parse_query(task.query)
    assert parsed is not None
    for prompt in prompts:
        back = parse_query(prompt)
        assert back is not None and back.header == parsed.header and back.filter == parsed.filter and back.places
        full = ExpertModel.subtask(parsed, back.places)
        assert len(prompt) * 2 < len(full) and "thousands separators" not in prompt


def test_check_tool_compares_a_number_with_a_condition_and_names_bad_arguments() -> None:
    from parlswarm.tools import ToolError
    from parlswarm.world.tools import check_number

    assert check_number("1885", "below 400 km") == "no: 1885 is not below 400"
    assert check_number("1,885", "above 400 km") == "yes: 1885 is above 400"
    assert check_number("62.3%", "above 20,000,000") == "no: 62.3 is not above 20000000"
    assert check_number("-5", "is below 0") == "yes: -5 is below 0"
    assert check_number("0.5", "exactly 0.50") == "yes: 0.5 is exactly 0.5"
    assert check_number("3", "Exactly 4") == "no: 3 is not exactly 4"
    with pytest.raises(ToolError, match="value must be a number.*'N/A'"):
        check_number("N/A", "below 400")
    with pytest.raises(ToolError, match="condition must read .*'under 400'"):
        check_number("12", "under 400")


async def test_check_tool_is_offered_on_request_and_the_find_expert_uses_it(tmp_path_factory: pytest.TempPathFactory) -> None:
    w = world(1, tmp_path_factory)
    assert world_tools(w).names() == ["search", "open_page", "find"]  # old prompts stay as they were
    tools = world_tools(w, check=True)
    assert tools.names() == ["search", "open_page", "find", "check"] and tools.get("check").deterministic  # type: ignore[union-attr]
    task = next(t for t in tasks("test", 1, tmp_path_factory) if t.spec.filter is not None and 4 <= len(t.rows) <= 15)
    finder = load_model("expert:serial,find")
    serial = await Swarm(finder, tools=tools, mode="single", budgets=BIG).run(task.query)
    swarm = await Swarm(ExpertModel(reader="find"), tools=tools, mode="swarm", budgets=BIG).run(task.query)
    assert score(task, serial.answer, tmp_path_factory) == score(task, swarm.answer, tmp_path_factory) == 1.0
    used = [e for e in serial.trace.events if isinstance(e, ToolStarted)]
    checks = [e for e in used if e.tool == "check"]
    # One check a place with every value found, none for a place lacking one: never more than places.
    places = len(w.factbook.regions[task.spec.region].members)
    assert len(task.rows) <= len(checks) <= places
    assert serial.summary.steps == 2 + places + len(checks) + 1
    sub_tools = {e.tool for e in swarm.trace.events if isinstance(e, ToolStarted) and e.agent_id != "orchestrator"}
    assert sub_tools == {"find", "check"}  # the orchestrator hands its sub-agents the tool too
    # A task without a filter never checks.
    plain = next(t for t in tasks("test", 1, tmp_path_factory) if t.spec.filter is None and len(t.rows) <= 15)
    result = await Swarm(finder, tools=tools, mode="single", budgets=BIG).run(plain.query)
    assert score(plain, result.answer, tmp_path_factory) == 1.0
    assert not any(isinstance(e, ToolStarted) and e.tool == "check" for e in result.trace.events)
