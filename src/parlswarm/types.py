"""The public vocabulary of parlswarm: messages, tool calls, usage, budgets, results.

Messages follow the OpenAI chat-completions format so that any OpenAI-compatible
endpoint, a local Hugging Face model and the scripted model all speak the same language.
Trace events live in :mod:`parlswarm.trace.events`.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TextPart(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ImageURL(BaseModel):
    url: str  # an http(s) URL or a ``data:image/...;base64,`` URL
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(BaseModel):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
Content = str | list[ContentPart]


def content_text(content: Content | None) -> str:
    """The text of a message content, images left out."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON text exactly as the model produced it (may be malformed)


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def make(cls, id: str, name: str, arguments: dict[str, Any] | str) -> ToolCall:
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        return cls(id=id, function=FunctionCall(name=name, arguments=args))


class SystemMessage(BaseModel):
    role: Literal["system"] = "system"
    content: Content


class UserMessage(BaseModel):
    role: Literal["user"] = "user"
    content: Content


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    # Thinking text of reasoning models (Kimi K2.5, DeepSeek R1 on vLLM ...). Kimi requires
    # it to be sent back on assistant tool-call turns while thinking is enabled.
    reasoning_content: str | None = None


class ToolMessage(BaseModel):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: Content


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


class ModelResponse(BaseModel):
    """One completion: the assistant message and what it cost."""

    message: AssistantMessage
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None


class ToolSpec(BaseModel):
    """What a model is told about a tool (the OpenAI ``tools`` entry, flattened)."""

    name: str
    description: str
    parameters: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


# Whether a model may call tools in this turn (OpenAI's ``tool_choice``): "auto", it decides;
# "none", it answers in text with the tools still described to it.
ToolChoice = Literal["auto", "none"]
# What the runtime does with a step that only repeats its previous step's deterministic calls (Budgets).
RepeatedCalls = Literal["answer", "run"]


class Budgets(BaseModel):
    """Limits of one run. ``None`` means unlimited. No budget is ever exceeded."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_subagents: int = Field(100, ge=1)
    max_subagents: int = Field(100, ge=0)
    max_tool_calls: int | None = Field(1500, ge=0)
    # One agent's calls in one step: a model that loops inside a single reply (twenty look-ups
    # of things the task never asked for) is cut there, not when its context overflows.
    max_tool_calls_per_step: int | None = Field(None, ge=1)
    max_orchestrator_steps: int = Field(100, ge=1)
    max_subagent_steps: int = Field(100, ge=1)
    max_critical_steps: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    max_cost: float | None = Field(None, gt=0)  # in the price table's currency; needs prices
    max_seconds: float | None = Field(None, gt=0)
    max_depth: int = Field(1, ge=0)
    max_retries: int | None = Field(1000, ge=0)  # model-call retries in the whole run
    # A step whose calls only repeat the agent's previous step's calls of deterministic tools can
    # only get the results already in front of the model (a loop: small models write their note and
    # then ask the same finds again until the step budget ends). "answer": they are not run, and the
    # next step is asked with tool calls off (tool_choice "none"); "run": run them again.
    repeated_calls: RepeatedCalls = "answer"


class AgentResult(BaseModel):
    """What one agent run produced."""

    agent_id: str
    name: str
    content: str
    complete: bool
    steps: int
    critical_steps: int = 0
    tool_calls: int
    usage: Usage
    stop_reason: Literal["answer", "max_steps", "budget", "error", "cancelled"]
    error: str | None = None


class RunSummary(BaseModel):
    """Figures of one run, computed from its trace."""

    steps: int
    critical_steps: int
    orchestrator_steps: int
    subagents: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    subagents_per_spawn_step: list[int] = Field(default_factory=list)
    cost: float | None = None  # when prices are configured

    def line(self) -> str:
        return (
            f"steps {self.steps} · critical steps {self.critical_steps} · "
            f"sub-agents {self.subagents} · tool calls {self.tool_calls} · "
            f"tokens {self.prompt_tokens + self.completion_tokens} · "
            + (f"cost {self.cost:.4f} · " if self.cost is not None else "")
            + f"{self.seconds:.2f}s"
        )
