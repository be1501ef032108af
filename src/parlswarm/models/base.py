"""The one model protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from parlswarm.types import Message, ModelResponse, ToolSpec


class ModelError(Exception):
    """A model call failed in a way the user should read (auth, endpoint, unknown model...)."""


class ModelSpecError(ValueError):
    """A ``--model`` value that names no known backend, or a backend that cannot be set up."""


@runtime_checkable
class Model(Protocol):
    """An async chat model. ``name`` identifies it in traces and reports."""

    name: str

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        """One assistant turn for ``messages`` with ``tools`` on offer."""
        ...
