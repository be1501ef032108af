"""PARL rewards, their annealing schedules, and the episode statistics they read.

Both published forms are implemented; a config chooses one.

- Report (Kimi K2.5 technical report):  ``r = λ1(e)·r_parallel + λ2(e)·r_finish + r_perf``
- Launch blog (as quoted):  ``R = λ_aux(e)·r_parallel + (1 − λ_aux(e))·(1[success]·Q(τ))``

The report gives no closed form for r_parallel and r_finish, nor initial values or schedule
shapes. Our choices, all configurable:

- ``r_parallel = min(#assigned sub-agents, cap) / cap`` — the instantiation reward; counts
  sub-agents that were actually started (an ``assign_task`` or ``spawn_swarm`` entry), not
  mere definitions, so creating agents without using them earns nothing. With
  ``parallel_cap_rows`` the cap is ``min(parallel_cap, the task's rows)``, so width beyond
  one sub-agent per row (spurious parallelism) is not paid.
- ``r_finish = #finished / #assigned`` (0 when nothing was assigned) — a sub-agent counts as
  finished when it returned a complete answer, neither an error nor partial findings.
- ``r_perf`` / ``Q(τ)`` — Item-F1 of the episode's answer (or its success, 0/1).
- ``1[success]`` in the blog form — the episode ended with an answer within its budget.
- Schedules map training progress ``e ∈ [0, 1]`` to a coefficient.

Nothing here depends on the trainer: a distributed engine can call :func:`episode_stats`
and :func:`reward` as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parlswarm.trace.events import AgentFinished, AgentStarted, Event, SubagentCreated
from parlswarm.trace.metrics import TraceIndex


class Schedule(BaseModel):
    """A coefficient over training progress e ∈ [0, 1].

    ``constant``: always ``start``. ``linear``: ``start`` → ``end`` over the first ``anneal``
    fraction of training, then ``end``. ``cosine``: the same with a half-cosine. ``step``:
    ``start`` until ``anneal``, then ``end``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["constant", "linear", "cosine", "step"] = "linear"
    start: float = 0.0
    end: float = 0.0
    anneal: float = Field(1.0, gt=0.0, le=1.0, description="fraction of training over which it anneals")

    def __call__(self, e: float) -> float:
        e = min(max(e, 0.0), 1.0)
        if self.kind == "constant":
            return self.start
        if self.kind == "step":
            return self.start if e < self.anneal else self.end
        x = min(e / self.anneal, 1.0)
        if self.kind == "linear":
            return self.start + (self.end - self.start) * x
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * x))


class RewardConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    form: Literal["report", "blog"] = "report"
    lambda1: Schedule = Field(default_factory=lambda: Schedule(kind="linear", start=0.3, end=0.0, anneal=0.5))
    lambda2: Schedule = Field(default_factory=lambda: Schedule(kind="linear", start=0.2, end=0.0, anneal=0.5))
    lambda_aux: Schedule = Field(default_factory=lambda: Schedule(kind="linear", start=0.1, end=0.0))
    parallel_cap: int = Field(10, ge=1)
    # When true, the cap is also the task's rows: one sub-agent per row earns the full
    # r_parallel, a wider split no more. Off by default, so logged runs keep their rewards.
    parallel_cap_rows: bool = False
    # What r_parallel counts. "assigned" (default): sub-agents actually started. "created":
    # definitions too (create_subagent calls) — partial credit for the first half of the
    # move, a departure from the report for warm starts that create but never assign; it
    # rewards unused definitions, so anneal it away.
    parallel_counts: Literal["assigned", "created"] = "assigned"
    perf: Literal["item_f1", "success"] = "item_f1"


class EpisodeStats(BaseModel):
    """What one rollout did, read from its trace plus its score."""

    subagents_created: int
    subagents_assigned: int
    subagents_finished: int
    orchestrator_steps: int
    parallel_steps: int  # orchestrator steps that launched two or more sub-agents
    critical_steps: int
    total_steps: int
    tool_calls: int
    answered: bool  # ended with an answer within its budgets
    item_f1: float
    success: bool

    @property
    def parallel_share(self) -> float:
        return self.parallel_steps / self.orchestrator_steps if self.orchestrator_steps else 0.0


def episode_stats(events: Sequence[Event], *, item_f1: float, success: bool) -> EpisodeStats:
    index = TraceIndex(events)
    root = index.roots[0] if index.roots else ""
    created = sum(1 for e in events if isinstance(e, SubagentCreated))
    children = [e.agent_id for e in events if isinstance(e, AgentStarted) and e.parent_id == root]
    finished_ok = {
        e.agent_id
        for e in events
        if isinstance(e, AgentFinished) and e.complete and e.stop_reason == "answer" and e.content.strip()
    }
    root_finish = next((e for e in events if isinstance(e, AgentFinished) and e.agent_id == root), None)
    per_step = [len(index.children.get((root, t), [])) for t in range(index.steps[root])]
    return EpisodeStats(
        # spawn_swarm defines and starts agents in one call: count those as created too
        subagents_created=max(created, len({index.agents[c].name for c in children})),
        subagents_assigned=len(children),
        subagents_finished=sum(1 for c in children if c in finished_ok),
        orchestrator_steps=index.steps[root],
        parallel_steps=sum(1 for n in per_step if n >= 2),
        critical_steps=index.critical_steps(root) if root else 0,
        total_steps=sum(index.steps.values()),
        tool_calls=sum(1 for e in events if e.kind == "tool_started"),
        answered=bool(root_finish and root_finish.complete),
        item_f1=item_f1,
        success=success,
    )


class RewardBreakdown(BaseModel):
    r_parallel: float
    r_finish: float
    r_perf: float
    lambda1: float
    lambda2: float
    lambda_aux: float
    total: float


def reward(stats: EpisodeStats, config: RewardConfig, progress: float, *, rows: int | None = None) -> RewardBreakdown:
    """The PARL reward of one episode at training progress ``progress`` ∈ [0, 1].

    ``rows``: how many rows the episode's task asks for; needed with ``parallel_cap_rows``.
    """
    counted = stats.subagents_assigned if config.parallel_counts == "assigned" else stats.subagents_created
    cap = config.parallel_cap
    if config.parallel_cap_rows:
        if rows is None or rows < 1:
            raise ValueError(f"reward: parallel_cap_rows caps r_parallel at the task's rows, so it needs rows >= 1, not {rows!r}")
        cap = min(cap, rows)
    r_parallel = min(counted, cap) / cap
    r_finish = stats.subagents_finished / stats.subagents_assigned if stats.subagents_assigned else 0.0
    r_perf = stats.item_f1 if config.perf == "item_f1" else float(stats.success)
    l1, l2, aux = config.lambda1(progress), config.lambda2(progress), config.lambda_aux(progress)
    if config.form == "report":
        total = l1 * r_parallel + l2 * r_finish + r_perf
        aux = 0.0
    else:
        total = aux * r_parallel + (1.0 - aux) * (float(stats.answered) * r_perf)
        l1 = l2 = 0.0
    return RewardBreakdown(
        r_parallel=r_parallel, r_finish=r_finish, r_perf=r_perf, lambda1=l1, lambda2=l2, lambda_aux=aux, total=total
    )
