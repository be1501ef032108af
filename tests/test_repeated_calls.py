"""The runtime's guard against repeated calls (``Budgets.repeated_calls``) and ``tool_choice``."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from typing import Any

import pytest

from parlswarm import Agent, Budgets, tool
from parlswarm.models import ScriptedModel, calls_reply, tool_reply
from parlswarm.models.cached import CachedModel
from parlswarm.trace import Trace, summarize
from parlswarm.trace.events import BudgetEvent, ModelCalled
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolChoice, ToolSpec, Usage

READS: list[str] = []


@tool(deterministic=True)
def read(key: str, part: int = 1) -> str:
    """Read a record that does not change.

    Args:
        key: Which record.
        part: Which part of it.
    """
    READS.append(key)
    return f"record {key}/{part}"


@tool
def poll(job: str) -> str:
    """Ask how a job is doing (the answer may change between calls).

    Args:
        job: The job.
    """
    READS.append(job)
    return "running"


class TextWhenAsked(ScriptedModel):
    """A script that honours ``tool_choice="none"`` with a text answer, and says when it was asked so."""

    def __init__(self, script: Any) -> None:
        super().__init__(script, name="text-when-asked")
        self.choices: list[ToolChoice] = []
        self.contexts: list[list[str]] = []  # the roles of the messages of every ask

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        self.choices.append(tool_choice)
        self.contexts.append([m.role for m in messages])
        if tool_choice == "none":
            return ModelResponse(message=AssistantMessage(content="answer from what I read"), usage=Usage(prompt_tokens=7, completion_tokens=5))
        return await super().complete(messages, tools)


async def _run(script: list[Any], tools: list[Any], **budgets: Any) -> tuple[Any, Trace, TextWhenAsked]:
    READS.clear()
    model = TextWhenAsked(script)
    trace = Trace()
    agent = Agent("reader", model, tools=tools, max_steps=6)
    result = await agent.run("read a", Budgets(**budgets), trace)
    return result, trace, model


def _guarded(trace: Trace) -> list[BudgetEvent]:
    return [e for e in trace.events if isinstance(e, BudgetEvent) and e.budget == "repeated_calls"]


async def test_a_step_that_repeats_the_last_steps_reads_is_asked_again_with_tool_calls_off() -> None:
    again = tool_reply("read", {"key": "a"}, content="a: noted")
    result, trace, model = await _run([tool_reply("read", {"key": "a"}), again, again, again], [read])
    assert result.content == "answer from what I read" and result.stop_reason == "answer"
    assert READS == ["a"]  # the repeat never ran
    assert model.choices == ["auto", "auto", "none"]
    (event,) = _guarded(trace)
    assert event.action == "refused" and 'read {"key": "a"}' in event.detail and "step 1" in event.detail
    # The refused reply was a model call on the chain: a step and a critical step of its own.
    assert result.steps == 3 and result.critical_steps == 3 and summarize(trace.events).critical_steps == 3
    calls = [e for e in trace.events if isinstance(e, ModelCalled)]
    assert [(c.step, c.tool_calls) for c in calls] == [(0, 1), (1, 1), (2, 0)]
    assert result.usage.completion_tokens == sum(c.usage.completion_tokens for c in calls)


async def test_the_refused_reply_leaves_the_context() -> None:
    _, _, model = await _run([tool_reply("read", {"key": "a"})] * 3, [read])
    assert model.choices == ["auto", "auto", "none"]
    # The text-only ask saw what the refused one saw: the repeat and its calls are gone.
    assert model.contexts == [["user"], ["user", "assistant", "tool"], ["user", "assistant", "tool"]]


async def test_arguments_are_compared_as_json_and_a_part_of_the_last_step_is_a_repeat() -> None:
    first = {"content": None, "tool_calls": [
        {"name": "read", "arguments": {"key": "a", "part": 2}}, {"name": "read", "arguments": {"key": "b"}},
    ]}
    reordered = {"content": None, "tool_calls": [{"name": "read", "arguments": json.dumps({"part": 2, "key": "a"})}]}
    result, trace, _ = await _run([first, reordered, "never"], [read])
    assert result.content == "answer from what I read" and READS == ["a", "b"]
    assert len(_guarded(trace)) == 1


@pytest.mark.parametrize(
    "script, tools, budgets",
    [
        # a tool whose answer may change (a poll) may be asked again
        ([tool_reply("poll", {"job": "j"}), tool_reply("poll", {"job": "j"}), "done"], [poll], {}),
        # asked to run repeats
        ([tool_reply("read", {"key": "a"}), tool_reply("read", {"key": "a"}), "done"], [read], {"repeated_calls": "run"}),
        # a call with something new is no repeat
        ([tool_reply("read", {"key": "a"}), calls_reply([("read", {"key": "a"}), ("read", {"key": "b"})]), "done"], [read], {}),
        # a repeat of an older step (its results may be folded away by the model's context) runs
        ([tool_reply("read", {"key": "a"}), tool_reply("read", {"key": "b"}), tool_reply("read", {"key": "a"}), "done"], [read], {}),
    ],
    ids=["not-deterministic", "run", "something-new", "older-step"],
)
async def test_calls_that_could_learn_something_run_as_usual(script: list[Any], tools: list[Any], budgets: dict[str, Any]) -> None:
    result, trace, model = await _run(script, tools, **budgets)
    assert result.content == "done" and not _guarded(trace)
    assert set(model.choices) == {"auto"}
    assert len(READS) == sum(len(r["tool_calls"]) for r in script if isinstance(r, dict))


async def test_a_failed_call_may_be_tried_again() -> None:
    bad = tool_reply("read", {"key": "a", "part": "x"})  # invalid arguments: an error, not a result
    result, trace, _ = await _run([bad, bad, "done"], [read])
    assert result.content == "done" and not _guarded(trace)


async def test_a_model_that_cannot_be_held_back_runs_its_repeat_once_asked() -> None:
    READS.clear()
    again = tool_reply("read", {"key": "a"})
    trace = Trace()
    result = await Agent("reader", ScriptedModel([again, again, "done"]), tools=[read]).run("read a", Budgets(), trace)
    assert result.content == "done" and READS == ["a", "a"]  # asked again, it repeated: its calls ran
    assert len(_guarded(trace)) == 1


def test_repeated_calls_names_its_choices() -> None:
    with pytest.raises(ValueError, match="repeated_calls"):
        Budgets(repeated_calls="skip")  # type: ignore[arg-type]


def test_every_model_of_the_project_takes_tool_choice() -> None:
    """The agent loop passes ``tool_choice`` to every model; each backend and wrapper must take it."""
    from parlswarm.bench import LatencyModel
    from parlswarm.models.local import LocalModel
    from parlswarm.models.openai_compat import OpenAICompatModel
    from parlswarm.models.resilient import ResilientModel
    from parlswarm.parl.notes import NotingExpert
    from parlswarm.parl.prefixed import PrefixedModel
    from parlswarm.parl.relabel import RelabellingModel
    from parlswarm.parl.rollout import PrefixedPolicy
    from parlswarm.parl.traces import RecordingModel
    from parlswarm.testing.scripted_runs import Delayed
    from parlswarm.vision.messages import ToolImagesAsUser
    from parlswarm.world.expert import ExpertModel

    classes = [
        LatencyModel, LocalModel, OpenAICompatModel, ResilientModel, NotingExpert, PrefixedModel, RelabellingModel,
        PrefixedPolicy, RecordingModel, Delayed, ToolImagesAsUser, ExpertModel, ScriptedModel, CachedModel,
    ]
    for cls in classes:
        parameter = inspect.signature(cls.complete).parameters.get("tool_choice")
        assert parameter is not None and parameter.default == "auto", cls.__name__


async def test_a_cached_reply_with_tool_calls_off_is_kept_apart() -> None:
    model = TextWhenAsked(["first turn"])
    cached = CachedModel(model, namespace="t")
    plain = await cached.complete([], [])
    off = await cached.complete([], [], tool_choice="none")
    assert plain.message.content == "first turn" and off.message.content == "answer from what I read"
    assert cached.key([], []) != cached.key([], [], "none")
