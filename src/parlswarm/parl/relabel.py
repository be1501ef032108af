"""On-policy data: the model's own runs, every turn relabelled by the scripted expert (DAgger).

A model trained on expert traces alone only ever saw expert prefixes. Run free, one early
slip (a garbled name, a wrong code) puts it in a state the traces never showed, and it
drifts. Here the model runs as itself — sub-agent look-ups and single-mode tasks in training
worlds, through the ordinary runtime — and at every state it reaches the expert says what it
would do there. The expert works out its next turn from the conversation alone
(:mod:`parlswarm.world.expert`), so it can answer any prefix, including ones with the
model's mistakes in them. Each (model's prefix, expert's turn) pair becomes a training turn;
the model's own turns stay context, never targets. Ross et al. 2011 (DAgger), with the
expert's mixing weight β = 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from parlswarm.agent import Agent
from parlswarm.models.base import call_model
from parlswarm.parl.notes import NotingExpert
from parlswarm.parl.sft_config import DataConfig, LookupPlaces
from parlswarm.parl.traces import Conversation, Kind, data_tasks
from parlswarm.swarm import Swarm
from parlswarm.types import AssistantMessage, Budgets, Message, ModelResponse, ToolChoice, ToolSpec

log = logging.getLogger(__name__)


class RelabellingModel:
    """Answers with ``policy``; records, for every call, what ``teacher`` would have answered.

    The run follows the policy's turns; the records pair each prefix it reached with the
    teacher's turn for it. A prefix the teacher cannot answer is counted, not recorded.
    """

    def __init__(self, policy: Any, teacher: Any) -> None:
        self.policy = policy
        self.teacher = teacher
        self.name = policy.name
        self.records: list[tuple[list[Message], list[ToolSpec], AssistantMessage, AssistantMessage]] = []
        self.unanswered = 0

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        reply = await call_model(self.policy, messages, tools, tool_choice)
        if tool_choice != "auto":  # the runtime asking again (a repeat): the state was labelled when first asked
            return reply
        try:
            label = (await call_model(self.teacher, messages, tools, tool_choice)).message
        except Exception:  # a state the expert has no rule for teaches nothing; count it
            self.unanswered += 1
            log.debug("the expert could not answer a state", exc_info=True)
        else:
            self.records.append((list(messages), list(tools), label, reply.message))
        return reply


def _calls(m: AssistantMessage) -> list[tuple[str, str]]:
    return [(c.function.name, c.function.arguments) for c in m.tool_calls or []]


def same_turn(a: AssistantMessage, b: AssistantMessage) -> bool:
    """Whether two turns say the same thing (text and calls; call ids aside)."""
    return (a.content or "").strip() == (b.content or "").strip() and _calls(a) == _calls(b)


AGREEMENT_COUNTS = ("agreed", "call_states", "calls_agreed", "cells", "cells_agreed")


def turn_agreement(label: AssistantMessage, reply: AssistantMessage) -> dict[str, int]:
    """Where the policy's turn and the expert's part, as counts to sum over states.

    ``agreed``: the whole turn. Where the expert calls tools, ``calls_agreed``: the same calls
    (its notes aside). Where it answers with a table, ``cells_agreed`` of ``cells``: the
    expert's cells the policy wrote in the row of the same place (first column), text as is.
    """
    from parlswarm.scoring.table import TableError, extract_table

    out = dict.fromkeys(AGREEMENT_COUNTS, 0)
    out["agreed"] = int(same_turn(label, reply))
    if label.tool_calls:
        out["call_states"], out["calls_agreed"] = 1, int(_calls(label) == _calls(reply))
        return out

    def table(text: str | None) -> Any:
        try:
            return extract_table(text or "")
        except TableError:  # a garbled table (only the policy writes them): none of its cells agree
            return None

    expected = table(label.content)
    if expected is None:
        return out
    got = None if reply.tool_calls else table(reply.content)
    written = {row[0].strip().lower(): row for row in got.rows if row} if got is not None else {}
    for row in expected.rows:
        mine = written.get(row[0].strip().lower(), [])
        for j, cell in enumerate(row[1:], start=1):
            out["cells"] += 1
            out["cells_agreed"] += int(j < len(mine) and mine[j].strip() == cell.strip())
    return out


def lookup_prompts(
    world: Any, tasks: Sequence[Any], n: int, rng: random.Random, places: LookupPlaces = "region"
) -> list[tuple[Any, str]]:
    """Up to ``n`` one-place sub-tasks, worded as the expert orchestrator words them.

    ``places="region"`` draws from the region index of each task, so some places are ones a
    sub-agent must leave out (as when an orchestrator assigns a whole region);
    ``places="gold"`` draws from the task's gold rows only, places every column has a value for
    (as an orchestrator that filtered first assigns them, and as ``nano_eval.py`` tests them).
    """
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.pages import region_doc_id, region_members
    from parlswarm.world.tasks import parse_query

    jobs = []
    for task in tasks:
        parsed = parse_query(task.query)
        if parsed is None or parsed.region is None:
            continue
        kept = {row[0] for row in task.rows} if places == "gold" else None
        for place in region_members(world.docs[region_doc_id(parsed.region)].text):
            if kept is None or place[0] in kept:
                jobs.append((task, parsed, place))
    chosen = rng.sample(jobs, min(n, len(jobs)))
    return [(task, ExpertModel.subtask(parsed, [place])) for task, parsed, place in chosen]


async def _on_policy_runs(
    policy: Any, world_seed: int, data: DataConfig, real: Any, gate: asyncio.Semaphore
) -> tuple[list[Conversation], dict[str, int]]:
    from parlswarm.world.expert import SUBAGENT, SUBAGENT_PROMPT, ExpertModel
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    world = World.load(world_seed, base=real)
    tools = world_tools(world, check=data.check_tool)
    cfg = data.on_policy
    assert cfg is not None
    tasks = data_tasks(data, world.factbook, real, world_seed)
    rng = random.Random(world_seed)
    teacher = NotingExpert(ExpertModel("auto", reader=data.reader, stepwise=data.note_style == "stepwise"), data.note_style)
    runs: list[tuple[Kind, str, RelabellingModel]] = []

    async def lookup(task: Any, prompt: str) -> None:
        recorder = RelabellingModel(policy, teacher)
        runs.append(("subagent", task.instance_id, recorder))
        agent = Agent(SUBAGENT, recorder, SUBAGENT_PROMPT, tools=tools, max_steps=cfg.lookup_steps)
        async with gate:
            await agent.run(prompt, Budgets(max_orchestrator_steps=cfg.lookup_steps))

    async def single(task: Any) -> None:
        recorder = RelabellingModel(policy, teacher)
        runs.append(("serial", task.instance_id, recorder))
        async with gate:
            await Swarm(recorder, tools=tools, mode="single", budgets=Budgets(max_orchestrator_steps=cfg.single_steps)).run(
                task.query
            )

    small = [t for t in tasks if cfg.max_rows is None or len(t.rows) <= cfg.max_rows]
    jobs = [lookup(task, prompt) for task, prompt in lookup_prompts(world, tasks, cfg.lookups, rng, cfg.lookup_places)]
    jobs += [single(t) for t in rng.sample(small, min(cfg.single_tasks, len(small)))]
    await asyncio.gather(*jobs)
    out: list[Conversation] = []
    stats = {"runs": len(runs), "states": 0, "unanswered": 0, **dict.fromkeys(AGREEMENT_COUNTS, 0)}
    for kind, task_id, recorder in runs:
        stats["unanswered"] += recorder.unanswered
        for messages, specs, label, reply in recorder.records:
            out.append(Conversation(kind, [*messages, label], specs, world_seed, task_id, last_turn_only=True))
            stats["states"] += 1
            for k, v in turn_agreement(label, reply).items():
                stats[k] += v
    log.info(
        "world seed %d: %d runs, %d states relabelled, the model's turn was the expert's in %d, its calls in %d of %d, "
        "its answer cells in %d of %d",
        world_seed, stats["runs"], stats["states"], stats["agreed"], stats["calls_agreed"], stats["call_states"],
        stats["cells_agreed"], stats["cells"],
    )
    return out, stats


def relabelled_conversations(policy: Any, data: DataConfig) -> tuple[list[Conversation], dict[str, Any]]:
    """The policy's own runs in ``data.on_policy.world_seeds``, each state labelled with the expert's turn.

    The expert reads with ``data.reader`` and notes in ``data.note_style``, as in the
    expert traces the policy was trained on; tasks come from ``data.split`` (see ``data_tasks``).

    Statistics: runs, states relabelled, states the expert could not answer, seconds, the
    counts of :func:`turn_agreement` summed, and shares: ``agreement`` (states where the
    policy's turn already was the expert's), ``call_agreement`` (of the states where the expert
    calls tools, those where the policy made the same calls), ``cell_agreement`` (of the
    expert's answer cells, those the policy wrote the same).
    """
    from parlswarm.world.factbook import Factbook

    if data.on_policy is None:
        raise ValueError("data.on_policy is not set: there is no policy run to relabel")
    cfg = data.on_policy
    real = Factbook.load()
    out: list[Conversation] = []
    totals = {"runs": 0, "states": 0, "unanswered": 0, **dict.fromkeys(AGREEMENT_COUNTS, 0)}
    t0 = time.perf_counter()

    async def every_world() -> list[tuple[list[Conversation], dict[str, int]]]:
        # All worlds at once, cfg.concurrency runs in flight in all: turns decode in larger batches.
        gate = asyncio.Semaphore(cfg.concurrency)
        return await asyncio.gather(*(_on_policy_runs(policy, seed, data, real, gate) for seed in cfg.world_seeds))

    for convs, stats in asyncio.run(every_world()):
        out.extend(convs)
        for k, v in stats.items():
            totals[k] += v

    def share(part: str, whole: str) -> float:
        return round(totals[part] / totals[whole], 4) if totals[whole] else 0.0

    return out, {
        **totals,
        "agreement": share("agreed", "states"),
        "call_agreement": share("calls_agreed", "call_states"),
        "cell_agreement": share("cells_agreed", "cells"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
