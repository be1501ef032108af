"""Cancellation: Ctrl-C ends a run cleanly and resumably; --timeout ends it with what it has."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from parlswarm import Budgets, Swarm
from parlswarm.journal import run_info
from parlswarm.models import ModelOptions, load_model
from parlswarm.testing import fault_workload
from parlswarm.testing.cli_process import CliProcesses
from parlswarm.testing.stub_server import StubServer, stub_server_process
from parlswarm.trace.events import AgentFinished, AgentStarted

TOOLS = "parlswarm.testing.fault_workload:toolset"


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=2)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def test_ctrl_c_ends_the_run_cleanly_and_it_resumes(tmp_path: Path) -> None:
    n, k = 3, 40
    runs = tmp_path / "runs"
    with stub_server_process("parlswarm.testing.fault_workload:responder", latency=0.05) as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parlswarm", "run", "look up every item", "--model", f"faults-{n}x{k}",
             "--base-url", url, "--tools", TOOLS, "--runs-dir", str(runs), "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            # A test run in the background has SIGINT ignored, and children inherit that: undo it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            dbs = list(runs.glob("*/journal.db"))
            if dbs and len(_query(dbs[0], "SELECT 1 FROM events WHERE kind = 'tool_finished'")) >= 2 + n:
                break  # sub-agents are in the middle of their work
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 10
        assert proc.returncode == 130, err
        assert out == ""
        assert "interrupted · steps" in err and "sub-agents 3" in err
        (db,) = runs.glob("*/journal.db")
        run_id = db.parent.name
        assert f"resume with: parlswarm resume {run_id} --runs-dir {runs}" in err
        assert "Traceback" not in err
        # The journal is consistent: every agent that started has ended, the sub-agents cancelled.
        started = {a for (a,) in _query(db, "SELECT agent_id FROM events WHERE kind = 'agent_started'")}
        ended = {a: json.loads(b)["stop_reason"] for a, b in _query(
            db, "SELECT agent_id, body FROM events WHERE kind = 'agent_finished'")}
        assert started == set(ended) and len(started) == n + 1
        assert set(ended.values()) == {"cancelled"}
        assert _query(db, "SELECT status FROM sessions") == [("interrupted",)]
        assert run_info(run_id, runs).status == "interrupted"
        lookups_before = len(_query(db, "SELECT 1 FROM tool_calls WHERE tool = 'lookup'"))
        resumed = subprocess.run(
            [sys.executable, "-m", "parlswarm", "resume", run_id, "--runs-dir", str(runs), "--quiet"],
            capture_output=True, text=True, timeout=120,
        )
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == fault_workload.expected_answer(n, k)
    assert run_info(run_id, runs).status == "finished"
    lookups_after = len(_query(db, "SELECT 1 FROM tool_calls WHERE tool = 'lookup'"))
    assert lookups_before > 0 and lookups_after == n * k  # none repeated, none missing


def test_timeout_ends_the_run_with_partial_findings(tmp_path: Path) -> None:
    cli = CliProcesses(tmp_path / "cli")
    with StubServer(fault_workload.responder, latency=0.15) as server:
        code, out, err = cli.run("run", "look up every item", "--model", "faults-2x20", "--base-url", server.base_url,
                                 "--tools", TOOLS, "--runs-dir", str(tmp_path / "runs"), "--timeout", "1", "--quiet")
    assert code == 0, err
    assert "INCOMPLETE" in err and "[incomplete: wall-clock budget (1s) used up]" in out
    (db,) = (tmp_path / "runs").glob("*/journal.db")
    assert run_info(db.parent.name, tmp_path / "runs").status == "finished"


async def test_cancelling_a_run_cancels_every_sub_agent() -> None:
    with StubServer(fault_workload.responder, latency=0.05) as server:
        model = load_model("faults-5x30", ModelOptions(base_url=server.base_url))
        swarm = Swarm(model, tools=fault_workload.toolset(), budgets=Budgets(max_tool_calls=500))
        from parlswarm.trace.recorder import Trace

        trace = Trace()
        job = asyncio.create_task(swarm.run("go", trace=trace))
        while sum(isinstance(e, AgentStarted) for e in trace.events) < 6:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        job.cancel()
        try:
            await job
        except asyncio.CancelledError:
            pass
        await model.aclose()  # type: ignore[attr-defined]
    finished = [e for e in trace.events if isinstance(e, AgentFinished)]
    assert len(finished) == 6 and {e.stop_reason for e in finished} == {"cancelled"}
    assert all("[incomplete: cancelled]" in e.content for e in finished)
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
