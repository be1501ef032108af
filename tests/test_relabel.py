"""On-policy relabelling (DAgger): the run follows the policy, the targets are the expert's."""

from __future__ import annotations

import asyncio
import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from parlswarm.agent import Agent  # noqa: E402
from parlswarm.models.scripted import ScriptedModel, tool_reply  # noqa: E402
from parlswarm.parl.copy_task import CopyTaskConfig  # noqa: E402
from parlswarm.parl.notes import NotingExpert  # noqa: E402
from parlswarm.parl.relabel import RelabellingModel, lookup_prompts, same_turn, turn_agreement  # noqa: E402
from parlswarm.parl.sft import SFTRun, _turn_refs  # noqa: E402
from parlswarm.parl.sft_config import OnPolicyConfig, SFTConfig, TrainConfig  # noqa: E402
from parlswarm.parl.traces import Conversation  # noqa: E402
from parlswarm.types import AssistantMessage, Budgets, FunctionCall, ToolCall  # noqa: E402
from parlswarm.world.expert import SUBAGENT, SUBAGENT_PROMPT, ExpertModel  # noqa: E402
from parlswarm.world.tasks import make_tasks  # noqa: E402
from parlswarm.world.tools import world_tools  # noqa: E402
from parlswarm.world.world import World  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def test_the_run_follows_the_policy_and_every_state_gets_the_experts_turn() -> None:
    world = World.load(1)
    tasks = make_tasks("dev", world.factbook, world_seed=1)
    [(task, prompt)] = lookup_prompts(world, tasks, 1, random.Random(0))
    code = re.search(r"^- .+ \((\w+)\)$", prompt, re.MULTILINE).group(1)  # type: ignore[union-attr]  # "- Name (code)"
    # A policy that slips: a wrong doc id, then gives up.
    policy = ScriptedModel([tool_reply("find", {"doc_id": "zz-not-a-place", "text": "Capital"}), "no idea"])
    recorder = RelabellingModel(policy, NotingExpert(ExpertModel("auto", reader="find")))
    agent = Agent(SUBAGENT, recorder, SUBAGENT_PROMPT, tools=world_tools(world), max_steps=6)
    result = asyncio.run(agent.run(prompt, Budgets(max_orchestrator_steps=6)))

    assert result.content == "no idea"  # the policy's path, not the expert's
    assert len(recorder.records) == 2 and recorder.unanswered == 0
    (first, _, label1, reply1), (second, specs, label2, reply2) = recorder.records
    assert [m.role for m in first] == ["system", "user"]
    for label in (label1, label2):  # from the start and after the slip: find the right place
        assert label.tool_calls and {json.loads(c.function.arguments)["doc_id"] for c in label.tool_calls} == {code}
    assert any("zz-not-a-place" in (c.function.arguments or "") for m in second for c in getattr(m, "tool_calls", None) or [])
    assert not same_turn(label1, reply1) and not same_turn(label2, reply2)
    # As training data only the expert's turn is a target; the policy's slip is context.
    conv = Conversation("subagent", [*second, label2], specs, 1, task.instance_id, last_turn_only=True)
    assert conv.turns() == 2 and _turn_refs([conv])["subagent"] == [(0, 1)]
    assert same_turn(label1, label1.model_copy(update={"tool_calls": [c.model_copy(update={"id": "other"}) for c in label1.tool_calls]}))


def test_agreement_is_counted_per_turn_per_call_and_per_answer_cell() -> None:
    def turn(content: str = "", calls: tuple[tuple[str, dict], ...] = ()) -> AssistantMessage:
        return AssistantMessage(content=content, tool_calls=[
            ToolCall(id=f"c{i}", function=FunctionCall(name=n, arguments=json.dumps(a))) for i, (n, a) in enumerate(calls)
        ] or None)

    find = ("find", {"doc_id": "ag", "text": "Capital"})
    # A call turn: the same call with other notes agrees on calls, not as a whole turn.
    assert turn_agreement(turn("Notes: a", (find,)), turn("Notes: b", (find,))) == {
        "agreed": 0, "call_states": 1, "calls_agreed": 1, "cells": 0, "cells_agreed": 0}
    assert turn_agreement(turn("", (find,)), turn("", (("find", {"doc_id": "ca", "text": "Capital"}),)))["calls_agreed"] == 0
    # An answer: cells compared in the row of the same place, wherever the row is.
    expert = turn("| Place | Capital | Area |\n|---|---|---|\n| Algeria | Algiers | 2381740 |\n| Chad | N'Djamena | 1284000 |")
    policy = turn("| Place | Capital | Area |\n|---|---|---|\n| Chad | N'Djamena | 128400 |\n| algeria | Algiers | 2381740 |")
    assert turn_agreement(expert, policy) == {"agreed": 0, "call_states": 0, "calls_agreed": 0, "cells": 4, "cells_agreed": 3}
    assert turn_agreement(expert, expert)["agreed"] == 1 and turn_agreement(expert, expert)["cells_agreed"] == 4
    # No table, or a call where the expert answers: none of the cells agree.
    assert turn_agreement(expert, turn("I could not find it."))["cells_agreed"] == 0
    assert turn_agreement(expert, turn("", (find,))) == {"agreed": 0, "call_states": 0, "calls_agreed": 0, "cells": 4, "cells_agreed": 0}


def test_look_ups_draw_from_the_region_or_from_the_gold_rows_only() -> None:
    world = World.load(1)
    tasks = make_tasks("dev", world.factbook, world_seed=1)
    gold = {(t.instance_id, row[0]) for t in tasks for row in t.rows}

    def drawn(places: str) -> set[tuple[str, str]]:
        out = set()
        for task, prompt in lookup_prompts(world, tasks, 200, random.Random(0), places):  # type: ignore[arg-type]
            [name] = re.findall(r"^- (.+) \(\w+\)$", prompt, re.MULTILINE)
            out.add((task.instance_id, name))
        return out

    region, only_gold = drawn("region"), drawn("gold")
    assert only_gold and only_gold <= gold
    assert region - gold  # the region index holds places a sub-agent must leave out


def test_on_policy_samples_train_only_the_experts_turn(tmp_path: Path) -> None:
    base = SFTConfig.load(ROOT / "configs" / "sft-tiny.yaml")
    tiny = TrainConfig(steps=1, batch_tokens=3072, lr=3e-3, warmup=1, eval_every=4, save_every=4, seed=0, threads=2, input_noise=0.1,
                       copy_task=CopyTaskConfig())
    first = base.model_copy(update={
        "out_dir": tmp_path / "policy", "tokenizer_pages": 150, "train": tiny,
        "data": base.data.model_copy(update={"orchestrator_samples": 6, "subagent_samples": 6, "dev_samples": 0}),
    })
    SFTRun(first).run()
    policy = tmp_path / "policy" / "final"
    on_policy = OnPolicyConfig(policy=policy, world_seeds=[2], lookups=3, single_tasks=1, lookup_steps=2,
                               single_steps=2, max_new_tokens=24, samples=5)
    second = first.model_copy(update={
        "out_dir": tmp_path / "dagger", "init": policy,
        "data": first.data.model_copy(update={"on_policy": on_policy}),
    })
    run = SFTRun(second)
    lm, data = run.prepare()
    stats = data.stats["on_policy"]
    assert stats["runs"] == 4 and stats["states"] >= 4 and 0 <= stats["agreement"] <= 1
    assert stats["call_states"] + stats["cells"] > 0 and 0 <= stats["call_agreement"] <= 1 and 0 <= stats["cell_agreement"] <= 1
    assert stats["samples"] == 5 and len(data.train) == data.stats["train_samples"]
    assert data.stats["train_samples"] == sum(data.stats["train_kinds"].values())
    for sample in data.train[-5:]:  # the relabelled turns come last
        trained = lm.tokenizer.decode([i for i, m in zip(sample.ids, sample.mask) if m])
        assert trained.endswith("<|end|>") and trained.count("<|end|>") == 1  # one turn: the expert's
