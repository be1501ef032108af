"""Typed trace events. Every run records them; metrics, reports and journals read them.

Timestamps ``t`` are seconds on the monotonic clock since the run started. ``step`` is the
0-based index of the emitting agent's model turn.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter

from parlswarm.types import Usage


class _Event(BaseModel):
    t: float = 0.0
    run_id: str = ""


class RunStarted(_Event):
    kind: Literal["run_started"] = "run_started"
    task: str
    mode: str
    model: str
    subagent_model: str
    budgets: dict[str, Any]
    started_at: float = Field(default_factory=time.time)  # Unix time, anchors ``t`` to the wall clock
    currency: str | None = None  # of ModelCalled.cost, when prices are configured


class AgentStarted(_Event):
    kind: Literal["agent_started"] = "agent_started"
    agent_id: str
    name: str
    parent_id: str | None = None
    parent_step: int | None = None  # the parent's step that launched this agent
    parent_call_id: str | None = None  # the parent's tool call that launched it (assign_task, spawn_swarm)
    depth: int = 0
    task: str = ""
    system_prompt: str = ""
    tools: list[str] = Field(default_factory=list)
    model: str = ""


class ModelCalled(_Event):
    kind: Literal["model_call"] = "model_call"
    agent_id: str
    step: int
    model: str
    usage: Usage
    seconds: float
    tool_calls: int
    content: str = ""
    cost: float | None = None  # in the price table's currency, when prices are configured


class ToolStarted(_Event):
    kind: Literal["tool_started"] = "tool_started"
    agent_id: str
    step: int
    call_id: str
    tool: str
    arguments: str


class ToolFinished(_Event):
    kind: Literal["tool_finished"] = "tool_finished"
    agent_id: str
    step: int
    call_id: str
    tool: str
    ok: bool
    seconds: float
    result: str = ""  # excerpt
    # why it failed: bad_json, bad_arguments, unknown_tool, tool_error, exception
    error: str | None = None


class ModelRetried(_Event):
    kind: Literal["model_retry"] = "model_retry"
    agent_id: str
    step: int
    attempt: int  # 1 for the first retry of this call
    reason: str  # rate_limit, server_error, timeout, connection, bad_response
    error: str
    delay: float  # seconds waited before the retry


class SubagentCreated(_Event):
    kind: Literal["subagent_created"] = "subagent_created"
    agent_id: str  # the creator
    step: int
    name: str
    system_prompt: str
    tools: list[str]


class BudgetEvent(_Event):
    kind: Literal["budget"] = "budget"
    agent_id: str
    budget: str  # which budget, e.g. "max_tool_calls"
    action: Literal["refused", "stopped", "warning"]
    detail: str


class AgentFinished(_Event):
    kind: Literal["agent_finished"] = "agent_finished"
    agent_id: str
    steps: int
    tool_calls: int
    complete: bool
    stop_reason: str
    content: str
    usage: Usage
    error: str | None = None


class RunFinished(_Event):
    kind: Literal["run_finished"] = "run_finished"
    answer: str
    complete: bool
    summary: dict[str, Any]


Event = Annotated[
    RunStarted
    | AgentStarted
    | ModelCalled
    | ToolStarted
    | ToolFinished
    | ModelRetried
    | SubagentCreated
    | BudgetEvent
    | AgentFinished
    | RunFinished,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
