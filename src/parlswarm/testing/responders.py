"""Responders for the stub server: functions of a chat-completions request body → a reply.

``fanout`` emulates the fan-out workload of ``benchmarks/fanout.py``: the request's model
name ``fanout-NxK`` means N sub-agents making K tool calls each.
"""

from __future__ import annotations

import re
from typing import Any

from parlswarm.models.scripted import Reply


def _turn(body: dict[str, Any]) -> int:
    return sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")


def _tool_names(body: dict[str, Any]) -> set[str]:
    return {t["function"]["name"] for t in body.get("tools", [])}


def fanout_shape(model: str) -> tuple[int, int]:
    match = re.fullmatch(r"fanout-(\d+)x(\d+)", model)
    if not match:
        raise ValueError(f"fanout responder needs a model named fanout-NxK, got {model!r}")
    return int(match.group(1)), int(match.group(2))


def fanout(body: dict[str, Any]) -> Reply:
    n, k = fanout_shape(body.get("model", ""))
    turn = _turn(body)
    if "assign_task" in _tool_names(body):  # the orchestrator
        if turn == 0:
            return {"tool_calls": [{"name": "create_subagent", "arguments": {
                "name": "worker", "system_prompt": "Look up the item you are given.", "tools": ["lookup"]}}]}
        if turn == 1:
            return {"tool_calls": [{"name": "assign_task", "arguments": {"agent": "worker", "prompt": f"item {i}"}}
                                   for i in range(n)]}
        results = sum(1 for m in body["messages"] if m.get("role") == "tool" and "found" in str(m.get("content")))
        return f"done: {results} results"
    if turn < k:  # a sub-agent, or the plain-loop floor
        return {"tool_calls": [{"name": "lookup", "arguments": {"key": f"{turn}"}}]}
    return f"found {k} values"


def echo(body: dict[str, Any]) -> Reply:
    """Answers with the last user message."""
    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
    content = users[-1]["content"] if users else ""
    return f"echo: {content if isinstance(content, str) else '[parts]'}"
