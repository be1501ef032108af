"""PARL rollouts: episodes of the trainable orchestrator with frozen sub-agents, through the runtime.

An episode is an ordinary :class:`~parlswarm.swarm.Swarm` run in the offline world. The
orchestrator's model is wrapped so that every turn it generates is kept with its exact
token ids; those turns are the only thing trained. Tool results and sub-agent messages sit
in the prompts of later turns: observations, never targets. Sub-agents run a frozen model.

Episodes of one group (the same task) run concurrently, so the orchestrator's turns — and
the sub-agents' — decode in shared batches.

**Expert prefix** (``prefix``, optional): a policy too weak to find the task's places on its
own never reaches the decision this training is about (serial or parallel). With a prefix
model — the scripted expert — the expert plays the orchestrator's turns while they only
look for the places (``search``, ``open_page`` on a ``region/`` index page); from the first
turn that does anything else, the policy plays to the end. This is starting episodes from
states of a demonstration; the prefix turns count in every budget and statistic like any
other turn, but they are not the policy's, so they are never trained.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from parlswarm.models.base import Model, call_model
from parlswarm.models.local import Generation, LocalModel
from parlswarm.parl.grpo import Sample
from parlswarm.parl.notes import NoteStyle, NotingExpert
from parlswarm.parl.rewards import EpisodeStats, episode_stats
from parlswarm.scoring import GoldTable, TaskScore, WideSearchTask, score_response
from parlswarm.scoring.tasks import norm_column
from parlswarm.swarm import Mode, Swarm
from parlswarm.tools import Toolset
from parlswarm.trace.recorder import Trace
from parlswarm.types import AssistantMessage, Budgets, Message, ModelResponse, ToolChoice, ToolSpec
from parlswarm.world.pages import opened_region
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


def finds_places(response: ModelResponse | AssistantMessage) -> bool:
    """Whether a turn only looks for the task's places: searches, or reads a region's index."""
    message = response.message if isinstance(response, ModelResponse) else response
    calls = message.tool_calls or []
    return bool(calls) and all(
        c.function.name == "search" or opened_region(c.function.name, c.function.arguments) is not None for c in calls
    )


class PrefixedPolicy:
    """The orchestrator of one episode: the prefix model until the decision point, then the policy.

    With a LocalModel policy, each of the policy's turns is kept with its token ids (``turns``).
    With ``replay`` (``output_of`` of :class:`~parlswarm.parl.replay.EpisodeReplay`), the
    policy's turns are read back from a log rather than decoded.
    """

    def __init__(self, policy: LocalModel | Model, prefix: Model | None = None,
                 replay: Callable[[list[int]], list[int]] | None = None) -> None:
        self.policy = policy
        self.name = policy.name
        self.prefix = prefix
        self.replay = replay
        self.prefix_turns = 0
        self.turns: list[Generation] = []

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        if self.prefix is not None:
            response = await call_model(self.prefix, messages, tools, tool_choice)
            if finds_places(response):
                self.prefix_turns += 1
                return response
            self.prefix = None  # the decision point: the policy plays from here on
        if isinstance(self.policy, LocalModel):
            if self.replay is not None:
                response, generation = self.policy.replay_with_generation(messages, tools, self.replay)
            else:
                response, generation = await self.policy.complete_with_generation(messages, tools, tool_choice=tool_choice)
            self.turns.append(generation)
            return response
        return await call_model(self.policy, messages, tools, tool_choice)


def expert_prefix(note_style: NoteStyle = "labelled") -> Model:
    """The scripted expert as a prefix model, writing notes in the style the warm start learnt."""
    from parlswarm.world.expert import ExpertModel

    stepwise = note_style == "stepwise"
    return NotingExpert(ExpertModel("auto", reader="find" if stepwise else "pages", stepwise=stepwise), note_style)  # type: ignore[return-value]


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
    prefix_turns: int = 0  # orchestrator turns the prefix model played (not trained)


async def run_episode(
    policy: LocalModel | Model,
    subagent_model: Model,
    tools: Toolset,
    case: TaskCase,
    budgets: Budgets,
    *,
    group: int = 0,
    mode: Mode = "swarm",
    prefix: Model | None = None,
    replay: Callable[[list[int]], list[int]] | None = None,
) -> Episode:
    """One episode; with a LocalModel policy its turns come back as training samples.

    ``prefix``: a model that plays the turns before the decision point (see the module's doc).
    ``replay``: the policy's turns read back from a log (:class:`PrefixedPolicy`).
    """
    orchestrator = PrefixedPolicy(policy, prefix, replay)
    swarm = Swarm(orchestrator, subagent_model=subagent_model, tools=tools, budgets=budgets, mode=mode)
    result = await swarm.run(case.task.query)
    error = result.result.error if result.result.stop_reason == "error" else None
    score = score_response(case.task, case.gold, result.answer)
    stats = episode_stats(result.trace.events, item_f1=score.item_f1, success=score.success)
    samples = [
        Sample(prompt_ids=list(g.prompt_ids), completion_ids=list(g.output_ids), old_logprobs=[], episode=0)
        for g in orchestrator.turns
        if g.output_ids
    ]
    return Episode(case, group, result.answer, result.trace, score, stats, samples, error, orchestrator.prefix_turns)


async def rollout_groups(
    policy: LocalModel | Model,
    subagent_model: Model,
    tools_by_seed: dict[int, Toolset],
    cases: Sequence[TaskCase],
    group_size: int,
    budgets: Budgets,
    mode: Mode = "swarm",
    prefix: Model | None = None,
    replays: Sequence[Callable[[list[int]], list[int]]] | None = None,
) -> list[Episode]:
    """``group_size`` episodes of every case, all at once; group i is cases[i]. ``replays``:
    one per episode, in that order, to read the policy's turns back from a log."""
    places = [(i, case) for i, case in enumerate(cases) for _ in range(group_size)]
    if replays is not None and len(replays) != len(places):
        raise ValueError(f"{len(replays)} replays for {len(places)} episodes")
    jobs = [
        run_episode(policy, subagent_model, tools_by_seed[case.world_seed], case, budgets, group=i, mode=mode, prefix=prefix,
                    replay=None if replays is None else replays[n])
        for n, (i, case) in enumerate(places)
    ]
    return list(await asyncio.gather(*jobs))
