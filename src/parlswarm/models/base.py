"""The one model protocol every backend implements."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from parlswarm.types import Message, ModelResponse, ToolChoice, ToolSpec


class ModelError(Exception):
    """A model call failed in a way the user should read (auth, endpoint, unknown model...)."""


class ModelSpecError(ValueError):
    """A ``--model`` value that names no known backend, or a backend that cannot be set up."""


@runtime_checkable
class Model(Protocol):
    """An async chat model. ``name`` identifies it in traces and reports."""

    name: str

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        """One assistant turn for ``messages`` with ``tools`` on offer.

        With ``tool_choice="none"`` the turn must be text alone: the tools are still described
        (the prompt is the one the model knows), but it may not call them. A scripted model
        that cannot honour it answers as it would; the runtime then runs its calls as usual.
        """
        ...


async def call_model(
    model: Model, messages: Sequence[Message], tools: Sequence[ToolSpec], tool_choice: ToolChoice = "auto"
) -> ModelResponse:
    """``model.complete``, passing ``tool_choice`` only when it is not "auto" and the model takes it.

    Models written before ``tool_choice`` existed (a user's own class) keep working: for an
    ordinary turn they are called as they always were, and asked for text alone they answer as
    they would, which the runtime handles as it does a scripted model's reply.
    """
    if tool_choice != "auto" and "tool_choice" in inspect.signature(model.complete).parameters:
        return await model.complete(messages, tools, tool_choice=tool_choice)
    return await model.complete(messages, tools)
