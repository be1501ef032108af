"""The orchestrator: tools that create and run sub-agents, and the :class:`Swarm` that runs them.

The orchestrator is an ordinary agent whose menu also holds ``create_subagent``,
``assign_task`` and ``spawn_swarm`` (the tools of the Kimi K2.5 report and the seed's
dispatch example). Sub-agents are frozen: they may run a different model, start from a
fresh context, and return exactly one message; their internals never reach the
orchestrator's context.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import AliasChoices, BaseModel, Field

from parlswarm import prompts
from parlswarm.agent import Agent, AgentRuntime, RunContext, run_agent
from parlswarm.models.base import Model
from parlswarm.pricing import Prices, require_prices
from parlswarm.tools import Tool, ToolContext, ToolError, Toolset, tool
from parlswarm.trace.events import BudgetEvent, Event, RunFinished, RunStarted, SubagentCreated
from parlswarm.trace.metrics import summarize
from parlswarm.trace.recorder import Trace
from parlswarm.types import AgentResult, Budgets, Content, ImagePart, RunSummary, TextPart, content_text

if TYPE_CHECKING:
    from parlswarm.journal import Replay

Mode = Literal["swarm", "single"]
ORCHESTRATION_TOOLS = ("create_subagent", "assign_task", "spawn_swarm")


@dataclass
class SubagentDef:
    name: str
    system_prompt: str
    tools: list[str] | None


@dataclass
class SwarmState:
    """Per-run state of the orchestration tools."""

    swarm: Swarm
    definitions: dict[str, SubagentDef] = field(default_factory=dict)


def _context(ctx: ToolContext) -> tuple[RunContext, AgentRuntime, SwarmState]:
    if ctx is None or ctx.run is None:
        raise ToolError("orchestration tools only work inside a swarm run")
    run, rt = ctx.run
    state = run.state.get("swarm")
    if not isinstance(state, SwarmState):
        raise ToolError("orchestration tools only work inside a swarm run")
    return run, rt, state


def _subagent_message(result: AgentResult) -> str:
    if result.stop_reason == "error":
        return f"error: sub-agent '{result.name}' failed: {result.error}"
    return result.content


async def _launch(
    run: RunContext,
    rt: AgentRuntime,
    state: SwarmState,
    definition: SubagentDef,
    prompt: Content,
    step: int,
    call_id: str | None = None,
    key: str | None = None,
) -> AgentResult | str:
    """Start one sub-agent under the run's budgets; a str is a refusal for the orchestrator.

    ``key`` is the launching call's position in its turn (``"3"``, or ``"3.1"`` for the second
    member of a spawn_swarm): with the step it makes the agent id the same in every replay of
    the run, which is what lets a resumed run recognise the sub-agents that had finished.
    """
    refused = run.ledger.take_subagent()
    if refused is not None:
        budget, refusal = refused
        run.trace.emit(BudgetEvent(agent_id=rt.agent_id, budget=budget, action="refused", detail=refusal))
        return f"error: {refusal}"
    local_id = f"{definition.name}-{step}-{key}" if key is not None else f"{definition.name}-{uuid.uuid4().hex[:6]}"
    agent_id = local_id if rt.depth == 0 else f"{rt.agent_id}/{local_id}"
    if run.replay is not None:
        finished = run.replay.finished_subagent(agent_id, run.ledger)
        if finished is not None:  # it had finished before the run was interrupted: its result replays
            rt.note_child(step, finished.critical_steps)
            return finished
    swarm = state.swarm
    menu = swarm.toolset
    tools = menu.subset(definition.tools) if definition.tools is not None else menu
    if rt.depth + 1 < run.budgets.max_depth:
        tools = tools + ORCHESTRATION_TOOLSET
    allowance = rt.child_allowance()
    max_steps = run.budgets.max_subagent_steps
    agent = Agent(
        name=definition.name,
        model=swarm.subagent_model,
        system_prompt=definition.system_prompt,
        tools=tools,
        max_steps=max_steps,
    )
    async with run.ledger.concurrency:
        result = await run_agent(
            agent,
            prompt,
            run,
            agent_id=agent_id,
            parent_id=rt.agent_id,
            parent_step=step,
            parent_call_id=call_id,
            depth=rt.depth + 1,
            critical_allowance=allowance,
        )
    rt.note_child(step, result.critical_steps)
    return result


class ImageSource(Protocol):
    """Images of a run that can go to sub-agents by reference (``parlswarm.vision.images.ImageRegistry``)."""

    def part(self, ref: str) -> ImagePart: ...


def _task_content(run: RunContext, prompt: str, image: str | None) -> Content:
    """The sub-agent's first user message: the prompt, plus the referenced image if any."""
    if image is None:
        return prompt
    images = run.state.get("images")
    if images is None:
        raise ToolError(f"this run has no images, so image={image!r} names nothing; leave image out")
    try:
        part = images.part(image)  # type: ignore[attr-defined]
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    return [TextPart(text=prompt), part]


@tool
async def create_subagent(
    name: str, system_prompt: str, ctx: ToolContext, tools: list[str] | None = None
) -> str:
    """Create a custom sub-agent with a specific system prompt and name, for reuse with assign_task.

    Args:
        name: A short unique name for the sub-agent.
        system_prompt: The sub-agent's system prompt: its role and how it should work.
        tools: Names of the tools it may use (a subset of yours); all of them when omitted.
    """
    run, rt, state = _context(ctx)
    name = name.strip()
    if not name:
        raise ToolError("name must not be empty")
    if tools is not None:
        state.swarm.toolset.subset(tools)  # raises a clear error on unknown names
    if name not in state.definitions and len(state.definitions) >= run.budgets.max_subagents:
        raise ToolError(f"refused: at most {run.budgets.max_subagents} sub-agents can be defined in a run")
    replaced = name in state.definitions
    state.definitions[name] = SubagentDef(name=name, system_prompt=system_prompt, tools=tools)
    run.trace.emit(
        SubagentCreated(
            agent_id=rt.agent_id,
            step=ctx.step,
            name=name,
            system_prompt=system_prompt,
            tools=tools if tools is not None else state.swarm.toolset.names(),
        )
    )
    verb = "updated" if replaced else "created"
    return f"sub-agent '{name}' {verb}; assign it work with assign_task(agent='{name}', prompt=...)"


@tool
async def assign_task(agent: str, prompt: str, ctx: ToolContext, image: str | None = None) -> str:
    """Run a sub-agent on a task. When the agent is done, it returns a single message back to you.

    Several assign_task calls in the same turn run in parallel.

    Args:
        agent: The name of a sub-agent made with create_subagent.
        prompt: The complete, self-contained task for the sub-agent.
        image: Optional image the sub-agent sees with its task: the id of an image of this run, optionally cropped with a pixel box, e.g. 'input' or 'input[0,120,1024,480]' (x0,y0,x1,y1).
    """
    run, rt, state = _context(ctx)
    definition = state.definitions.get(agent)
    if definition is None:
        known = ", ".join(state.definitions) or "none yet"
        raise ToolError(f"no sub-agent named '{agent}' (defined: {known}); create it with create_subagent first")
    task = _task_content(run, prompt, image)
    outcome = await _launch(run, rt, state, definition, task, ctx.step, ctx.call_id, str(ctx.index))
    return outcome if isinstance(outcome, str) else _subagent_message(outcome)


class SwarmMember(BaseModel):
    role: str = Field(description="The sub-agent's name and role.")
    task: str = Field(description="Its complete, self-contained task.")
    tools: list[str] | None = Field(
        None,
        validation_alias=AliasChoices("tools", "tool_access"),
        description="Tools it may use; all of yours when omitted.",
    )
    system_prompt: str | None = Field(None, description="Its system prompt; a default one from its role when omitted.")
    image: str | None = Field(
        None, description="Optional image it sees with its task: an image id of this run, optionally ID[x0,y0,x1,y1]."
    )


@tool
async def spawn_swarm(agents: list[SwarmMember], ctx: ToolContext) -> str:
    """Create several sub-agents and run them all in parallel; returns each one's single message.

    Args:
        agents: One entry per sub-agent: role, task and optionally tools and system_prompt.
    """
    run, rt, state = _context(ctx)
    if not agents:
        raise ToolError("agents must list at least one sub-agent")
    definitions = []
    for member in agents:
        if member.tools is not None:
            state.swarm.toolset.subset(member.tools)
        system = member.system_prompt or prompts.load("subagent").format(role=member.role)
        definitions.append(SubagentDef(name=member.role, system_prompt=system, tools=member.tools))
    tasks = [_task_content(run, m.task, m.image) for m in agents]
    outcomes = await asyncio.gather(
        *(
            _launch(run, rt, state, d, t, ctx.step, ctx.call_id, f"{ctx.index}.{j}")
            for j, (d, t) in enumerate(zip(definitions, tasks))
        )
    )
    report = []
    for member, outcome in zip(agents, outcomes):
        if isinstance(outcome, str):
            report.append({"role": member.role, "complete": False, "result": outcome})
        else:
            report.append({"role": member.role, "complete": outcome.complete, "result": _subagent_message(outcome)})
    return json.dumps(report, ensure_ascii=False)


ORCHESTRATION_TOOLSET = Toolset([create_subagent, assign_task, spawn_swarm])


@dataclass
class RunResult:
    """The outcome of one swarm run."""

    answer: str
    complete: bool
    result: AgentResult
    summary: RunSummary
    trace: Trace

    @property
    def run_id(self) -> str:
        return self.trace.run_id


class Swarm:
    """An orchestrator model, optional frozen sub-agent model, a tool menu and budgets.

    ``mode="single"`` runs the same model with the same tools and no orchestration tools:
    the single-agent baseline.
    """

    def __init__(
        self,
        model: Model,
        *,
        subagent_model: Model | None = None,
        tools: Sequence[Tool] | Toolset = (),
        budgets: Budgets | None = None,
        mode: Mode = "swarm",
        system_prompt: str | None = None,
        name: str = "orchestrator",
        prices: Prices | None = None,
    ) -> None:
        if mode not in ("swarm", "single"):
            raise ValueError(f"mode must be 'swarm' or 'single', not {mode!r}")
        self.model = model
        self.subagent_model = subagent_model or model
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(tools)
        clash = set(self.toolset.names()) & set(ORCHESTRATION_TOOLS)
        if clash:
            raise ValueError(f"tool names reserved for the orchestrator: {', '.join(sorted(clash))}")
        self.budgets = budgets or Budgets()
        self.prices = prices
        require_prices(self.budgets, prices, dict.fromkeys([self.model.name, self.subagent_model.name]))
        self.mode: Mode = mode
        self.system_prompt = system_prompt if system_prompt is not None else prompts.load(
            "orchestrator" if mode == "swarm" else "single"
        )
        self.name = name

    def orchestrator(self) -> Agent:
        tools = self.toolset + ORCHESTRATION_TOOLSET if self.mode == "swarm" else self.toolset
        return Agent(
            name=self.name,
            model=self.model,
            system_prompt=self.system_prompt,
            tools=tools,
            max_steps=self.budgets.max_orchestrator_steps,
        )

    def new_run(self, trace: Trace | None = None, run_id: str | None = None) -> RunContext:
        run = RunContext.new(self.budgets, trace, run_id, self.prices)
        run.state["swarm"] = SwarmState(swarm=self)
        return run

    async def run(
        self,
        task: Content,
        *,
        trace: Trace | None = None,
        run_id: str | None = None,
        images: ImageSource | None = None,
        replay: Replay | None = None,
    ) -> RunResult:
        """Run the task to its answer (or until a budget ends it).

        ``images`` (an ``ImageRegistry``) names the images the orchestrator can hand to
        sub-agents with ``assign_task(..., image=ID)``. ``replay`` journals the run, or
        resumes it (:mod:`parlswarm.journal`).
        """
        run = self.new_run(trace, run_id)
        if replay is not None:
            replay.attach(run)
        if images is not None:
            run.state["images"] = images
        return await self._run(task, run)

    async def _run(self, task: Content, run: RunContext) -> RunResult:
        run.trace.emit(
            RunStarted(
                task=content_text(task),
                mode=self.mode,
                model=self.model.name,
                subagent_model=self.subagent_model.name,
                budgets=self.budgets.model_dump(),
                currency=self.prices.currency if self.prices else None,
            )
        )
        result = await run_agent(self.orchestrator(), task, run, agent_id="orchestrator")
        summary = summarize(run.trace.events)
        run.trace.emit(RunFinished(answer=result.content, complete=result.complete, summary=summary.model_dump()))
        summary = summarize(run.trace.events)
        return RunResult(answer=result.content, complete=result.complete, result=result, summary=summary, trace=run.trace)

    async def run_streamed(self, task: Content, *, run_id: str | None = None) -> AsyncIterator[Event]:
        """Yield the run's events as they happen; the last one is ``RunFinished``."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        trace = Trace(run_id or "")
        trace.subscribe(queue.put_nowait)
        job = asyncio.create_task(self.run(task, trace=trace, run_id=run_id))
        job.add_done_callback(lambda _: queue.put_nowait(None))
        try:
            while (event := await queue.get()) is not None:
                yield event
            job.result()  # surface an unexpected failure of the run itself
        finally:
            if not job.done():
                job.cancel()
                await asyncio.gather(job, return_exceptions=True)

    def run_sync(self, task: Content) -> RunResult:
        """Blocking form of :meth:`run` for scripts."""
        return asyncio.run(self.run(task))
