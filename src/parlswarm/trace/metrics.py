"""Figures computed from a trace: total steps, critical steps, sub-agents, tokens.

Critical steps follow the Kimi K2.5 report: ``Σ_t (S_main^(t) + max_i S_sub,i^(t))`` where
S_main = 1 per orchestrator step and S_sub,i is the critical length of sub-agent i launched
at orchestrator step t. Applied recursively, so nested sub-agents count along their own
longest chain.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from parlswarm.trace.events import AgentStarted, Event, ModelCalled, RunFinished, RunStarted, ToolStarted
from parlswarm.types import RunSummary


class TraceIndex:
    """The agent tree of a trace, with steps per agent."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.agents: dict[str, AgentStarted] = {}
        self.steps: dict[str, int] = defaultdict(int)
        self.children: dict[tuple[str, int], list[str]] = defaultdict(list)
        for e in events:
            if isinstance(e, AgentStarted):
                self.agents[e.agent_id] = e
                if e.parent_id is not None and e.parent_step is not None:
                    self.children[(e.parent_id, e.parent_step)].append(e.agent_id)
            elif isinstance(e, ModelCalled):
                self.steps[e.agent_id] += 1
        self.roots = [a for a, s in self.agents.items() if s.parent_id is None]

    def critical_steps(self, agent_id: str) -> int:
        total = 0
        for t in range(self.steps[agent_id]):
            kids = self.children.get((agent_id, t), [])
            total += 1 + max((self.critical_steps(k) for k in kids), default=0)
        return total

    def critical_path(self, agent_id: str) -> list[tuple[str, int]]:
        """The (agent_id, step) pairs on the longest chain, in order."""
        path: list[tuple[str, int]] = []
        for t in range(self.steps[agent_id]):
            path.append((agent_id, t))
            kids = self.children.get((agent_id, t), [])
            if kids:
                slowest = max(kids, key=self.critical_steps)
                path.extend(self.critical_path(slowest))
        return path


def summarize(events: Sequence[Event]) -> RunSummary:
    index = TraceIndex(events)
    root = index.roots[0] if index.roots else None
    prompt = completion = 0
    cost: float | None = None
    tool_calls = 0
    t_start = t_end = 0.0
    for e in events:
        if isinstance(e, ModelCalled):
            prompt += e.usage.prompt_tokens
            completion += e.usage.completion_tokens
            if e.cost is not None:
                cost = (cost or 0.0) + e.cost
        elif isinstance(e, ToolStarted):
            tool_calls += 1
        elif isinstance(e, RunStarted):
            t_start = e.t
        elif isinstance(e, RunFinished):
            t_end = e.t
    if not t_end and events:
        t_end = events[-1].t
    per_spawn: list[int] = []
    if root is not None:
        for t in range(index.steps[root]):
            n = len(index.children.get((root, t), []))
            if n:
                per_spawn.append(n)
    return RunSummary(
        steps=sum(index.steps.values()),
        critical_steps=index.critical_steps(root) if root else 0,
        orchestrator_steps=index.steps[root] if root else 0,
        subagents=len(index.agents) - len(index.roots),
        tool_calls=tool_calls,
        prompt_tokens=prompt,
        completion_tokens=completion,
        seconds=max(0.0, t_end - t_start),
        subagents_per_spawn_step=per_spawn,
        cost=cost,
    )
