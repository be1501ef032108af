"""The agent loop: the one loop every run, benchmark and PARL rollout goes through.

An agent is a model, a system prompt, tools and a step budget. Each step is one model
turn; all tool calls of a turn run concurrently. The loop ends with the model's answer (a
turn without tool calls), or when a budget ends it, and returns exactly one message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parlswarm.budget import Ledger
from parlswarm.models.base import Model, ModelError, call_model
from parlswarm.models.resilient import CALL_SCOPE, CallScope
from parlswarm.pricing import Prices
from parlswarm.security import install_redaction, redact_content
from parlswarm.tools import Tool, ToolContext, Toolset
from parlswarm.trace.events import (
    AgentFinished,
    AgentStarted,
    BudgetEvent,
    ModelCalled,
    ToolFinished,
    ToolStarted,
)
from parlswarm.trace.recorder import Trace
from parlswarm.types import (
    AgentResult,
    AssistantMessage,
    Budgets,
    Content,
    Message,
    ModelResponse,
    SystemMessage,
    ToolCall,
    ToolChoice,
    ToolMessage,
    Usage,
    UserMessage,
    content_text,
)

if TYPE_CHECKING:
    from parlswarm.journal import Replay

log = logging.getLogger(__name__)

EXCERPT = 500  # characters of tool results kept in trace events and partial findings


def _excerpt(text: str, n: int = EXCERPT) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@dataclass
class Agent:
    """A model with a system prompt, tools and a step budget."""

    name: str
    model: Model
    system_prompt: str = ""
    tools: Sequence[Tool] | Toolset = ()
    max_steps: int = 100

    async def run(self, task: Content, budgets: Budgets | None = None, trace: Trace | None = None) -> AgentResult:
        """Run this agent alone on ``task`` (no orchestrator)."""
        run = RunContext.new(budgets or Budgets(), trace)
        return await run_agent(self, task, run)


@dataclass
class RunContext:
    """What all agents of one run share: the trace, the budget ledger and the run's state."""

    run_id: str
    trace: Trace
    ledger: Ledger
    state: dict[str, object] = field(default_factory=dict)  # for orchestration tools
    # Journal of the run: records model responses and tool results, and replays them on resume.
    replay: Replay | None = None

    @classmethod
    def new(
        cls, budgets: Budgets, trace: Trace | None = None, run_id: str | None = None, prices: Prices | None = None
    ) -> RunContext:
        run_id = run_id or uuid.uuid4().hex[:12]
        trace = trace or Trace(run_id)
        trace.run_id = run_id
        install_redaction(trace)  # secrets never reach what traces are written to
        return cls(run_id=run_id, trace=trace, ledger=Ledger(budgets, prices))

    @property
    def budgets(self) -> Budgets:
        return self.ledger.budgets


@dataclass
class AgentRuntime:
    """The live state of one running agent, visible to the tools it calls."""

    agent_id: str
    name: str
    depth: int
    critical_allowance: int | None  # how many critical steps this agent may still span
    critical_used: int = 0
    child_critical: dict[int, int] = field(default_factory=dict)  # step -> max child critical steps

    def note_child(self, step: int, critical_steps: int) -> None:
        self.child_critical[step] = max(self.child_critical.get(step, 0), critical_steps)

    def child_allowance(self) -> int | None:
        """Critical steps a sub-agent launched during the current step may use.

        One step is kept back besides the current one, so that the launching agent can
        still answer with what its sub-agents return.
        """
        if self.critical_allowance is None:
            return None
        return max(0, self.critical_allowance - self.critical_used - 2)


async def _call_tool(
    call: ToolCall, tools: Toolset, run: RunContext, rt: AgentRuntime, step: int, index: int = 0
) -> tuple[ToolMessage, bool]:
    """Execute one tool call under the run's budget; returns the tool message and success."""
    refusal = run.ledger.take_tool_call()
    if refusal is not None:
        run.trace.emit(BudgetEvent(agent_id=rt.agent_id, budget="max_tool_calls", action="refused", detail=refusal))
        return ToolMessage(tool_call_id=call.id, content=f"error: {refusal}"), False
    _budget_warnings(run, rt.agent_id)
    name = call.function.name
    run.trace.emit(
        ToolStarted(agent_id=rt.agent_id, step=step, call_id=call.id, tool=name, arguments=call.function.arguments)
    )
    t0 = run.trace.now()
    tool = tools.get(name)
    replayed = run.replay.tool_result(rt.agent_id, step, index, name) if run.replay is not None else None
    if replayed is not None:  # completed before the run was interrupted: not repeated
        ok, content, error = replayed.ok, replayed.content, replayed.error
    elif tool is None:
        ok, content = False, f"error: unknown tool '{name}'; available tools: {', '.join(tools.names()) or 'none'}"
        error = "unknown_tool"
    else:
        ctx = ToolContext(agent_id=rt.agent_id, step=step, call_id=call.id, run=(run, rt), index=index)
        outcome = await tool.invoke(call.function.arguments, ctx)
        outcome.content = redact_content(outcome.content)  # a tool that reads a key does not pass it on
        ok, content, error = outcome.ok, outcome.content, outcome.error
        if run.replay is not None:
            run.replay.record_tool(rt.agent_id, step, index, call.id, name, outcome)
    run.trace.emit(
        ToolFinished(
            agent_id=rt.agent_id,
            step=step,
            call_id=call.id,
            tool=name,
            ok=ok,
            seconds=run.trace.now() - t0,
            result=_excerpt(content_text(content)),
            error=error,
        )
    )
    return ToolMessage(tool_call_id=call.id, content=content), ok


def _budget_warnings(run: RunContext, agent_id: str) -> None:
    for budget, detail in run.ledger.warnings():
        run.trace.emit(BudgetEvent(agent_id=agent_id, budget=budget, action="warning", detail=detail))


CallKey = tuple[str, str]  # a tool call's name and its arguments, as canonical JSON where they parse


def _call_key(call: ToolCall) -> CallKey:
    try:
        arguments = json.dumps(json.loads(call.function.arguments), sort_keys=True, ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        arguments = call.function.arguments
    return call.function.name, arguments


def _repeatable(calls: Sequence[ToolCall], outcomes: Sequence[bool], tools: Toolset) -> set[CallKey]:
    """The calls of a step that a later step could only repeat: successful, to deterministic tools."""
    keys = set()
    for call, ok in zip(calls, outcomes):
        tool = tools.get(call.function.name)
        if ok and tool is not None and tool.deterministic:
            keys.add(_call_key(call))
    return keys


def _repeated_calls(calls: Sequence[ToolCall], previous: set[CallKey]) -> str:
    """The calls, named, when every one of them is in ``previous``; else ""."""
    keys = [_call_key(c) for c in calls]
    if not calls or not all(k in previous for k in keys):
        return ""
    return ", ".join(f"{name} {arguments}" for name, arguments in keys)


def _partial_findings(messages: Iterable[Message], reason: str) -> str:
    """What an agent stopped early has found: its last words and the latest tool results."""
    last_text = ""
    recent_tools: list[str] = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            recent_tools = []
            if m.content:
                last_text = m.content
        elif isinstance(m, ToolMessage):
            recent_tools.append(_excerpt(content_text(m.content)))
    parts = [f"[incomplete: {reason}]"]
    if last_text:
        parts.append(last_text)
    if recent_tools:
        parts.append("Latest tool results:\n" + "\n".join(f"- {r}" for r in recent_tools))
    return "\n".join(parts)


async def run_agent(
    agent: Agent,
    task: Content,
    run: RunContext,
    *,
    agent_id: str | None = None,
    parent_id: str | None = None,
    parent_step: int | None = None,
    parent_call_id: str | None = None,
    depth: int = 0,
    critical_allowance: int | None = None,
) -> AgentResult:
    """Run ``agent`` on ``task`` from a fresh context inside ``run``; returns one message."""
    agent_id = agent_id or f"{agent.name}-{uuid.uuid4().hex[:6]}"
    tools = agent.tools if isinstance(agent.tools, Toolset) else Toolset(agent.tools)
    if critical_allowance is None and parent_id is None:
        critical_allowance = run.budgets.max_critical_steps
    rt = AgentRuntime(agent_id=agent_id, name=agent.name, depth=depth, critical_allowance=critical_allowance)
    run.trace.emit(
        AgentStarted(
            agent_id=agent_id,
            name=agent.name,
            parent_id=parent_id,
            parent_step=parent_step,
            parent_call_id=parent_call_id,
            depth=depth,
            task=content_text(task),
            system_prompt=agent.system_prompt,
            tools=tools.names(),
            model=agent.model.name,
        )
    )
    messages: list[Message] = []
    if agent.system_prompt:
        messages.append(SystemMessage(content=agent.system_prompt))
    messages.append(UserMessage(content=task))
    usage = Usage()
    steps = tool_calls = 0
    last_step_calls: set[CallKey] = set()  # see Budgets.repeated_calls
    text_only = False  # the step before only repeated calls: this one may not call tools

    def finish(content: str, complete: bool, reason: str, error: str | None = None) -> AgentResult:
        result = AgentResult(
            agent_id=agent_id,
            name=agent.name,
            content=content,
            complete=complete,
            steps=steps,
            critical_steps=rt.critical_used,
            tool_calls=tool_calls,
            usage=usage,
            stop_reason=reason,  # type: ignore[arg-type]
            error=error,
        )
        run.trace.emit(
            AgentFinished(
                agent_id=agent_id,
                steps=steps,
                tool_calls=tool_calls,
                complete=complete,
                stop_reason=reason,
                content=content,
                usage=usage,
                error=error,
            )
        )
        return result

    async def ask(step: int, tool_choice: ToolChoice) -> ModelResponse:
        scope = CALL_SCOPE.set(CallScope(run.trace, run.ledger, agent_id, step))  # for retries
        try:
            left = run.ledger.seconds_left()
            return await asyncio.wait_for(call_model(agent.model, messages, tools.specs(), tool_choice), left)
        finally:
            CALL_SCOPE.reset(scope)

    try:
        while True:
            if steps >= agent.max_steps:
                return finish(_partial_findings(messages, f"step budget of {agent.max_steps} used up"), False, "max_steps")
            if critical_allowance is not None and rt.critical_used + 1 > critical_allowance:
                detail = f"critical-step budget reached after {rt.critical_used} critical steps"
                run.trace.emit(BudgetEvent(agent_id=agent_id, budget="max_critical_steps", action="stopped", detail=detail))
                return finish(_partial_findings(messages, detail), False, "budget")
            _budget_warnings(run, agent_id)
            refusal = run.ledger.model_call_refusal()
            if refusal is not None:
                budget, detail = refusal
                run.trace.emit(BudgetEvent(agent_id=agent_id, budget=budget, action="stopped", detail=detail))
                return finish(_partial_findings(messages, detail), False, "budget")
            step = steps
            t0 = run.trace.now()
            replayed = run.replay.model_response(agent_id, step) if run.replay is not None else None
            try:
                if replayed is not None:  # answered before the run was interrupted: not asked again
                    response = replayed
                else:
                    response = await ask(step, "none" if text_only else "auto")
                    if run.replay is not None:
                        run.replay.record_model(agent_id, step, response)
            except TimeoutError:
                detail = f"wall-clock budget ({run.budgets.max_seconds:g}s) used up"
                run.trace.emit(BudgetEvent(agent_id=agent_id, budget="max_seconds", action="stopped", detail=detail))
                return finish(_partial_findings(messages, detail), False, "budget")
            except Exception as exc:
                log.debug("model call of %s failed", agent_id, exc_info=True)
                error = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
                return finish(f"error: agent '{agent.name}' failed: {error}", False, "error", error)
            steps += 1
            usage = usage + response.usage
            cost = run.ledger.add_usage(response.usage, agent.model.name, response.model)
            message = response.message
            messages.append(message)
            calls = message.tool_calls or []
            run.trace.emit(
                ModelCalled(
                    agent_id=agent_id,
                    step=step,
                    model=response.model or agent.model.name,
                    usage=response.usage,
                    seconds=run.trace.now() - t0,
                    tool_calls=len(calls),
                    content=_excerpt(message.content or ""),
                    cost=cost,
                )
            )
            if not calls:
                rt.critical_used += 1
                return finish(message.content or "", True, "answer")
            repeated = _repeated_calls(calls, last_step_calls) if run.budgets.repeated_calls == "answer" else ""
            if repeated and not text_only:
                # A step all the same (a model call on the chain), whose calls are not run and whose
                # reply leaves the context: the next step is asked, from the same context, for text.
                detail = (
                    f"step {step} only repeats calls of step {step - 1} ({repeated}), whose results are in front "
                    "of the model; not run, and the next step is asked with tool calls off"
                )
                run.trace.emit(BudgetEvent(agent_id=agent_id, budget="repeated_calls", action="refused", detail=detail))
                messages.pop()
                text_only = True
                rt.critical_used += 1
                continue
            text_only = False
            cap = run.budgets.max_tool_calls_per_step
            allowed, over = (calls, []) if cap is None else (calls[:cap], calls[cap:])
            results = await asyncio.gather(*(_call_tool(c, tools, run, rt, step, i) for i, c in enumerate(allowed)))
            tool_calls += len(calls)
            messages.extend(msg for msg, _ in results)
            last_step_calls = _repeatable(allowed, [ok for _, ok in results], tools)
            if over:  # every call still gets its answer, as chat APIs require
                refusal = f"refused: at most {cap} tool calls a step; the {len(over)} after the first {cap} were not run"
                run.trace.emit(BudgetEvent(agent_id=agent_id, budget="max_tool_calls_per_step", action="refused", detail=refusal))
                messages.extend(ToolMessage(tool_call_id=c.id, content=f"error: {refusal}") for c in over)
            rt.critical_used += 1 + rt.child_critical.get(step, 0)
    except asyncio.CancelledError:
        finish(_partial_findings(messages, "cancelled"), False, "cancelled")
        raise
