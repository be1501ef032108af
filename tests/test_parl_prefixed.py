"""``--model prefixed:SPEC``: a PARL orchestrator run as it was trained, the expert playing the turns before its decision."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from nano_support import tiny_policy  # noqa: E402

from parlswarm.models import ModelSpecError, ScriptedModel, load_model  # noqa: E402
from parlswarm.models.scripted import reply_to_message  # noqa: E402
from parlswarm.parl.prefixed import PrefixedModel  # noqa: E402
from parlswarm.types import AssistantMessage, Message, ToolMessage, UserMessage  # noqa: E402

SEARCH = {"content": None, "tool_calls": [{"name": "search", "arguments": {"query": "Europe countries"}}]}
ASSIGN = {"content": None, "tool_calls": [{"name": "create_subagent", "arguments": {"name": "r"}}]}


def _counting(replies: Sequence[object], calls: list[int]) -> ScriptedModel:
    def script(messages: Sequence[Message]) -> object:
        calls.append(len(messages))
        return replies[min(len(calls), len(replies)) - 1]

    return ScriptedModel(script)  # type: ignore[arg-type]


def test_the_expert_plays_until_a_turn_does_more_than_look_for_places() -> None:
    prefix_calls: list[int] = []
    policy_calls: list[int] = []
    model = PrefixedModel(policy=_counting(["the policy's turn"], policy_calls), prefix=_counting([SEARCH, ASSIGN], prefix_calls))
    user: list[Message] = [UserMessage(content="For each country of Europe ...")]

    first = asyncio.run(model.complete(user, []))
    assert first.message.tool_calls and first.message.tool_calls[0].function.name == "search"
    assert (len(prefix_calls), len(policy_calls)) == (1, 0)

    searched = [*user, first.message, ToolMessage(tool_call_id=first.message.tool_calls[0].id, content="results")]
    second = asyncio.run(model.complete(searched, []))  # the expert would assign: the decision is the policy's
    assert second.message.content == "the policy's turn" and (len(prefix_calls), len(policy_calls)) == (2, 1)

    decided = [*searched, AssistantMessage(content=None, tool_calls=reply_to_message(ASSIGN, 1).tool_calls),
               ToolMessage(tool_call_id="x", content="done")]
    asyncio.run(model.complete(decided, []))  # past the decision the expert is not asked
    assert (len(prefix_calls), len(policy_calls)) == (2, 2)


def test_once_the_policy_has_played_it_plays_on_even_a_turn_that_only_searches() -> None:
    # As in the rollout (PrefixedPolicy): the expert is not asked again after the decision point.
    prefix_calls: list[int] = []
    policy_calls: list[int] = []
    model = PrefixedModel(policy=_counting([SEARCH, "the policy's answer"], policy_calls),
                          prefix=_counting([SEARCH, ASSIGN, SEARCH], prefix_calls))
    messages: list[Message] = [UserMessage(content="For each country of Europe ...")]
    for _ in range(2):  # the expert's search, then the policy's own search at the decision point
        reply = asyncio.run(model.complete(messages, []))
        assert reply.message.tool_calls
        messages += [reply.message, ToolMessage(tool_call_id=reply.message.tool_calls[0].id, content="results")]
    assert (len(prefix_calls), len(policy_calls)) == (2, 1)
    assert [c.id.startswith("prefix-") for m in messages if isinstance(m, AssistantMessage) for c in m.tool_calls or []] == [True, False]
    last = asyncio.run(model.complete(messages, []))
    assert last.message.content == "the policy's answer" and (len(prefix_calls), len(policy_calls)) == (2, 2)


def _parl_folder(folder: Path, config: dict[str, object]) -> Path:
    tiny_policy(folder)
    (folder / "manifest.json").write_text(json.dumps({"model": "PARL orchestrator", "config": config}))
    return folder


def test_prefixed_loads_a_parl_model_in_the_note_style_its_manifest_names(tmp_path: Path) -> None:
    folder = _parl_folder(tmp_path / "parl", {"expert_prefix": True, "prefix_notes": "verbatim"})
    model = load_model(f"prefixed:{folder}")
    assert isinstance(model, PrefixedModel) and model.name == f"prefixed:{folder}"
    assert model.prefix.style == "verbatim"  # type: ignore[attr-defined]
    assert model.tokenizer is model.policy.tokenizer  # type: ignore[attr-defined]  # the rest is the policy's
    # A warm start records no PARL run: its notes are named.
    warm = load_model(f"prefixed:checked:hf:{tiny_policy(tmp_path / 'warm')}")
    assert isinstance(warm, PrefixedModel) and warm.prefix.style == "checked"  # type: ignore[attr-defined]


def test_prefixed_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ModelSpecError, match="prefixed:SPEC needs the PARL model"):
        load_model("prefixed:")
    bare = tiny_policy(tmp_path / "bare")
    with pytest.raises(ModelSpecError, match=r"manifest.json not found; name a PARL checkpoint"):
        load_model(f"prefixed:{bare}")
    serial = _parl_folder(tmp_path / "serial", {"expert_prefix": False, "prefix_notes": "verbatim"})
    with pytest.raises(ModelSpecError, match="records no PARL run with expert_prefix"):
        load_model(f"prefixed:{serial}")
    odd = _parl_folder(tmp_path / "odd", {"expert_prefix": True, "prefix_notes": "scribbled"})
    with pytest.raises(ModelSpecError, match="prefix_notes 'scribbled' is none of"):
        load_model(f"prefixed:{odd}")


def test_a_prefixed_model_copies_without_asking_a_policy_it_does_not_have_yet() -> None:
    import copy

    model = PrefixedModel(policy=ScriptedModel(["a"], name="p"), prefix=ScriptedModel(["b"]))
    clone = copy.copy(model)  # builds the copy before its attributes are set
    assert clone.policy.name == "p" and clone.name == "prefixed:p"
