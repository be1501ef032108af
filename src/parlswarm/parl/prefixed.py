"""A PARL orchestrator as an ordinary model: ``--model prefixed:SPEC``.

A PARL run with ``expert_prefix`` trains the orchestrator from the decision point on: the
scripted expert plays the turns that only look for the task's places (searches, a region's
index page), writing notes in the style the warm start learnt, and the policy plays every
turn after (:mod:`parlswarm.parl.rollout`). Run alone, the policy would have to find the places
itself, which it was never trained to do. ``prefixed:SPEC`` runs it as it was trained and
evaluated, through ``parlswarm run`` and ``parlswarm bench`` like any model.

Unlike the rollout's per-episode wrapper this one keeps no state, so one instance serves
every run of a benchmark. It marks the ids of the expert's tool calls (ids are not rendered
into prompts, so the policy never sees the mark): a conversation whose assistant turns all
carry the mark is still in the prefix, and the expert is asked first; once the policy has
played a turn, the policy plays every later one, as in the rollout, even a turn of its own
that only looked for places (stop 28; before, such a turn handed the conversation back to
the expert).
The note style comes from the model's ``manifest.json`` (a PARL checkpoint's, or a shipped
one's): its config's ``prefix_notes``; ``prefixed:NOTES:SPEC`` names it instead (the warm
start of a PARL run, whose manifest is an SFT run's: ``prefixed:verbatim:hf:runs/.../final``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, get_args

from parlswarm.models.base import Model, ModelSpecError, call_model
from parlswarm.models.registry import ModelOptions, register
from parlswarm.parl.notes import NoteStyle
from parlswarm.parl.rollout import expert_prefix, finds_places
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolChoice, ToolSpec

PREFIX_CALL_MARK = "prefix-"  # leads the id of every tool call the expert made as the prefix


def played_by_prefix(turn: AssistantMessage) -> bool:
    """Whether the prefix played this turn: it made tool calls, every one marked."""
    calls = turn.tool_calls or []
    return bool(calls) and all(c.id.startswith(PREFIX_CALL_MARK) for c in calls)


class PrefixedModel:
    """``policy`` from the decision point on; ``prefix`` (the scripted expert) before it."""

    def __init__(self, policy: Model, prefix: Model, name: str | None = None) -> None:
        self.policy = policy
        self.prefix = prefix
        self.name = name or f"prefixed:{policy.name}"

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        turns = [m for m in messages if isinstance(m, AssistantMessage)]
        if all(played_by_prefix(turn) for turn in turns):
            response = await call_model(self.prefix, messages, tools, tool_choice)
            if finds_places(response):
                calls = [c.model_copy(update={"id": PREFIX_CALL_MARK + c.id}) for c in response.message.tool_calls or []]
                return response.model_copy(update={"message": response.message.model_copy(update={"tool_calls": calls})})
        return await call_model(self.policy, messages, tools, tool_choice)

    def __getattr__(self, name: str) -> Any:
        # Whatever else a caller asks of a model (batching, closing, counters) is the policy's.
        if name in ("policy", "prefix"):  # not set yet (a copy being built): no policy to ask
            raise AttributeError(name)
        return getattr(self.policy, name)


def note_style(spec: str) -> NoteStyle:
    """The prefix notes the PARL model ``spec`` was trained with, from its manifest."""
    from parlswarm.models.local_specs import local_path

    manifest = local_path(spec) / "manifest.json"
    try:
        config = json.loads(manifest.read_text(encoding="utf-8")).get("config") or {}
    except OSError:
        raise ModelSpecError(f"prefixed:{spec}: {manifest} not found; name a PARL checkpoint or a shipped PARL model") from None
    except ValueError as exc:
        raise ModelSpecError(f"prefixed:{spec}: {manifest} is not JSON ({exc})") from None
    if not config.get("expert_prefix"):
        raise ModelSpecError(
            f"prefixed:{spec}: its manifest records no PARL run with expert_prefix; run it as {spec}, "
            f"or name the notes: prefixed:NOTES:{spec}"
        )
    style = config.get("prefix_notes")
    if style not in get_args(NoteStyle):
        raise ModelSpecError(f"prefixed:{spec}: its manifest's prefix_notes {style!r} is none of {', '.join(get_args(NoteStyle))}")
    return style  # type: ignore[no-any-return]


def load_prefixed(spec: str, options: ModelOptions) -> PrefixedModel:
    """``prefixed:SPEC`` in the note style SPEC's manifest records, or ``prefixed:NOTES:SPEC`` in ``NOTES``."""
    if not spec:
        raise ModelSpecError("prefixed:SPEC needs the PARL model, e.g. prefixed:builtin:smollm2-parl")
    del options  # a local model: the remote options (base URL, retries) do not apply
    from parlswarm.models.local import load_local

    head, _, rest = spec.partition(":")
    if head in get_args(NoteStyle) and rest:
        style, spec = head, rest  # prefixed:verbatim:SPEC, e.g. a warm start that records no PARL run
    else:
        style = note_style(spec)
    # A PARL orchestrator is a local model: builtin:NAME, hf:PATH, or a checkpoint's folder.
    return PrefixedModel(load_local(spec), expert_prefix(style), name=f"prefixed:{spec}")


register(
    "prefixed", load_prefixed,
    "prefixed:[NOTES:]SPEC (a PARL orchestrator, the scripted expert playing the turns before its decision)",
)

__all__ = ["PrefixedModel", "load_prefixed", "note_style"]
