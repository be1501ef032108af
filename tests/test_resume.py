"""Kill-and-resume: `parlswarm run` SIGKILLed at random points, then `parlswarm resume`.

The runs are CLI processes forked from a forkserver that has imported parlswarm already
(:mod:`parlswarm.testing.cli_process`), so that 40 of them take seconds, not minutes.

Every resumed run must end with the answer of an uninterrupted run, and the journal must
show that no sub-agent that had finished before the kill made a single model or tool call
afterwards (their results were replayed, not recomputed).
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from parlswarm.journal import run_info
from parlswarm.testing import fault_workload
from parlswarm.testing.cli_process import CliProcesses
from parlswarm.testing.stub_server import stub_server_process

N, K = 6, 3
CONCURRENT = 2  # sub-agents finish in waves, so kills land before, between and after them
RUNS = 20
TOOLS = "parlswarm.testing.fault_workload:toolset"


def journal_of(runs: Path) -> Path | None:
    found = list(runs.glob("*/journal.db"))
    return found[0] if found else None


def count_events(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:  # not created completely yet
        return 0


@dataclass
class Outcome:
    killed_at: int  # events journaled when the kill was sent
    answer: str
    finished_before: set[str]  # agents that had finished before the kill
    rerun: list[tuple[str, str, int]]  # (table, agent, session) of calls they made after it
    sessions: int
    status: str


def kill_and_resume(cli: CliProcesses, url: str, runs: Path, threshold: int) -> Outcome:
    proc, _, _ = cli.start("run", "look up every item", "--model", f"faults-{N}x{K}", "--base-url", url,
                           "--max-concurrent", str(CONCURRENT), "--tools", TOOLS, "--runs-dir", str(runs), "--quiet")
    deadline = time.monotonic() + 60
    events = 0
    while time.monotonic() < deadline and proc.is_alive():
        path = journal_of(runs)
        if path is not None:
            events = count_events(path)
            if events >= threshold:
                break
        time.sleep(0.002)
    proc.kill()  # SIGKILL: no clean-up of any kind
    proc.join()
    path = journal_of(runs)
    assert path is not None, "the run was killed before its journal existed"
    run_id = path.parent.name
    conn = sqlite3.connect(path)
    finished = {
        agent for agent, body in conn.execute("SELECT agent_id, body FROM events WHERE kind = 'agent_finished'")
        if json.loads(body)["stop_reason"] != "cancelled"
    }
    conn.close()
    code, out, err = cli.run("resume", run_id, "--runs-dir", str(runs), "--quiet")
    assert code == 0, err
    conn = sqlite3.connect(path)
    rerun = [
        (table, agent, session)
        for table in ("model_calls", "tool_calls")
        for agent, session in conn.execute(f"SELECT agent_id, session FROM {table} WHERE session > 0")  # noqa: S608
        if agent in finished
    ]
    sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    conn.close()
    return Outcome(events, out.strip(), finished, rerun, sessions, run_info(run_id, runs).status)


@pytest.mark.timeout(600)
def test_runs_killed_at_random_points_resume_to_the_same_answer(tmp_path: Path) -> None:
    rng = random.Random(20260)
    expected = fault_workload.expected_answer(N, K)
    cli = CliProcesses(tmp_path / "cli")
    with stub_server_process("parlswarm.testing.fault_workload:responder", latency=0.03) as url:
        # The uninterrupted run, as a user starts it: its answer, and how many events it journals.
        whole = tmp_path / "whole"
        proc = subprocess.run(
            [sys.executable, "-m", "parlswarm", "run", "look up every item", "--model", f"faults-{N}x{K}",
             "--max-concurrent", str(CONCURRENT), "--base-url", url, "--tools", TOOLS, "--runs-dir", str(whole),
             "--quiet"],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == expected
        total = count_events(journal_of(whole))  # type: ignore[arg-type]
        thresholds = [rng.randint(1, total - 1) for _ in range(RUNS)]
        outcomes = [kill_and_resume(cli, url, tmp_path / f"run{i}", thresholds[i]) for i in range(RUNS)]
    assert [o.answer for o in outcomes] == [expected] * RUNS
    assert all(o.rerun == [] for o in outcomes), [o.rerun for o in outcomes if o.rerun]
    assert all(o.status == "finished" for o in outcomes)
    # The kills did land all over the run: some before any sub-agent finished, some after several.
    finished_counts = sorted(len(o.finished_before) for o in outcomes)
    assert finished_counts[0] == 0 and finished_counts[-1] >= 4, finished_counts
    assert sum(0 < c for c in finished_counts) >= RUNS // 3, finished_counts
    assert sum(o.sessions == 2 for o in outcomes) >= RUNS * 3 // 4  # (a kill may land after the run ended)
