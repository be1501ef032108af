"""Evaluate orchestrators the way PARL trains them: same runtime, same budgets, greedy decoding.

Used before and after training on the test split of a world seed never seen in training,
and for the controls (the scripted fixed-width orchestrator).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from parlswarm.models.base import Model
from parlswarm.models.local import LocalModel
from parlswarm.models.local_settings import Sampling
from parlswarm.parl.rollout import Episode, TaskCase, run_episode
from parlswarm.tools import Toolset
from parlswarm.types import Budgets


class EvalSummary(BaseModel):
    label: str
    orchestrator: str
    subagent: str
    episodes: int
    item_f1: float
    success: float
    answered: float
    critical_steps: float
    total_steps: float
    subagents: float
    parallel_share: float
    tool_calls: float
    errors: int
    prefix_turns: float = 0.0  # orchestrator turns played by the expert prefix, when there is one
    policy_tokens: int = 0  # tokens the orchestrator generated, all episodes together (a local policy's only)
    seconds: float = 0.0  # wall-clock of the whole evaluation, episodes running side by side


def greedy_policy(path: str | Path, max_new_tokens: int = 256) -> LocalModel:
    # Continuous batching: one episode's long turn no longer holds the others' next turns (1.62x on
    # four serial SmolLM2 episodes, the same episodes played; docs/local-model.md). Greedy decoding
    # draws nothing, so when requests join does not change what they decode.
    return LocalModel.from_pretrained(path, sampling=Sampling(temperature=0.0, max_new_tokens=max_new_tokens), continuous=True)


async def evaluate_async(
    orchestrator: Model,
    subagent: Model,
    tools: Toolset,
    cases: Sequence[TaskCase],
    budgets: Budgets,
    concurrency: int = 8,
    prefix: Model | None = None,
) -> list[Episode]:
    """Every case once; ``concurrency`` episodes at a time (they share decoding batches).

    ``prefix``: a model that plays the turns before the decision point, as in training with
    ``expert_prefix`` (see :mod:`parlswarm.parl.rollout`).
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, case: TaskCase) -> Episode:
        async with gate:
            return await run_episode(orchestrator, subagent, tools, case, budgets, group=i, prefix=prefix)

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(cases))))


def summarize(label: str, episodes: Sequence[Episode], orchestrator: str, subagent: str) -> EvalSummary:
    def mean(values: Sequence[float]) -> float:
        return round(statistics.fmean(values), 4) if values else 0.0

    return EvalSummary(
        label=label,
        orchestrator=orchestrator,
        subagent=subagent,
        episodes=len(episodes),
        item_f1=mean([e.stats.item_f1 for e in episodes]),
        success=mean([float(e.stats.success) for e in episodes]),
        answered=mean([float(e.stats.answered) for e in episodes]),
        critical_steps=mean([e.stats.critical_steps for e in episodes]),
        total_steps=mean([e.stats.total_steps for e in episodes]),
        subagents=mean([e.stats.subagents_assigned for e in episodes]),
        parallel_share=mean([e.stats.parallel_share for e in episodes]),
        tool_calls=mean([e.stats.tool_calls for e in episodes]),
        errors=sum(1 for e in episodes if e.error),
        prefix_turns=mean([e.prefix_turns for e in episodes]),
        policy_tokens=sum(len(s.completion_ids) for e in episodes for s in e.samples),
    )


def evaluate(
    label: str,
    orchestrator: Model,
    subagent: Model,
    tools: Toolset,
    cases: Sequence[TaskCase],
    budgets: Budgets,
    prefix: Model | None = None,
) -> tuple[EvalSummary, list[Episode]]:
    t0 = time.perf_counter()
    episodes = asyncio.run(evaluate_async(orchestrator, subagent, tools, cases, budgets, prefix=prefix))
    summary = summarize(label, episodes, orchestrator.name, subagent.name)
    return summary.model_copy(update={"seconds": round(time.perf_counter() - t0, 3)}), episodes
