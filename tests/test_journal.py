"""The run journal: what it records, statuses, locking, replay, and resume in-process."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from parlswarm import Budgets, Swarm, security, tool
from parlswarm.journal import (
    Journal,
    JournalError,
    ResumedTrace,
    RunConfig,
    list_runs,
    replay_key,
    run_info,
)
from parlswarm.models import ScriptedModel
from parlswarm.models.base import ModelError
from parlswarm.swarm import RunResult
from parlswarm.trace.events import AgentFinished, AgentStarted, Event, ModelCalled, ToolFinished, ToolStarted
from parlswarm.types import Usage

N, K = 4, 3


def config(**kw: Any) -> RunConfig:
    return RunConfig(task="look up every item", model=f"faults-{N}x{K}", **kw)


# -- a deterministic workload without HTTP: the fault workload's responder behind ScriptedModel ----


class Counted:
    """Lookups that count how often each key was computed (to prove none is repeated)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.completed: Counter[str] = Counter()
        self.delay = delay

        @tool
        async def lookup(key: str) -> str:
            """Look up the value stored under a key.

            Args:
                key: The key.
            """
            await asyncio.sleep(self.delay)
            self.completed[key] += 1
            from parlswarm.testing.fault_workload import value

            return f"value {value(key)}"

        self.tool = lookup


def workload_model(n: int = N, k: int = K, delay: float = 0.0) -> ScriptedModel:
    from parlswarm.testing import fault_workload

    def reply(messages: Any) -> Any:
        body = {"model": f"faults-{n}x{k}", "messages": [m.model_dump(exclude_none=True) for m in messages]}
        orchestrating = any(m.role == "system" and "orchestrator" in str(m.content) for m in messages)
        body["tools"] = [{"function": {"name": "assign_task" if orchestrating else "lookup"}}]
        return fault_workload.responder(body)

    async def complete(messages: Any, tools: Any) -> Any:
        await asyncio.sleep(delay)
        return await base(messages, tools)

    model = ScriptedModel(reply, name=f"faults-{n}x{k}")
    base = model.complete
    model.complete = complete  # type: ignore[method-assign]
    return model


def make_swarm(counted: Counted, delay: float = 0.0) -> Swarm:
    return Swarm(workload_model(delay=delay), tools=[counted.tool], budgets=Budgets(max_tool_calls=200))


async def journaled_run(swarm: Swarm, runs: Path, *, cancel_at: int | None = None) -> tuple[Journal, RunResult | None]:
    """Run with a journal; with ``cancel_at``, cancel the run (as Ctrl-C does) at that many events."""
    journal = Journal.create(config(), runs)
    trace, replay = journal.start()
    job = asyncio.create_task(swarm.run("look up every item", trace=trace, run_id=journal.run_id, replay=replay))
    if cancel_at is not None:
        trace.subscribe(lambda _: job.cancel() if len(trace.events) == cancel_at else None)
    try:
        result = await job
    except asyncio.CancelledError:
        journal.close("interrupted")
        return journal, None
    journal.close("finished" if result.result.stop_reason != "error" else "failed")
    return journal, result


async def resume(swarm: Swarm, run_id: str, runs: Path) -> tuple[RunResult, dict[str, int]]:
    journal = Journal.open(run_id, runs)
    trace, replay = journal.start(resume=True)
    result = await swarm.run(journal.config().task, trace=trace, run_id=run_id, replay=replay)
    journal.close("finished", dict(replay.stats))
    return result, dict(replay.stats)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- recording ----------------------------------------------------------------------------------


async def test_a_run_journals_events_responses_and_tool_results(tmp_path: Path) -> None:
    counted = Counted()
    journal, result = await journaled_run(make_swarm(counted), tmp_path)
    assert result is not None and result.complete
    db = journal.path
    assert db == tmp_path / journal.run_id / "journal.db"
    kinds = Counter(kind for (kind,) in rows(db, "SELECT kind FROM events"))
    assert kinds == Counter(e.kind for e in result.trace.events)
    model_calls = rows(db, "SELECT agent_id, step FROM model_calls")
    assert sorted(model_calls) == sorted((e.agent_id, e.step) for e in result.trace.events if isinstance(e, ModelCalled))
    tool_calls = rows(db, "SELECT agent_id, step, tool, ok FROM tool_calls")
    assert len(tool_calls) == sum(isinstance(e, ToolFinished) for e in result.trace.events)
    # full results, not excerpts
    (content,) = rows(db, "SELECT content FROM tool_calls WHERE tool = 'lookup' LIMIT 1")[0]
    assert content.startswith('"value ')
    info = run_info(journal.run_id, tmp_path)
    assert (info.status, info.steps, info.subagents, info.sessions) == ("finished", result.summary.steps, N, 1)
    assert info.answer == result.answer and info.task == "look up every item"


def test_config_roundtrip_without_secrets(tmp_path: Path) -> None:
    security.register_secret("sk-config-secret-123456789")
    cfg = config(base_url="http://user:sk-config-secret-123456789@127.0.0.1:1/v1", tools="files,python",
                 budgets=Budgets(max_subagents=7), options={"prices": "m=1/2"})
    journal = Journal.create(cfg, tmp_path, run_id="my-run.1")
    back = journal.config()
    journal.close("finished")
    assert back.budgets.max_subagents == 7 and back.tools == "files,python" and back.options == {"prices": "m=1/2"}
    assert "sk-config-secret" not in (tmp_path / "my-run.1" / "journal.db").read_bytes().decode("latin-1")
    assert back.base_url == "http://user:***@127.0.0.1:1/v1"


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "x" * 200, "semi;colon", "-flag"])
def test_run_ids_are_checked(tmp_path: Path, bad: str) -> None:
    with pytest.raises(JournalError, match="not valid"):
        Journal.create(config(), tmp_path, run_id=bad)
    assert list(tmp_path.iterdir()) == []


def test_one_process_per_run(tmp_path: Path) -> None:
    journal = Journal.create(config(), tmp_path, run_id="r1")
    with pytest.raises(JournalError, match="already exists"):
        Journal.create(config(), tmp_path, run_id="r1")
    with pytest.raises(JournalError, match="running in another process"):
        Journal.open("r1", tmp_path)
    assert run_info("r1", tmp_path).status == "running"
    journal.close("interrupted")
    again = Journal.open("r1", tmp_path)
    assert again.session == 1
    again.close("finished")
    with pytest.raises(JournalError, match="no run 'r2'"):
        Journal.open("r2", tmp_path)


def test_statuses(tmp_path: Path) -> None:
    # A process that died without closing its session (SIGKILL): interrupted.
    killed = Journal.create(config(), tmp_path, run_id="killed")
    killed._conn.close()
    import fcntl
    import os

    fcntl.flock(killed._lock_fd, fcntl.LOCK_UN)  # what the kernel does when the process dies
    os.close(killed._lock_fd)  # type: ignore[arg-type]
    assert run_info("killed", tmp_path).status == "interrupted"
    failed = Journal.create(config(), tmp_path, run_id="failed")
    failed.close("failed")
    assert [i.status for i in list_runs(tmp_path)] == ["interrupted", "failed"]
    assert list_runs(tmp_path / "nowhere") == []


async def test_a_journal_that_cannot_be_written_does_not_end_the_run(tmp_path: Path) -> None:
    journal = Journal.create(config(), tmp_path)
    trace, replay = journal.start()
    journal._conn.close()  # the disk is gone, say
    result = await make_swarm(Counted()).run("go", trace=trace, run_id=journal.run_id, replay=replay)
    assert result.complete and journal.failed is not None and "closed" in journal.failed
    journal.close("finished")


async def test_agent_ids_are_deterministic(tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        result = await make_swarm(Counted()).run("go")
        ids.append([e.agent_id for e in result.trace.events if isinstance(e, AgentStarted)])
    assert ids[0] == ids[1]
    assert ids[0] == ["orchestrator", "worker-1-0", "worker-1-1", "worker-1-2", "worker-1-3"]


async def test_nested_sub_agents_have_path_ids() -> None:
    script = [
        {"tool_calls": [{"name": "spawn_swarm", "arguments": {"agents": [{"role": "lead", "task": "split it"}]}}]},
        "all done",
    ]
    lead = [
        {"tool_calls": [{"name": "spawn_swarm", "arguments": {"agents": [{"role": "helper", "task": "a"},
                                                                           {"role": "helper", "task": "b"}]}}]},
        "lead done",
    ]

    def sub(messages: Any) -> Any:
        text = str(messages[0].content)
        turn = sum(1 for m in messages if m.role == "assistant")
        return lead[turn] if "lead" in text else "helped"

    swarm = Swarm(ScriptedModel(script), subagent_model=ScriptedModel(sub), budgets=Budgets(max_depth=2))
    result = await swarm.run("go")
    ids = [e.agent_id for e in result.trace.events if isinstance(e, AgentStarted)]
    assert ids == ["orchestrator", "lead-0-0.0", "lead-0-0.0/helper-0-0.0", "lead-0-0.0/helper-0-0.1"]


# -- replay ---------------------------------------------------------------------------------------


def test_resumed_trace_drops_what_replay_emits_again() -> None:
    history: list[Event] = [
        AgentStarted(agent_id="a", name="a", t=1.0),
        ModelCalled(agent_id="a", step=0, model="m", usage=Usage(), seconds=0.5, tool_calls=1, t=2.0),
        ToolStarted(agent_id="a", step=0, call_id="c1", tool="t", arguments="{}", t=2.5),
    ]
    trace = ResumedTrace("run", history)
    trace.emit(AgentStarted(agent_id="a", name="a"))
    trace.emit(ModelCalled(agent_id="a", step=0, model="m", usage=Usage(), seconds=0.0, tool_calls=1))
    trace.emit(ToolStarted(agent_id="a", step=0, call_id="c1", tool="t", arguments="{}"))
    finished = trace.emit(ToolFinished(agent_id="a", step=0, call_id="c1", tool="t", ok=True, seconds=0.1))
    assert trace.events == [*history, finished]
    assert finished.t >= 2.5  # time goes on from the journal's last event
    assert replay_key(finished) == ("tool_finished", "a", 0, "c1")


@pytest.mark.parametrize("cancel_at", [2, 9, 20, 33, 47, 60])
async def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path: Path, cancel_at: int) -> None:
    reference = await make_swarm(Counted()).run("look up every item")
    assert len(reference.trace.events) > 60
    counted = Counted(delay=0.002)
    journal, result = await journaled_run(make_swarm(counted, delay=0.003), tmp_path, cancel_at=cancel_at)
    assert result is None, "the run should have been interrupted"
    assert run_info(journal.run_id, tmp_path).status == "interrupted"
    finished_before = {a for (a, b) in rows(journal.path, "SELECT agent_id, body FROM events WHERE kind = 'agent_finished'")
                       if '"cancelled"' not in b}
    resumed, stats = await resume(make_swarm(counted, delay=0.003), journal.run_id, tmp_path)
    assert resumed.answer == reference.answer
    # Every lookup completed exactly once over both sessions: none that had completed was repeated.
    assert len(counted.completed) == N * K and set(counted.completed.values()) == {1}
    earlier = set(rows(journal.path, "SELECT agent_id, step, idx FROM tool_calls WHERE session = 0"))
    later = set(rows(journal.path, "SELECT agent_id, step, idx FROM tool_calls WHERE session = 1"))
    assert not earlier & later
    # Sub-agents that had finished made no model call after the resume.
    later_agents = {a for (a,) in rows(journal.path, "SELECT agent_id FROM model_calls WHERE session = 1")}
    assert not later_agents & finished_before
    assert stats.get("skipped_subagents", 0) == len(finished_before - {"orchestrator"})
    # The trace reads as one run: each agent started and finished once, same figures.
    starts = Counter(e.agent_id for e in resumed.trace.events if isinstance(e, AgentStarted))
    ends = Counter(e.agent_id for e in resumed.trace.events if isinstance(e, AgentFinished))
    assert set(starts.values()) == {1} and set(ends.values()) == {1} and starts.keys() == ends.keys()
    assert (resumed.summary.steps, resumed.summary.subagents, resumed.summary.tool_calls) == (
        reference.summary.steps, reference.summary.subagents, reference.summary.tool_calls)


async def test_a_failed_run_resumes_past_its_failure(tmp_path: Path) -> None:
    calls = {"n": 0}
    inner = workload_model()

    async def flaky(messages: Any, tools: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the orchestrator's second turn fails for good
            raise ModelError("endpoint down for maintenance")
        return await inner.complete(messages, tools)

    model = ScriptedModel(lambda m: "", name=inner.name)
    model.complete = flaky  # type: ignore[method-assign]
    swarm = Swarm(model, subagent_model=workload_model(), tools=[Counted().tool])
    journal, result = await journaled_run(swarm, tmp_path)
    assert result is not None and result.result.stop_reason == "error"
    assert run_info(journal.run_id, tmp_path).status == "failed"
    resumed, stats = await resume(swarm, journal.run_id, tmp_path)
    assert resumed.complete and resumed.answer.startswith("checksums:")
    assert stats["replayed_model_calls"] == 2 and stats["skipped_subagents"] == N
    assert run_info(journal.run_id, tmp_path).status == "finished"
    finished = [e for e in resumed.trace.events if isinstance(e, AgentFinished) and e.agent_id == "orchestrator"]
    assert [e.stop_reason for e in finished] == ["answer"]  # the failure is not part of the resumed trace


@pytest.mark.parametrize("cancel_at", [30, 55])
async def test_budgets_carry_over_a_resume(tmp_path: Path, cancel_at: int, monkeypatch: pytest.MonkeyPatch) -> None:
    contexts = []
    new_run = Swarm.new_run

    def capture(self: Swarm, *args: Any, **kwargs: Any) -> Any:
        contexts.append(new_run(self, *args, **kwargs))
        return contexts[-1]

    monkeypatch.setattr(Swarm, "new_run", capture)
    await make_swarm(Counted()).run("look up every item")
    reference = contexts[-1].ledger
    journal, result = await journaled_run(make_swarm(Counted()), tmp_path, cancel_at=cancel_at)
    assert result is None
    await resume(make_swarm(Counted()), journal.run_id, tmp_path)
    resumed = contexts[-1].ledger
    assert (resumed.tool_calls, resumed.subagents, resumed.usage) == (
        reference.tool_calls, reference.subagents, reference.usage)
