"""The agent loop and the orchestrator, driven by scripted models."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import pytest

from parlswarm import Agent, Budgets, Swarm, tool
from parlswarm.models import ScriptedModel, calls_reply, tool_reply
from parlswarm.trace import Trace, summarize
from parlswarm.trace.events import AgentStarted, BudgetEvent
from parlswarm.types import Message, ToolMessage, content_text


def _turn(messages: Sequence[Message]) -> int:
    return sum(1 for m in messages if m.role == "assistant")


def _task(messages: Sequence[Message]) -> str:
    return content_text(messages[1].content)


@tool
def lookup(key: str) -> str:
    """Look up a key.

    Args:
        key: What to look up.
    """
    return f"value:{key}"


def looker(calls: int):
    """A sub-agent script: `calls` lookups of its task, then an answer."""

    def script(messages: Sequence[Message]):
        turn = _turn(messages)
        if turn < calls:
            return tool_reply("lookup", {"key": f"{_task(messages)}#{turn}"})
        return f"done {_task(messages)}"

    return ScriptedModel(script, name="looker")


def orchestrate(n: int, tools: list[str] | None = ("lookup",)) -> ScriptedModel:  # type: ignore[assignment]
    """Create one worker, assign n tasks in one turn, then answer with what came back."""

    def script(messages: Sequence[Message]):
        turn = _turn(messages)
        if turn == 0:
            args = {"name": "worker", "system_prompt": "Work."}
            if tools is not None:
                args["tools"] = list(tools)
            return tool_reply("create_subagent", args)
        if turn == 1:
            return calls_reply([("assign_task", {"agent": "worker", "prompt": f"t{i}"}) for i in range(n)])
        results = [content_text(m.content) for m in messages if isinstance(m, ToolMessage)][1:]
        return " | ".join(results)

    return ScriptedModel(script, name="orch")


async def test_single_agent_loop_answers_with_usage_and_trace() -> None:
    agent = Agent("solo", looker(3), system_prompt="Be brief.", tools=[lookup])
    trace = Trace()
    result = await agent.run("x", trace=trace)
    assert result.complete and result.content == "done x"
    assert result.steps == 4 and result.tool_calls == 3
    assert result.usage.total_tokens > 0
    kinds = [e.kind for e in trace.events]
    assert kinds.count("model_call") == 4 and kinds.count("tool_finished") == 3


async def test_tool_calls_of_one_turn_run_concurrently() -> None:
    barrier = asyncio.Barrier(3)

    @tool
    async def meet(i: int) -> str:
        """Waits until all three calls have arrived: deadlocks if calls run one by one."""
        await asyncio.wait_for(barrier.wait(), 5)
        return f"met {i}"

    model = ScriptedModel([calls_reply([("meet", {"i": i}) for i in range(3)]), "all met"])
    result = await Agent("a", model, tools=[meet]).run("go")
    assert result.content == "all met"
    assert result.tool_calls == 3


async def test_calls_past_the_per_step_cap_are_answered_with_a_refusal_not_run() -> None:
    seen: list[str] = []

    def script(messages: Sequence[Message]):
        if _turn(messages) == 0:
            return calls_reply([("lookup", {"key": f"k{i}"}) for i in range(5)])
        seen.extend(content_text(m.content) for m in messages if isinstance(m, ToolMessage))
        return "done"

    swarm = Swarm(ScriptedModel(script), tools=[lookup], mode="single", budgets=Budgets(max_tool_calls_per_step=2))
    result = await swarm.run("look up five keys")
    assert result.answer == "done"
    assert seen[:2] == ["value:k0", "value:k1"]
    assert len(seen) == 5 and all(s.startswith("error: refused: at most 2 tool calls a step") for s in seen[2:])
    assert result.summary.tool_calls == 2  # the refused calls never ran
    refusals = [e for e in result.trace.events if isinstance(e, BudgetEvent) and e.budget == "max_tool_calls_per_step"]
    assert len(refusals) == 1 and "the 3 after the first 2" in refusals[0].detail
    with pytest.raises(ValueError):
        Budgets(max_tool_calls_per_step=0)


async def test_orchestrator_runs_subagents_in_parallel_from_fresh_context() -> None:
    barrier = asyncio.Barrier(4)
    seen: list[list[str]] = []

    def sub(messages: Sequence[Message]):
        if _turn(messages) == 0:
            seen.append([m.role for m in messages])
            return tool_reply("meet", {"who": _task(messages)})
        return f"ok {_task(messages)}"

    @tool
    async def meet(who: str) -> str:
        """Meet the others."""
        await asyncio.wait_for(barrier.wait(), 5)
        return who

    swarm = Swarm(orchestrate(4, ["meet"]), subagent_model=ScriptedModel(sub, name="sub"), tools=[meet])
    result = await swarm.run("do four things")
    assert result.answer == "ok t0 | ok t1 | ok t2 | ok t3"
    # Each sub-agent saw only its own system prompt and task: no orchestrator context.
    assert seen == [["system", "user"]] * 4
    s = result.summary
    assert s.subagents == 4 and s.subagents_per_spawn_step == [4]
    assert s.orchestrator_steps == 3
    assert s.critical_steps == 3 + 2  # orchestrator steps + the longest sub-agent
    assert s.steps == 3 + 4 * 2


async def test_subagent_internals_never_reach_the_orchestrator() -> None:
    orch = orchestrate(1)
    swarm = Swarm(orch, subagent_model=looker(2), tools=[lookup])
    result = await swarm.run("t")
    orchestrator_tool_results = [e for e in result.trace.events if e.kind == "tool_finished" and e.agent_id == "orchestrator"]
    assert [e.result for e in orchestrator_tool_results][1] == "done t0"
    assert "value:" not in result.answer


async def test_frozen_subagent_model_and_tool_restriction() -> None:
    @tool
    def secret() -> str:
        """Only the orchestrator may use this."""
        return "s3cret"

    def sub(messages: Sequence[Message]):
        if _turn(messages) == 0:
            return tool_reply("secret", {})
        return content_text(messages[-1].content)

    swarm = Swarm(orchestrate(1, ["lookup"]), subagent_model=ScriptedModel(sub, name="frozen"), tools=[lookup, secret])
    result = await swarm.run("t")
    starts = [e for e in result.trace.events if isinstance(e, AgentStarted)]
    assert starts[1].model == "frozen" and starts[1].tools == ["lookup"]
    assert result.answer == "error: unknown tool 'secret'; available tools: lookup"


async def test_a_tool_added_to_the_menu_is_usable_by_orchestrator_and_subagents() -> None:
    @tool
    def new_tool(x: int) -> int:
        """Doubles."""
        return 2 * x

    def sub(messages: Sequence[Message]):
        return tool_reply("new_tool", {"x": 21}) if _turn(messages) == 0 else content_text(messages[-1].content)

    def orch(messages: Sequence[Message]):
        turn = _turn(messages)
        if turn == 0:
            return calls_reply([("new_tool", {"x": 1}), ("create_subagent", {"name": "w", "system_prompt": "w"})])
        if turn == 1:
            return tool_reply("assign_task", {"agent": "w", "prompt": "go"})
        return ",".join(content_text(m.content) for m in messages if isinstance(m, ToolMessage))

    result = await Swarm(ScriptedModel(orch), subagent_model=ScriptedModel(sub), tools=[new_tool]).run("t")
    assert result.answer.split(",")[0] == "2" and result.answer.endswith(",42")


async def test_spawn_swarm_batch_form_accepts_seed_format() -> None:
    orch = ScriptedModel([
        tool_reply("spawn_swarm", {"agents": [
            {"role": "sub_agent_01", "task": "NVIDIA", "tool_access": ["lookup"]},
            {"role": "sub_agent_02", "task": "Tesla", "tools": ["lookup"]},
            {"role": "sub_agent_03", "task": "PDD"},
        ]}),
        "merged",
    ])
    result = await Swarm(orch, subagent_model=looker(1), tools=[lookup]).run("news")
    report = json.loads(next(e.result for e in result.trace.events
                             if e.kind == "tool_finished" and e.agent_id == "orchestrator"))
    assert [r["result"] for r in report] == ["done NVIDIA", "done Tesla", "done PDD"]
    assert all(r["complete"] for r in report)
    assert result.summary.subagents_per_spawn_step == [3]


async def test_nesting_depth_is_one_unless_configured() -> None:
    result = await Swarm(orchestrate(1, None), subagent_model=looker(0), tools=[lookup]).run("t")
    sub_start = [e for e in result.trace.events if isinstance(e, AgentStarted)][1]
    assert "assign_task" not in sub_start.tools
    deeper = Swarm(orchestrate(1, None), subagent_model=looker(0), tools=[lookup], budgets=Budgets(max_depth=2))
    result = await deeper.run("t")
    sub_start = [e for e in result.trace.events if isinstance(e, AgentStarted)][1]
    assert {"create_subagent", "assign_task", "spawn_swarm"} <= set(sub_start.tools)


async def test_single_mode_has_no_orchestration_tools() -> None:
    result = await Swarm(looker(2), tools=[lookup], mode="single").run("x")
    start = next(e for e in result.trace.events if isinstance(e, AgentStarted))
    assert start.tools == ["lookup"] and result.answer == "done x"


async def test_subagent_budget_refuses_the_101st_and_the_run_still_answers() -> None:
    swarm = Swarm(orchestrate(101), subagent_model=looker(0), tools=[lookup])
    result = await swarm.run("t")
    assert result.complete
    parts = result.answer.split(" | ")
    assert len(parts) == 101 and parts[:100] == [f"done t{i}" for i in range(100)]
    assert parts[100].startswith("error: refused: the run's sub-agent budget (100) is used up")
    assert result.summary.subagents == 100
    assert any(isinstance(e, BudgetEvent) and e.budget == "max_subagents" for e in result.trace.events)


async def test_tool_call_budget_refuses_the_1501st_and_the_run_still_answers() -> None:
    # 1 create + 100 assign + 100 x 14 lookups = 1501 tool calls wanted; the budget is 1500.
    swarm = Swarm(orchestrate(100), subagent_model=looker(14), tools=[lookup])
    result = await swarm.run("t")
    assert result.complete and result.summary.tool_calls == 1500
    refusals = [e for e in result.trace.events if isinstance(e, BudgetEvent) and e.budget == "max_tool_calls"
                and e.action == "refused"]
    assert len(refusals) == 1
    assert "tool-call budget (1500) is used up" in refusals[0].detail


async def test_concurrency_budget_is_never_exceeded() -> None:
    running = peak = 0

    @tool
    async def slow(key: str) -> str:
        """Slow."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return key

    def sub(messages: Sequence[Message]):
        return tool_reply("slow", {"key": "k"}) if _turn(messages) == 0 else "ok"

    swarm = Swarm(orchestrate(12, ["slow"]), subagent_model=ScriptedModel(sub), tools=[slow],
                  budgets=Budgets(max_concurrent_subagents=3))
    result = await swarm.run("t")
    assert result.answer.count("ok") == 12
    assert peak == 3


async def test_subagent_out_of_steps_returns_partial_findings_marked_incomplete() -> None:
    swarm = Swarm(orchestrate(1), subagent_model=looker(10), tools=[lookup], budgets=Budgets(max_subagent_steps=3))
    result = await swarm.run("t")
    assert result.answer.startswith("[incomplete: step budget of 3 used up]")
    assert "value:t0#2" in result.answer  # the latest finding is kept


async def test_critical_step_budget_bounds_the_run() -> None:
    swarm = Swarm(orchestrate(2), subagent_model=looker(10), tools=[lookup], budgets=Budgets(max_critical_steps=8))
    result = await swarm.run("t")
    assert result.summary.critical_steps <= 8
    # 8 critical steps: orchestrator step 1, step 2 itself, one kept for the answer: sub-agents get 5.
    assert all(e.steps <= 5 for e in result.trace.events if e.kind == "agent_finished" and e.agent_id != "orchestrator")
    assert result.complete  # the orchestrator still had its last step for the answer


async def test_token_and_time_budgets_stop_cleanly() -> None:
    result = await Swarm(looker(50), tools=[lookup], mode="single", budgets=Budgets(max_tokens=300)).run("x")
    assert not result.complete and result.result.stop_reason == "budget"
    assert "token budget (300) used up" in result.answer

    async def slow_model(messages):  # noqa: ANN001
        await asyncio.sleep(10)

    class Slow:
        name = "slow"

        async def complete(self, messages, tools):  # noqa: ANN001
            await asyncio.sleep(10)

    result = await Swarm(Slow(), mode="single", budgets=Budgets(max_seconds=0.2)).run("x")
    assert not result.complete and "wall-clock budget (0.2s) used up" in result.answer


async def test_a_failing_subagent_is_isolated_from_its_siblings() -> None:
    def sub(messages: Sequence[Message]):
        if _task(messages) == "t1":
            raise RuntimeError("model crashed")
        return "fine"

    result = await Swarm(orchestrate(3, None), subagent_model=ScriptedModel(sub)).run("t")
    assert result.answer == "fine | error: sub-agent 'worker' failed: RuntimeError: model crashed | fine"


async def test_unknown_subagent_and_bad_arguments_are_explained() -> None:
    orch = ScriptedModel([
        calls_reply([("assign_task", {"agent": "ghost", "prompt": "x"}), ("assign_task", {"agent": 3})]),
        "gave up",
    ])
    result = await Swarm(orch).run("t")
    errors = [e.result for e in result.trace.events if e.kind == "tool_finished"]
    assert errors[0] == "error: no sub-agent named 'ghost' (defined: none yet); create it with create_subagent first"
    assert "'agent': Input should be a valid string" in errors[1] and "'prompt': Field required" in errors[1]


async def test_trace_roundtrips_through_jsonl(tmp_path) -> None:  # noqa: ANN001
    result = await Swarm(orchestrate(3), subagent_model=looker(2), tools=[lookup]).run("t")
    path = result.trace.save_jsonl(tmp_path / "t.jsonl")
    loaded = Trace.load_jsonl(path)
    assert len(loaded.events) == len(result.trace.events)
    assert summarize(loaded.events) == result.summary
    assert result.summary.critical_steps == 3 + 3


def test_bad_trace_file_names_the_line(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind": "nope"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: not a parlswarm trace event"):
        Trace.load_jsonl(path)


async def test_run_streamed_yields_events_as_they_happen() -> None:
    swarm = Swarm(orchestrate(2), subagent_model=looker(1), tools=[lookup])
    kinds = [e.kind async for e in swarm.run_streamed("t")]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("agent_started") == 3
