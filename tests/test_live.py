"""The event stream and the progress views built on it: live table, plain lines, quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console

from parlswarm import Budgets
from parlswarm.live import LiveProgress
from parlswarm.testing.scripted_runs import fanout_swarm
from parlswarm.trace.events import AgentStarted, Event, ModelCalled, RunFinished, ToolStarted
from parlswarm.trace.recorder import Trace


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=160, height=60, color_system=None), out


async def test_run_streamed_carries_every_kind_of_event() -> None:
    swarm = fanout_swarm(["a", "b", "c"], [1, 3, 2], budgets=Budgets(max_subagents=3, max_tool_calls=9))
    events: list[Event] = [e async for e in swarm.run_streamed("t")]
    kinds = {e.kind for e in events}
    assert kinds == {
        "run_started", "agent_started", "subagent_created", "model_call", "tool_started",
        "tool_finished", "budget", "agent_finished", "run_finished",
    }
    actions = {(e.budget, e.action) for e in events if e.kind == "budget"}  # type: ignore[union-attr]
    assert ("max_subagents", "warning") in actions and ("max_tool_calls", "refused") in actions
    assert isinstance(events[-1], RunFinished)
    # Sub-agents say which step and which tool call of their parent launched them.
    starts = [e for e in events if isinstance(e, AgentStarted) and e.parent_id]
    calls = {e.call_id: e for e in events if isinstance(e, ToolStarted) and e.tool == "assign_task"}
    assert len(starts) == 3 and all(s.parent_call_id in calls and s.parent_step == 1 for s in starts)
    assert all(isinstance(e.usage.prompt_tokens, int) for e in events if isinstance(e, ModelCalled))


async def test_plain_lines_when_the_console_is_not_a_terminal() -> None:
    con, out = console(terminal=False)
    progress = LiveProgress(con)
    assert progress.mode == "plain"
    swarm = fanout_swarm(["alpha", "beta", "gamma"], [1, 3, 2])
    async for event in swarm.run_streamed("t"):
        progress(event)
    lines = out.getvalue().splitlines()
    assert sum(" + researcher (" in line for line in lines) == 3
    assert sum(" ✓ researcher (" in line and " complete: " in line for line in lines) == 3
    assert any("beta: find the facts" in line for line in lines)
    assert any("✓ researcher" in line and "4 steps, 3 tool calls" in line for line in lines)
    assert any("orchestrator step 2: 3 tool calls" in line for line in lines)
    assert lines[-1].endswith("finished (complete): critical steps 7 / steps 12")
    assert "\x1b[" not in out.getvalue()  # no terminal control codes in a log


async def test_live_table_shows_running_subagents_and_critical_steps() -> None:
    swarm = fanout_swarm(["alpha", "beta", "gamma"], [1, 3, 2])
    result = await swarm.run("find")
    con, _ = console(terminal=True)
    progress = LiveProgress(con, refresh_per_second=50)
    assert progress.mode == "live"
    # Replay the run up to the moment the short sub-agent has finished and the others still run.
    first_done = next(i for i, e in enumerate(result.trace.events) if e.kind == "agent_finished")
    for event in result.trace.events[: first_done + 1]:
        progress(event)
    snap, snap_out = console(terminal=True)
    snap.print(progress)
    text = snap_out.getvalue()
    run = progress.runs[result.run_id]
    crit, steps = run.critical()
    assert f"critical steps {crit} / steps {steps}" in text
    assert "sub-agents 2 running, 1 done" in text
    rows = [line for line in text.splitlines() if "researcher" in line]
    assert len(rows) == 3
    assert sum("complete" in r for r in rows) == 1
    assert any("beta: find the facts" in r for r in rows)
    # The rest of the run: the display ends with the run's figures.
    for event in result.trace.events[first_done + 1 :]:
        progress(event)
    assert run.critical() == (result.summary.critical_steps, result.summary.steps)
    assert run.tool_calls == result.summary.tool_calls
    assert run.tokens == result.summary.prompt_tokens + result.summary.completion_tokens


async def test_live_display_runs_alongside_a_run_and_is_removed_after() -> None:
    con, out = console(terminal=True)
    trace = Trace()
    with LiveProgress(con, refresh_per_second=50) as progress:
        progress.watch(trace)
        result = await fanout_swarm(["a", "b"], [2, 1], latency=0.02).run("t", trace=trace)
    assert result.complete
    assert "researcher" in out.getvalue()  # it was drawn
    assert progress.runs[result.run_id].finished


async def test_quiet_shows_nothing() -> None:
    con, out = console(terminal=False)
    progress = LiveProgress(con, mode="quiet")
    trace = Trace()
    progress.watch(trace)
    with progress:
        await fanout_swarm(["a"], [1]).run("t", trace=trace)
    assert out.getvalue() == "" and progress.runs == {}


async def test_one_view_follows_several_runs() -> None:
    con, out = console(terminal=False)
    progress = LiveProgress(con)
    results = []
    for items in (["a"], ["b", "c"]):
        trace = Trace()
        progress.watch(trace)
        results.append(await fanout_swarm(items, [1] * len(items)).run("t", trace=trace))
    assert set(progress.runs) == {r.run_id for r in results}
    assert [len(progress.runs[r.run_id].subagents) for r in results] == [1, 2]


def _parlswarm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "orch.yaml"
    script.write_text(yaml.safe_dump([
        {"tool_calls": [{"name": "create_subagent", "arguments": {"name": "w", "system_prompt": "work"}}]},
        {"tool_calls": [{"name": "assign_task", "arguments": {"agent": "w", "prompt": "part a"}},
                        {"name": "assign_task", "arguments": {"agent": "w", "prompt": "part b"}}]},
        "both done",
    ]))
    sub = tmp_path / "sub.yaml"
    sub.write_text(yaml.safe_dump(["sub result"]))
    return subprocess.run(
        [sys.executable, "-m", "parlswarm", "run", "do a and b", "--model", f"scripted:{script}",
         "--subagent-model", f"scripted:{sub}", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )


def test_cli_run_progress_report_and_quiet(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.html"
    proc = _parlswarm(tmp_path, "--report", str(report), "--prices", "scripted:*=1/0.5/2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "both done"  # progress never mixes with the answer
    err = proc.stderr.splitlines()
    assert sum(" + w (" in line for line in err) == 2 and sum(" ✓ w (" in line for line in err) == 2
    assert any("critical steps 4 / steps 5" in line for line in err)
    assert any(line.startswith("steps 5 · critical steps 4") and " · cost " in line for line in err)
    assert report.exists() and "part a" in report.read_text()

    quiet = _parlswarm(tmp_path, "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.strip() == "both done"
    assert not [line for line in quiet.stderr.splitlines() if line.startswith("[")]  # no progress lines
    assert sum(line.startswith("steps 5 · critical steps 4") for line in quiet.stderr.splitlines()) == 1


def test_cli_cost_budget_without_prices_is_one_clear_line(tmp_path: Path) -> None:
    proc = _parlswarm(tmp_path, "--max-cost", "1", "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("error: the cost budget (max_cost=1) needs a price for model 'scripted:")
    bad = _parlswarm(tmp_path, "--prices", "nonsense=1", "-q")
    assert bad.returncode == 2 and "error: price 'nonsense=1' is not MODEL=INPUT/OUTPUT" in bad.stderr


async def test_retried_model_calls_are_counted() -> None:
    from parlswarm import Swarm
    from parlswarm.models import ScriptedModel
    from parlswarm.models.resilient import ResilientModel, RetryPolicy, TransientModelError

    class FlakyOnce:
        name = "flaky"

        def __init__(self) -> None:
            self.inner = ScriptedModel(["done"], name="flaky")
            self.failed = False

        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            if not self.failed:
                self.failed = True
                raise TransientModelError("503 from the endpoint", reason="server_error")
            return await self.inner.complete(messages, tools)

    con, out = console(terminal=True)
    progress = LiveProgress(con)
    model = ResilientModel(FlakyOnce(), RetryPolicy(base_delay=0.0), seed=1)
    async for event in Swarm(model, mode="single").run_streamed("t"):
        progress(event)
    (run,) = progress.runs.values()
    assert run.retries == 1 and run.finished
    snap, snap_out = console(terminal=True)
    run.finished = False  # the running view shows the count
    snap.print(progress)
    assert "retries 1" in snap_out.getvalue()
