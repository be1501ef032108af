"""PARL rollouts: episodes of the trainable orchestrator with frozen sub-agents, through the runtime.

An episode is an ordinary :class:`~parlswarm.swarm.Swarm` run in the offline world. The
orchestrator's model is wrapped so that every turn it generates is kept with its exact
token ids; those turns are the only thing trained. Tool results and sub-agent messages sit
in the prompts of later turns: observations, never targets. Sub-agents run a frozen model.

Episodes of one group (the same task) run concurrently, so the orchestrator's turns — and
the sub-agents' — decode in shared batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from parlswarm.models.base import Model
from parlswarm.models.local import Generation, LocalModel
from parlswarm.parl.grpo import Sample
from parlswarm.parl.rewards import EpisodeStats, episode_stats
from parlswarm.scoring import GoldTable, TaskScore, WideSearchTask, score_response
from parlswarm.swarm import Mode, Swarm
from parlswarm.tools import Toolset
from parlswarm.trace.recorder import Trace
from parlswarm.types import Budgets, Message, ModelResponse, ToolSpec
from parlswarm.world.fields import norm_column
from parlswarm.world.tasks import WorldTask, header


@dataclass
class TaskCase:
    """A world task ready to run and score."""

    task: WideSearchTask
    gold: GoldTable
    world_seed: int

    @classmethod
    def from_world(cls, world_task: WorldTask, world_seed: int) -> TaskCase:
        task = WideSearchTask.model_validate(world_task.line())
        gold = GoldTable(
            instance_id=world_task.instance_id,
            columns=[norm_column(h) for h in header(world_task.spec)],
            rows=world_task.rows,
        )
        return cls(task=task, gold=gold, world_seed=world_seed)

    @property
    def rows(self) -> int:
        return len(self.gold.rows)


class RecordingPolicy:
    """The trainable orchestrator as a Model: records each turn's token ids."""

    def __init__(self, policy: LocalModel) -> None:
        self.policy = policy
        self.name = policy.name
        self.turns: list[Generation] = []

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        response, generation = await self.policy.complete_with_generation(messages, tools)
        self.turns.append(generation)
        return response


@dataclass
class Episode:
    case: TaskCase
    group: int
    answer: str
    trace: Trace
    score: TaskScore
    stats: EpisodeStats
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None


async def run_episode(
    policy: LocalModel | Model,
    subagent_model: Model,
    tools: Toolset,
    case: TaskCase,
    budgets: Budgets,
    *,
    group: int = 0,
    mode: Mode = "swarm",
) -> Episode:
    """One episode; with a LocalModel policy its turns come back as training samples."""
    recorder = RecordingPolicy(policy) if isinstance(policy, LocalModel) else None
    orchestrator: Model = recorder if recorder is not None else policy  # type: ignore[assignment]
    swarm = Swarm(orchestrator, subagent_model=subagent_model, tools=tools, budgets=budgets, mode=mode)
    result = await swarm.run(case.task.query)
    error = result.result.error if result.result.stop_reason == "error" else None
    score = score_response(case.task, case.gold, result.answer)
    stats = episode_stats(result.trace.events, item_f1=score.item_f1, success=score.success)
    samples = []
    if recorder is not None:
        samples = [
            Sample(prompt_ids=list(g.prompt_ids), completion_ids=list(g.output_ids), old_logprobs=[], episode=0)
            for g in recorder.turns
            if g.output_ids
        ]
    return Episode(case, group, result.answer, result.trace, score, stats, samples, error)


async def rollout_groups(
    policy: LocalModel | Model,
    subagent_model: Model,
    tools_by_seed: dict[int, Toolset],
    cases: Sequence[TaskCase],
    group_size: int,
    budgets: Budgets,
    mode: Mode = "swarm",
) -> list[Episode]:
    """``group_size`` episodes of every case, all at once; group i is cases[i]."""
    jobs = [
        run_episode(policy, subagent_model, tools_by_seed[case.world_seed], case, budgets, group=i, mode=mode)
        for i, case in enumerate(cases)
        for _ in range(group_size)
    ]
    return list(await asyncio.gather(*jobs))
