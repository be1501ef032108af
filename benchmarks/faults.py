"""A fan-out under injected faults against a fault-free one, side by side in one run.

N sub-agents make K tool calls each (default 100 × 14) against the local stub server in
its own process. The same workload runs twice, journaled, through the real client path
(``load_model`` → ResilientModel → openai SDK): once against a fault-free server, once
against a server injecting 10 % HTTP 500, 5 % hung requests (past the client's per-call
timeout) and 5 % malformed tool-call arguments. Each run is bounded by a wall-clock budget.

Printed for both: completed sub-agents, results delivered to the orchestrator, whether the
answer is the fault-free one, retries, malformed tool calls, faults injected, peak RSS, and
wall-clock ÷ fault-free wall-clock.

    python benchmarks/faults.py [--n 100] [--k 14] [--latency 0.1] [--call-timeout 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

from parlswarm import Budgets, Swarm
from parlswarm.journal import Journal, RunConfig
from parlswarm.models import ModelOptions, load_model
from parlswarm.testing import fault_workload
from parlswarm.testing.stub_server import stub_server_process
from parlswarm.trace.events import AgentFinished, AgentStarted, ModelRetried, ToolFinished, ToolStarted


@dataclass
class Measure:
    wall: float
    answer: str
    complete: bool
    subagents_started: int
    subagents_completed: int
    results_delivered: int  # assign_task calls that brought a sub-agent's result back
    items_delivered: int  # distinct items among them
    retries: Counter[str] = field(default_factory=Counter)
    malformed_tool_calls: int = 0
    tool_calls: int = 0
    model_calls: int = 0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0  # peak before the run: interpreter, libraries, the model client
    journal_mb: float = 0.0
    journal_writes: int = 0
    journal_seconds: float = 0.0  # CPU of serialising, redacting and committing them
    injected: dict[str, int] = field(default_factory=dict)


SHORT = {"error_500": "500", "timeout": "hang", "bad_tool_args": "bad args", "rate_limit_429": "429",
         "malformed_json": "bad json", "truncated": "truncated", "slow": "slow"}


def _server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as response:  # 127.0.0.1 only
        return json.loads(response.read())["faults"]  # type: ignore[no-any-return]


def _time_writes(journal: Journal) -> dict[str, float]:
    """Measure what journaling costs: wrap the journal's three writers with a timer."""
    totals = {"writes": 0, "seconds": 0.0}
    for name in ("write_event", "record_model", "record_tool"):
        original = getattr(journal, name)

        def timed(*args: object, _original=original) -> None:  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            _original(*args)
            totals["seconds"] += time.perf_counter() - t0
            totals["writes"] += 1

        setattr(journal, name, timed)
    return totals


async def one_run(url: str, args: argparse.Namespace, runs: str) -> Measure:
    spec = f"faults-{args.n}x{args.k}"
    options = ModelOptions(base_url=url, timeout=args.call_timeout, max_retries=args.retries)
    model = load_model(spec, options)
    start_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    budgets = Budgets(
        max_subagents=4 * args.n,
        max_concurrent_subagents=args.n,
        max_tool_calls=4 * args.n * args.k,
        max_subagent_steps=4 * args.k,
        max_seconds=args.bound,
    )
    swarm = Swarm(model, tools=fault_workload.toolset(), budgets=budgets)
    journal = Journal.create(RunConfig(task="look up every item", model=spec, base_url=url, budgets=budgets,
                                       tools="parlswarm.testing.fault_workload:toolset"), runs)
    timed = _time_writes(journal)
    trace, replay = journal.start()
    t0 = time.perf_counter()
    result = await swarm.run("look up every item", trace=trace, run_id=journal.run_id, replay=replay)
    wall = time.perf_counter() - t0
    journal.close("finished" if result.complete else "failed", dict(replay.stats))
    await model.aclose()  # type: ignore[attr-defined]
    events = result.trace.events
    subagents = {e.agent_id for e in events if isinstance(e, AgentStarted) and e.parent_id is not None}
    delivered = [e for e in events if isinstance(e, ToolFinished) and e.tool == "assign_task" and e.ok
                 and e.result.startswith("item ")]
    return Measure(
        wall=wall,
        answer=result.answer,
        complete=result.complete,
        subagents_started=len(subagents),
        subagents_completed=sum(
            1 for e in events if isinstance(e, AgentFinished) and e.agent_id in subagents and e.complete
        ),
        results_delivered=len(delivered),
        items_delivered=len({e.result.split(":")[0] for e in delivered}),
        retries=Counter(e.reason for e in events if isinstance(e, ModelRetried)),
        malformed_tool_calls=sum(1 for e in events if isinstance(e, ToolFinished) and e.error == "bad_json"),
        tool_calls=sum(1 for e in events if isinstance(e, ToolStarted)),
        model_calls=result.summary.steps,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        start_rss_mb=start_rss,
        journal_mb=journal.path.stat().st_size / 2**20,
        journal_writes=timed["writes"],
        journal_seconds=timed["seconds"],
        injected=_server_stats(url),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="sub-agents")
    parser.add_argument("--k", type=int, default=14, help="tool calls per sub-agent")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model call at the stub server")
    parser.add_argument("--fault-500", type=float, default=0.10)
    parser.add_argument("--fault-timeout", type=float, default=0.05)
    parser.add_argument("--fault-bad-args", type=float, default=0.05)
    parser.add_argument("--call-timeout", type=float, default=2.0, help="client's per-call limit (a hang costs this)")
    parser.add_argument("--retries", type=int, default=8, help="retries per model call")
    parser.add_argument("--bound", type=float, default=300.0, help="wall-clock budget of each run, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    expected = fault_workload.expected_answer(args.n, args.k)
    faults = ["--fault-500", str(args.fault_500), "--fault-timeout", str(args.fault_timeout),
              "--fault-bad-args", str(args.fault_bad_args), "--hang", "60", "--seed", str(args.seed)]
    responder = "parlswarm.testing.fault_workload:responder"
    with tempfile.TemporaryDirectory(prefix="parlswarm-faults-") as runs:
        with stub_server_process(responder, args.latency) as clean_url:
            clean = asyncio.run(one_run(clean_url, args, runs))
        with stub_server_process(responder, args.latency, faults) as faulty_url:
            faulty = asyncio.run(one_run(faulty_url, args, runs))

    print(f"faults: {args.n} sub-agents x {args.k} tool calls, {args.latency * 1000:.0f} ms per model call; "
          f"injected {args.fault_500:.0%} HTTP 500, {args.fault_timeout:.0%} hung requests "
          f"(client timeout {args.call_timeout:g}s), {args.fault_bad_args:.0%} malformed tool-call arguments; "
          f"each run bounded at {args.bound:g}s, journaled")
    rows = [
        ("completed sub-agents", lambda m: f"{m.subagents_completed}/{args.n}"),
        ("sub-agents started", lambda m: str(m.subagents_started)),
        ("results delivered to orchestrator", lambda m: f"{m.results_delivered} ({m.items_delivered} items)"),
        ("answer = fault-free answer", lambda m: "yes" if m.answer == expected else "NO"),
        ("model calls", lambda m: str(m.model_calls)),
        ("tool calls", lambda m: str(m.tool_calls)),
        ("retries", lambda m: f"{sum(m.retries.values())} " + (
            "(" + ", ".join(f"{k} {v}" for k, v in sorted(m.retries.items())) + ")" if m.retries else "")),
        ("malformed tool calls (tool errors)", lambda m: str(m.malformed_tool_calls)),
        ("faults injected by the server", lambda m: ", ".join(
            f"{SHORT.get(k, k)} {v}" for k, v in sorted(m.injected.items())) or "0"),
        ("journal size", lambda m: f"{m.journal_mb:.1f} MB"),
        ("journal writes, their time", lambda m: f"{m.journal_writes} in {m.journal_seconds:.2f} s"),
        ("peak RSS of this process", lambda m: f"{m.peak_rss_mb:.0f} MB (at start {m.start_rss_mb:.0f} MB)"),
        ("wall-clock", lambda m: f"{m.wall:.2f} s"),
    ]
    width = max(len(r[0]) for r in rows) + 2
    print(f"{'':{width}}{'fault-free':>26}{'with faults':>38}")
    for label, cell in rows:
        print(f"{label:{width}}{cell(clean):>26}  {cell(faulty):>36}")
    print(f"wall-clock with faults / fault-free: {faulty.wall / clean.wall:.2f}x")


if __name__ == "__main__":
    main()
