"""Scripted fan-out runs of known shape, for tests, reports and screenshots.

An orchestrator creates one sub-agent, assigns it one task per item in a single turn (so
all sub-agents run in parallel) and answers with what they return. Sub-agent ``i`` makes
``lengths[i]`` lookups, one per step, before it answers; its critical steps are therefore
``lengths[i] + 1`` and the run's ``1 + (1 + max(lengths) + 1) + 1``. Optional latency per
model call makes the wall-clock view of a report look like a real run. The facts returned
by ``lookup`` are placeholders: these runs show the shape of a swarm, not data.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Any

from parlswarm.models.base import Model, call_model
from parlswarm.models.scripted import ScriptedModel, calls_reply, tool_reply
from parlswarm.pricing import Prices
from parlswarm.swarm import Swarm
from parlswarm.tools import tool
from parlswarm.types import Budgets, Message, ModelResponse, ToolChoice, ToolSpec, content_text

ITEM = re.compile(r"^(?P<item>.+?): find the facts asked for \(lookups: (?P<n>\d+)\)")


@tool
async def lookup(query: str) -> str:
    """Look up a fact.

    Args:
        query: What to look up.
    """
    return f"placeholder fact about {query}"


class Delayed:
    """A model that waits ``seconds`` (times a per-agent factor) before each reply."""

    def __init__(self, model: Model, seconds: float) -> None:
        self.model = model
        self.name = model.name
        self.seconds = seconds

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        if self.seconds > 0:
            await asyncio.sleep(self.seconds)
        return await call_model(self.model, messages, tools, tool_choice)


def _subagent_reply(messages: Sequence[Message]) -> str | dict[str, Any]:
    task = content_text(messages[1].content) if len(messages) > 1 else ""
    match = ITEM.search(task)
    if match is None:
        return "error: no item in the task"
    item, wanted = match["item"], int(match["n"])
    done = sum(1 for m in messages if m.role == "tool")
    if done < wanted:
        return tool_reply("lookup", {"query": f"{item} #{done + 1}"})
    return f"{item}: {done} facts found"


def fanout_swarm(
    items: Sequence[str],
    lengths: Sequence[int],
    *,
    latency: float = 0.0,
    prices: Prices | None = None,
    budgets: Budgets | None = None,
    orchestrator_name: str = "scripted-orchestrator",
    subagent_name: str = "scripted-subagent",
) -> Swarm:
    """A swarm whose orchestrator fans ``items`` out to sub-agents making ``lengths`` lookups."""
    if len(items) != len(lengths):
        raise ValueError("items and lengths must have the same length")
    prompts = [f"{item}: find the facts asked for (lookups: {n})" for item, n in zip(items, lengths)]
    orchestrator = ScriptedModel(
        [
            tool_reply(
                "create_subagent",
                {"name": "researcher", "system_prompt": "Research one item with lookup; answer in one line."},
            ),
            calls_reply([("assign_task", {"agent": "researcher", "prompt": p}) for p in prompts]),
            "Collected the findings of all sub-agents.",
        ],
        name=orchestrator_name,
    )
    sub = ScriptedModel(_subagent_reply, name=subagent_name)
    n = len(items)
    budgets = budgets or Budgets(max_subagents=max(n, 1), max_concurrent_subagents=max(n, 1))
    return Swarm(
        Delayed(orchestrator, latency),
        subagent_model=Delayed(sub, latency),
        tools=[lookup],
        budgets=budgets,
        prices=prices,
    )


__all__ = ["Delayed", "fanout_swarm", "lookup"]
