"""A fan-out workload whose answer is fixed by its tool results, whatever faults hit it.

Served by the stub server (``--responder parlswarm.testing.fault_workload:responder``) with
a model named ``faults-NxK``: the orchestrator creates a ``worker`` sub-agent and assigns it
items 0..N-1 in one turn; each worker looks up K keys, one per turn, and answers with a
checksum of the values it found; the orchestrator answers with the checksums of all items.

Every decision is read from the conversation, as a careful model would: a malformed tool
call (an error result) is made again, an assignment that failed is assigned again, so a run
under injected faults ends with exactly the answer of a fault-free run — or it is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from parlswarm.models.scripted import Reply
from parlswarm.tools import Toolset, tool

_SHAPE = re.compile(r"faults-(\d+)x(\d+)")
_ITEM = re.compile(r"item (\d+)")
_RESULT = re.compile(r"^item (\d+): (\w+)$")


def shape(model: str) -> tuple[int, int]:
    match = _SHAPE.fullmatch(model)
    if not match:
        raise ValueError(f"fault workload needs a model named faults-NxK, got {model!r}")
    return int(match.group(1)), int(match.group(2))


def value(key: str) -> int:
    """The value stored under ``key``: deterministic, different per key."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


@tool
async def lookup(key: str) -> str:
    """Look up the value stored under a key.

    Args:
        key: The key, as given in the task.
    """
    return f"value {value(key)}"


def toolset() -> Toolset:
    """The workload's tools (``--tools parlswarm.testing.fault_workload:toolset``)."""
    return Toolset([lookup])


def _calls_by_id(messages: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    calls = {}
    for m in messages:
        if m.get("role") == "assistant":
            for c in m.get("tool_calls") or []:
                calls[c["id"]] = (c["function"]["name"], c["function"]["arguments"])
    return calls


def _ok_results(messages: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(tool name, arguments, content) of every tool call that succeeded."""
    calls = _calls_by_id(messages)
    out = []
    for m in messages:
        if m.get("role") == "tool":
            content = m.get("content")
            text = content if isinstance(content, str) else json.dumps(content)
            if not text.startswith("error"):
                name, args = calls.get(m.get("tool_call_id", ""), ("", ""))
                out.append((name, args, text))
    return out


def _worker(body: dict[str, Any], k: int) -> Reply:
    messages = body["messages"]
    task = next(m["content"] for m in messages if m["role"] == "user")
    item = int(_ITEM.search(task if isinstance(task, str) else json.dumps(task)).group(1))  # type: ignore[union-attr]
    found = [int(text.split()[1]) for name, _, text in _ok_results(messages) if name == "lookup"]
    if len(found) < k:
        return {"tool_calls": [{"name": "lookup", "arguments": {"key": f"{item}:{len(found)}"}}]}
    checksum = hashlib.sha256(" ".join(map(str, found)).encode()).hexdigest()[:10]
    return f"item {item}: {checksum}"


def _orchestrator(body: dict[str, Any], n: int) -> Reply:
    messages = body["messages"]
    results = _ok_results(messages)
    if not any(name == "create_subagent" for name, _, _ in results):
        return {"tool_calls": [{"name": "create_subagent", "arguments": {
            "name": "worker", "system_prompt": "Look up every key of your item, then report.", "tools": ["lookup"]}}]}
    done: dict[int, str] = {}
    for name, _, text in results:
        match = _RESULT.match(text) if name == "assign_task" else None
        if match:
            done[int(match.group(1))] = match.group(2)
    pending = [i for i in range(n) if i not in done]
    if pending:
        return {"tool_calls": [{"name": "assign_task", "arguments": {"agent": "worker", "prompt": f"item {i}"}}
                               for i in pending]}
    return "checksums: " + " ".join(done[i] for i in range(n))


def responder(body: dict[str, Any]) -> Reply:
    n, k = shape(body.get("model", ""))
    tools = {t["function"]["name"] for t in body.get("tools", [])}
    if "assign_task" in tools:
        return _orchestrator(body, n)
    return _worker(body, k)


def expected_answer(n: int, k: int) -> str:
    """The answer of a fault-free run, computed without running one."""
    sums = []
    for i in range(n):
        found = [value(f"{i}:{j}") for j in range(k)]
        sums.append(hashlib.sha256(" ".join(map(str, found)).encode()).hexdigest()[:10])
    return "checksums: " + " ".join(sums)
