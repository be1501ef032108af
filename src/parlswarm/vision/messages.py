"""Images returned by tools, for endpoints that accept images only in user messages.

OpenAI's chat-completions API (and servers that copy it strictly) reject ``image_url``
parts in ``tool`` messages. :class:`ToolImagesAsUser` wraps any model and, just before each
call, moves such images into one user message placed after the turn's tool messages,
each image labelled with the call it came from. The agent's own history is not changed.
"""

from __future__ import annotations

from collections.abc import Sequence

from parlswarm.models.base import Model, call_model
from parlswarm.types import (
    ContentPart,
    ImagePart,
    Message,
    ModelResponse,
    TextPart,
    ToolChoice,
    ToolMessage,
    ToolSpec,
    UserMessage,
)


def hoist_tool_images(messages: Sequence[Message]) -> list[Message]:
    """A copy of ``messages`` where tool-result images travel in a user message instead."""
    out: list[Message] = []
    pending: list[ContentPart] = []
    for m in messages:
        if pending and not isinstance(m, ToolMessage):
            out.append(UserMessage(content=pending))
            pending = []
        if isinstance(m, ToolMessage) and isinstance(m.content, list) and any(
            isinstance(p, ImagePart) for p in m.content
        ):
            texts = [p for p in m.content if isinstance(p, TextPart)]
            images = [p for p in m.content if isinstance(p, ImagePart)]
            note = f"[{len(images)} image(s) follow in the next user message]"
            out.append(ToolMessage(tool_call_id=m.tool_call_id, content="\n".join([*(t.text for t in texts), note])))
            pending.append(TextPart(text=f"Images returned by tool call {m.tool_call_id}:"))
            pending.extend(images)
        else:
            out.append(m)
    if pending:
        out.append(UserMessage(content=pending))
    return out


class ToolImagesAsUser:
    """A model wrapper that sends tool-result images as user content (see module doc)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = model.name

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        return await call_model(self.model, hoist_tool_images(messages), tools, tool_choice)
