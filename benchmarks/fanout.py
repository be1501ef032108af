"""Fan-out overhead: parlswarm's runtime against a plain asyncio loop over the openai SDK.

N sub-agents make K tool calls each (default 100 × 14; with the N assign_task calls that is
1,500 tool calls) against the local stub server with a fixed latency per model call. The
same model calls are made by a plain asyncio loop (the floor). Printed for both: wall-clock
÷ (critical steps × latency) and the client's CPU milliseconds per model call. The server
runs in its own process so that it does not compete with the client for the GIL.

    python benchmarks/fanout.py [--n 100] [--k 14] [--latency 0.1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import openai

from parlswarm import Budgets, Swarm, tool
from parlswarm.models import OpenAICompatModel
from parlswarm.models.openai_compat import SELF_HOSTED
from parlswarm.swarm import ORCHESTRATION_TOOLSET
from parlswarm.testing.stub_server import stub_server_process


@tool
async def lookup(key: str) -> str:
    """Look up a value by key.

    Args:
        key: The key.
    """
    return f"value of {key}"


@dataclass
class Measure:
    wall: float
    cpu: float
    model_calls: int
    critical_steps: int


async def plain_loop(url: str, n: int, k: int) -> Measure:
    """The floor: the same calls with the bare SDK, the same concurrency, no runtime."""
    client = openai.AsyncOpenAI(base_url=url, api_key="EMPTY", max_retries=0)
    model = f"fanout-{n}x{k}"
    orch_tools = [t.spec.openai() for t in ORCHESTRATION_TOOLSET] + [lookup.spec.openai()]
    sub_tools = [lookup.spec.openai()]
    calls = 0

    async def turn(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        nonlocal calls
        calls += 1
        response = await client.chat.completions.create(model=model, messages=messages, tools=tools)
        message = response.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        return message

    async def subagent(prompt: str) -> str:
        messages: list[dict[str, Any]] = [{"role": "system", "content": "Look up."}, {"role": "user", "content": prompt}]
        while True:
            message = await turn(messages, sub_tools)
            if not message.tool_calls:
                return message.content or ""
            for c in message.tool_calls:
                args = json.loads(c.function.arguments)
                messages.append({"role": "tool", "tool_call_id": c.id, "content": await lookup(**args)})

    wall0, cpu0 = time.perf_counter(), time.process_time()
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Orchestrate."}, {"role": "user", "content": "go"}]
    while True:
        message = await turn(messages, orch_tools)
        if not message.tool_calls:
            break
        prompts = [json.loads(c.function.arguments).get("prompt", "") for c in message.tool_calls]
        results = await asyncio.gather(*(subagent(p) for p in prompts if p))
        for c in message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": c.id, "content": results.pop(0) if results else "ok"})
    measure = Measure(time.perf_counter() - wall0, time.process_time() - cpu0, calls, 3 + k + 1)
    await client.close()
    return measure


async def swarm_run(url: str, n: int, k: int) -> Measure:
    model = OpenAICompatModel(f"fanout-{n}x{k}", base_url=url, preset=SELF_HOSTED, max_retries=0)
    budgets = Budgets(max_subagents=n, max_concurrent_subagents=n, max_tool_calls=n * k + n + 1)
    swarm = Swarm(model, tools=[lookup], budgets=budgets)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = await swarm.run("go")
    measure = Measure(time.perf_counter() - wall0, time.process_time() - cpu0, result.summary.steps,
                      result.summary.critical_steps)
    assert result.answer == f"done: {n} results", result.answer
    await model.aclose()
    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="sub-agents")
    parser.add_argument("--k", type=int, default=14, help="tool calls per sub-agent")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per model call at the stub server")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternated; medians are printed")
    args = parser.parse_args()
    plain: list[Measure] = []
    ours: list[Measure] = []
    with stub_server_process("parlswarm.testing.responders:fanout", args.latency) as url:
        for _ in range(args.repeats):
            plain.append(asyncio.run(plain_loop(url, args.n, args.k)))
            ours.append(asyncio.run(swarm_run(url, args.n, args.k)))
    tool_calls = args.n * args.k + args.n
    print(f"fan-out: {args.n} sub-agents x {args.k} tool calls ({tool_calls} tool calls incl. assign_task), "
          f"{args.latency * 1000:.0f} ms per model call, median of {args.repeats}")
    print(f"{'':22}{'wall s':>8}{'wall/critical':>15}{'CPU ms/call':>13}{'model calls':>13}")
    for label, ms in (("plain openai loop", plain), ("parlswarm swarm", ours)):
        wall = statistics.median(m.wall for m in ms)
        cpu = statistics.median(m.cpu / m.model_calls for m in ms) * 1000
        crit = ms[0].critical_steps * args.latency
        print(f"{label:22}{wall:8.2f}{wall / crit:14.2f}x{cpu:13.2f}{ms[0].model_calls:13d}")
    ratio = statistics.median(m.wall for m in ours) / statistics.median(m.wall for m in plain)
    print(f"critical steps: {ours[0].critical_steps} (plain loop: {plain[0].critical_steps})")
    print(f"overhead vs plain openai loop: {ratio:.2f}×")


if __name__ == "__main__":
    main()
