"""Expert traces: the scripted expert's conversations recorded from real runtime runs.

The expert (:mod:`parlswarm.world.expert`) solves training tasks in counterfactual worlds
through the ordinary runtime (:class:`~parlswarm.swarm.Swarm`), in single mode (serial) and
swarm mode (an orchestrator plus sub-agents). A :class:`RecordingModel` around it keeps every
conversation exactly as the runtime fed it to the model: system prompt, task, assistant turns
with their tool calls, tool results.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from parlswarm.models.base import call_model
from parlswarm.parl.notes import NotingExpert
from parlswarm.parl.sft_config import DataConfig
from parlswarm.swarm import Swarm
from parlswarm.types import Budgets, Message, ModelResponse, ToolChoice, ToolSpec

# "start": a serial run of a task over data.max_rows, cut after its start (see DataConfig.start_samples).
Kind = Literal["serial", "parallel", "subagent", "start"]
# Steps of a cut serial run: the search, and opening the region's index page it finds.
START_STEPS = 2


@dataclass
class Conversation:
    """One agent's conversation as the runtime fed it to the model, ending with its last reply."""

    kind: Kind
    messages: list[Message]
    tools: list[ToolSpec]
    world_seed: int
    task_id: str
    last_turn_only: bool = False  # relabelled on-policy data: earlier turns are the model's own, context only

    def turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "assistant")

    def trained_turns(self) -> range:
        n = self.turns()
        return range(n - 1, n) if self.last_turn_only else range(n)


class RecordingModel:
    """Wraps a Model; keeps each agent's latest (messages, tools, reply) by conversation.

    The agent loop passes the same list object on every turn of one agent, so its identity
    tells conversations apart; the recorder holds the list so the identity stays unique.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self._latest: dict[int, tuple[Sequence[Message], list[Message], list[ToolSpec]]] = {}

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        response = await call_model(self.inner, messages, tools, tool_choice)
        self._latest[id(messages)] = (messages, [*messages, response.message], list(tools))
        return response

    def conversations(self) -> list[tuple[list[Message], list[ToolSpec]]]:
        return [(conv, tools) for _, conv, tools in self._latest.values()]


async def _run_task(swarm: Swarm, query: str) -> None:
    await swarm.run(query)


def data_tasks(data: DataConfig, world: Any, real: Any, world_seed: int) -> list[Any]:
    """The tasks ``data`` trains on in one world: a split's, or drawn afresh (``split: drawn``)."""
    from parlswarm.world.tasks import drawn_tasks, make_tasks

    if data.split == "drawn":
        return drawn_tasks(world, real, world_seed, data.drawn_tasks)
    return make_tasks(data.split, world, real=real, world_seed=world_seed)


def record_traces(world_seed: int, data: DataConfig, real: Any = None) -> list[Conversation]:
    """Expert conversations in world ``world_seed``: serial and swarm runs of the split's tasks."""
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    real = real or Factbook.load()
    world = World.load(world_seed, base=real)
    tools = world_tools(world, check=data.check_tool)
    tasks = data_tasks(data, world.factbook, real, world_seed)
    budgets = Budgets(max_orchestrator_steps=400, max_subagent_steps=100, max_tool_calls=5000)
    out: list[Conversation] = []

    def wrap(model: Any) -> RecordingModel:
        return RecordingModel(NotingExpert(model, data.note_style) if data.notes else model)

    for task in tasks:
        small = data.max_rows is None or len(task.rows) <= data.max_rows
        runs: list[tuple[Literal["serial", "start", "auto"], RecordingModel]] = []
        stepwise = data.note_style == "stepwise"
        serial = wrap(ExpertModel("serial", reader=data.reader, stepwise=stepwise))
        parallel = wrap(
            ExpertModel("auto", rows_per_agent=data.rows_per_subagent, reader=data.reader, subtask=data.subtask, stepwise=stepwise)
        )
        if small:
            asyncio.run(_run_task(Swarm(serial, tools=tools, mode=data.serial_mode, budgets=budgets), task.query))
            runs.append(("serial", serial))
        elif data.start_samples is not None:
            start = budgets.model_copy(update={"max_orchestrator_steps": START_STEPS})
            asyncio.run(_run_task(Swarm(serial, tools=tools, mode=data.serial_mode, budgets=start), task.query))
            runs.append(("start", serial))
        asyncio.run(_run_task(Swarm(parallel, tools=tools, mode="swarm", budgets=budgets), task.query))
        runs.append(("auto", parallel))
        for style, recorder in runs:
            for messages, specs in recorder.conversations():
                names = {t.name for t in specs}
                kind: Kind = style if style != "auto" else "parallel" if "assign_task" in names else "subagent"
                if kind == "parallel" and not small:
                    continue
                out.append(Conversation(kind, messages, specs, world_seed, task.instance_id))
    return out
