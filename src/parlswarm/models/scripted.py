"""A model whose replies are given as data: for tests, examples and demos.

A reply is a string (a final answer) or a mapping with ``content``, ``tool_calls``
(``[{"name": ..., "arguments": {...} or "raw json"}]``) and optional ``reasoning_content``.
With a list of replies, a conversation's n-th assistant turn gets reply n, so concurrent
sub-agents sharing one scripted model each follow the script from the start. A callable
receives the messages and returns a reply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from parlswarm.models.base import ModelError, ModelSpecError
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolCall, ToolChoice, ToolSpec, Usage, content_text

Reply = str | Mapping[str, Any]
Script = Sequence[Reply] | Callable[[Sequence[Message]], Reply]


def reply_to_message(reply: Reply, turn: int = 0) -> AssistantMessage:
    if isinstance(reply, str):
        return AssistantMessage(content=reply)
    calls = []
    for i, call in enumerate(reply.get("tool_calls") or []):
        calls.append(ToolCall.make(call.get("id", f"call_{turn}_{i}"), call["name"], call.get("arguments", {})))
    return AssistantMessage(
        content=reply.get("content"),
        tool_calls=calls or None,
        reasoning_content=reply.get("reasoning_content"),
    )


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedModel:
    """Replies from a script. Token usage is estimated at four characters a token."""

    def __init__(self, script: Script, name: str = "scripted") -> None:
        self.script = script
        self.name = name

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelSpecError(f"scripted model file not found: {path}") from None
        except yaml.YAMLError as exc:
            raise ModelSpecError(f"scripted model file {path} is not valid YAML/JSON: {exc}") from None
        if not isinstance(data, list):
            raise ModelSpecError(f"scripted model file {path} must hold a list of replies")
        return cls(data, name=f"scripted:{path.name}")

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        # tool_choice is not honoured: a script replies as written (the runtime runs its calls).
        turn = sum(1 for m in messages if m.role == "assistant")
        if callable(self.script):
            reply = self.script(messages)
        else:
            if turn >= len(self.script):
                raise ModelError(f"{self.name}: script has no reply for turn {turn + 1}")
            reply = self.script[turn]
        message = reply_to_message(reply, turn)
        prompt_text = "".join(content_text(getattr(m, "content", None)) for m in messages)
        out_text = (message.content or "") + "".join(
            c.function.name + c.function.arguments for c in message.tool_calls or []
        )
        usage = Usage(prompt_tokens=_approx_tokens(prompt_text), completion_tokens=_approx_tokens(out_text))
        return ModelResponse(
            message=message,
            usage=usage,
            model=self.name,
            finish_reason="tool_calls" if message.tool_calls else "stop",
        )


def tool_reply(name: str, arguments: dict[str, Any] | None = None, content: str | None = None) -> dict[str, Any]:
    """A reply making one tool call (a convenience for scripts)."""
    return {"content": content, "tool_calls": [{"name": name, "arguments": arguments or {}}]}


def calls_reply(calls: Sequence[tuple[str, dict[str, Any]]], content: str | None = None) -> dict[str, Any]:
    """A reply making several tool calls in one turn."""
    return {"content": content, "tool_calls": [{"name": n, "arguments": a} for n, a in calls]}


__all__ = ["ScriptedModel", "calls_reply", "reply_to_message", "tool_reply"]
