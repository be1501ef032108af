"""The run report: one self-contained HTML file built from a trace.

:func:`build_report` turns events into :class:`ReportData` (lanes, bars on a wall-clock and
on a critical-step axis, the critical path, per-agent figures, costs); :func:`render_html`
puts that data into ``report_template.html``, which draws it with inline JS and SVG. The
file loads nothing from anywhere: no CDN, no fonts, no network.

The step axis lays each agent's model turns one unit apart and starts the sub-agents an
agent launched during step ``t`` right after that turn, so an agent's next step begins
after its slowest sub-agent: the axis length is the run's critical steps, and the
highlighted path is :meth:`TraceIndex.critical_path`.
"""

from __future__ import annotations

import html
import statistics
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, Field

from parlswarm.files import write_whole
from parlswarm.pricing import Prices
from parlswarm.trace.events import (
    AgentFinished,
    AgentStarted,
    BudgetEvent,
    Event,
    ModelCalled,
    RunFinished,
    RunStarted,
    ToolFinished,
    ToolStarted,
)
from parlswarm.trace.metrics import TraceIndex, summarize
from parlswarm.types import RunSummary, Usage

TEMPLATE = "report_template.html"
EXCERPT = 160


def _excerpt(text: str, n: int = EXCERPT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


class ToolBar(BaseModel):
    tool: str
    call_id: str
    t0: float
    t1: float | None  # None: never finished
    ok: bool | None
    arguments: str = ""
    result: str = ""
    children: list[str] = Field(default_factory=list)  # agents this call launched


class StepBar(BaseModel):
    step: int
    t0: float  # wall-clock seconds since the run started
    t1: float
    s0: int  # position on the critical-step axis
    wait: int = 0  # critical steps spent waiting for sub-agents launched in this step
    critical: bool = False
    model: str = ""
    tokens: int = 0
    cost: float | None = None
    content: str = ""
    tools: list[ToolBar] = Field(default_factory=list)


class BudgetMark(BaseModel):
    t: float
    budget: str
    action: str
    detail: str


class Lane(BaseModel):
    """One agent: its place in the tree, its bars and its figures."""

    agent_id: str
    name: str
    parent_id: str | None
    depth: int
    model: str
    task: str  # the assignment it was given
    label: str = ""  # what tells it apart from its siblings: the task less their shared text
    result: str  # the single message it returned
    status: str  # complete, partial, error, cancelled, running
    stop_reason: str | None
    error: str | None = None
    t0: float
    t1: float
    s0: int
    s1: int
    steps: int
    critical_steps: int
    tool_calls: int
    usage: Usage
    cost: float | None = None
    subtree_usage: Usage  # this agent and everything it launched
    subtree_cost: float | None = None
    on_critical_path: bool = False
    slowest: bool = False
    step_bars: list[StepBar] = Field(default_factory=list)
    budget_marks: list[BudgetMark] = Field(default_factory=list)


class ReportData(BaseModel):
    """Everything the HTML report shows; also useful on its own (``model_dump_json``)."""

    title: str
    run_id: str
    task: str
    answer: str
    complete: bool | None
    mode: str
    model: str
    subagent_model: str
    started_at: float | None
    currency: str | None
    summary: RunSummary
    lanes: list[Lane]
    critical_path: list[tuple[str, int]]
    slowest: str | None  # agent_id of the slowest sub-agent
    headline: str
    explanation: list[str]
    budget_events: list[BudgetMark]

    @property
    def critical_bars(self) -> int:
        return sum(1 for lane in self.lanes for bar in lane.step_bars if bar.critical)


def _distinct_labels(tasks: Sequence[str], visible: int = 32) -> list[str]:
    """Short labels for sibling tasks: whole tasks when their starts differ, else what differs.

    Orchestrators often give sub-agents one template with a different item in it; the
    template's shared text is cut so that the item shows in a narrow lane label. With tasks
    of as many lines, the label comes from the line that differs most between them.
    """
    flat = [" ".join(t.split()) for t in tasks]
    if len(flat) < 2 or len(set(flat)) == 1 or len({f[:visible] for f in flat}) == len(flat):
        return flat
    lines = [[line.strip() for line in t.splitlines() if line.strip()] for t in tasks]
    if len({len(ls) for ls in lines}) == 1:
        scored: list[tuple[float, list[str]]] = []
        for i in range(len(lines[0])):
            column = [" ".join(ls[i].split()) for ls in lines]
            if len(set(column)) > 1:
                middles = _middles(column)
                share = sum(len(m) / max(1, len(c)) for m, c in zip(middles, column)) / len(column)
                scored.append((share, middles))
        if scored:
            best = max(share for share, _ in scored)
            chosen = [middles for share, middles in scored if share >= 0.8 * best]  # in task order
            return ["…" + " · ".join(parts) for parts in zip(*chosen)]
    return [m if m == f else "…" + m for m, f in zip(_middles(flat), flat)]


def _middles(texts: Sequence[str]) -> list[str]:
    """Each text less the start and end that all of them share, cut at word boundaries."""
    head = len(_common_prefix(texts))
    tail = len(_common_prefix([t[::-1] for t in texts]))
    middles = []
    for t in texts:
        start = t.rfind(" ", 0, head + 1) + 1
        end = t.find(" ", max(start, len(t) - tail))
        end = len(t) if end == -1 else end
        middle = t[start:end].strip(" -*•:;,")
        middles.append(middle or t)
    return middles


def _common_prefix(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _status(finished: AgentFinished | None) -> str:
    if finished is None:
        return "running"
    if finished.complete:
        return "complete"
    if finished.stop_reason in ("error", "cancelled"):
        return finished.stop_reason
    return "partial"


def _add_cost(a: float | None, b: float | None) -> float | None:
    return a if b is None else (b if a is None else a + b)


def _fmt_seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def build_report(events: Sequence[Event], prices: Prices | None = None, title: str | None = None) -> ReportData:
    """Lay out the run of ``events``; ``prices`` (re)computes costs from token usage."""
    index = TraceIndex(events)
    summary = summarize(events)
    started = next((e for e in events if isinstance(e, RunStarted)), None)
    finished_run = next((e for e in events if isinstance(e, RunFinished)), None)
    t_end = events[-1].t if events else 0.0

    finished: dict[str, AgentFinished] = {}
    calls: dict[str, list[ModelCalled]] = {a: [] for a in index.agents}
    tools: dict[tuple[str, str], ToolBar] = {}
    tools_by_step: dict[tuple[str, int], list[ToolBar]] = {}
    marks: list[tuple[str, BudgetMark]] = []
    for e in events:
        if isinstance(e, AgentFinished):
            finished[e.agent_id] = e
        elif isinstance(e, ModelCalled):
            calls.setdefault(e.agent_id, []).append(e)
        elif isinstance(e, ToolStarted):
            bar = ToolBar(tool=e.tool, call_id=e.call_id, t0=e.t, t1=None, ok=None, arguments=_excerpt(e.arguments))
            tools[(e.agent_id, e.call_id)] = bar
            tools_by_step.setdefault((e.agent_id, e.step), []).append(bar)
        elif isinstance(e, ToolFinished):
            found = tools.get((e.agent_id, e.call_id))
            if found is not None:
                found.t1, found.ok, found.result = e.t, e.ok, _excerpt(e.result)
        elif isinstance(e, BudgetEvent):
            marks.append((e.agent_id, BudgetMark(t=e.t, budget=e.budget, action=e.action, detail=e.detail)))
    for agent_id, start in index.agents.items():
        if start.parent_id is not None and start.parent_call_id is not None:
            parent_call = tools.get((start.parent_id, start.parent_call_id))
            if parent_call is not None:
                parent_call.children.append(agent_id)

    critical = index.critical_path(index.roots[0]) if index.roots else []
    critical_set = set(critical)
    memo: dict[str, int] = {}

    def crit(agent_id: str) -> int:
        if agent_id not in memo:
            memo[agent_id] = index.critical_steps(agent_id)
        return memo[agent_id]

    # Critical-step axis: depth-first, children start right after the turn that launched them.
    s_start: dict[str, int] = {}
    s_steps: dict[tuple[str, int], tuple[int, int]] = {}
    order: list[str] = []

    def place(agent_id: str, s0: int) -> int:
        order.append(agent_id)
        s_start[agent_id] = s0
        pos = s0
        for t in range(index.steps[agent_id]):
            kids = sorted(index.children.get((agent_id, t), []), key=lambda k: index.agents[k].t)
            wait = max((crit(k) for k in kids), default=0)
            s_steps[(agent_id, t)] = (pos, wait)
            for k in kids:
                place(k, pos + 1)
            pos += 1 + wait
        return pos

    for root in index.roots:
        place(root, 0)
    for agent_id in sorted(index.agents, key=lambda a: index.agents[a].t):
        if agent_id not in s_start:  # a sub-agent whose launching step left no trace
            place(agent_id, 0)

    def price_of(call: ModelCalled, start: AgentStarted) -> float | None:
        if prices is not None:
            return prices.cost(call.usage, start.model, call.model)
        return call.cost

    lanes: dict[str, Lane] = {}
    for agent_id in order:
        start = index.agents[agent_id]
        done = finished.get(agent_id)
        bars: list[StepBar] = []
        usage, cost = Usage(), None
        for call in sorted(calls.get(agent_id, []), key=lambda c: c.step):
            pos, wait = s_steps.get((agent_id, call.step), (s_start[agent_id], 0))
            call_cost = price_of(call, start)
            usage = usage + call.usage
            cost = _add_cost(cost, call_cost)
            bars.append(
                StepBar(
                    step=call.step,
                    t0=max(start.t, call.t - call.seconds),
                    t1=call.t,
                    s0=pos,
                    wait=wait,
                    critical=(agent_id, call.step) in critical_set,
                    model=call.model,
                    tokens=call.usage.total_tokens,
                    cost=call_cost,
                    content=_excerpt(call.content),
                    tools=tools_by_step.get((agent_id, call.step), []),
                )
            )
        lanes[agent_id] = Lane(
            agent_id=agent_id,
            name=start.name,
            parent_id=start.parent_id,
            depth=start.depth,
            model=start.model,
            task=start.task,
            result=done.content if done else "",
            status=_status(done),
            stop_reason=done.stop_reason if done else None,
            error=done.error if done else None,
            t0=start.t,
            t1=done.t if done else t_end,
            s0=s_start[agent_id],
            s1=s_start[agent_id] + crit(agent_id),
            steps=index.steps[agent_id],
            critical_steps=crit(agent_id),
            tool_calls=done.tool_calls if done else sum(len(b.tools) for b in bars),
            usage=usage,
            cost=cost,
            subtree_usage=usage,
            subtree_cost=cost,
            on_critical_path=any(a == agent_id for a, _ in critical),
            step_bars=bars,
            budget_marks=[m for a, m in marks if a == agent_id],
        )
    for agent_id in reversed(order):  # children were placed after their parents
        lane = lanes[agent_id]
        if lane.parent_id in lanes:
            parent = lanes[lane.parent_id]  # type: ignore[index]
            parent.subtree_usage = parent.subtree_usage + lane.subtree_usage
            parent.subtree_cost = _add_cost(parent.subtree_cost, lane.subtree_cost)

    for kids in index.children.values():
        siblings = [lanes[k] for k in kids if k in lanes]
        for lane, label in zip(siblings, _distinct_labels([lane.task for lane in siblings])):
            lane.label = label
    subs = [lane for lane in lanes.values() if lane.parent_id is not None]
    slowest = max(subs, key=lambda lane: (lane.critical_steps, lane.on_critical_path, lane.t1 - lane.t0), default=None)
    if slowest is not None:
        slowest.slowest = True
    headline, explanation = _explain(index, lanes, critical, summary, slowest)

    total_cost = None
    for lane in lanes.values():
        total_cost = _add_cost(total_cost, lane.cost)
    summary = summary.model_copy(update={"cost": total_cost})
    root_lane = lanes.get(index.roots[0]) if index.roots else None
    task = started.task if started else (root_lane.task if root_lane else "")
    return ReportData(
        title=title or f"parlswarm run {events[0].run_id if events else ''}".strip(),
        run_id=events[0].run_id if events else "",
        task=task,
        answer=finished_run.answer if finished_run else (root_lane.result if root_lane else ""),
        complete=finished_run.complete if finished_run else None,
        mode=started.mode if started else "",
        model=started.model if started else (root_lane.model if root_lane else ""),
        subagent_model=started.subagent_model if started else "",
        started_at=started.started_at if started else None,
        currency=prices.currency if prices is not None else (started.currency if started else None),
        summary=summary,
        lanes=list(lanes.values()),
        critical_path=critical,
        slowest=slowest.agent_id if slowest else None,
        headline=headline,
        explanation=explanation,
        budget_events=[m for _, m in marks],
    )


def _explain(
    index: TraceIndex,
    lanes: dict[str, Lane],
    critical: list[tuple[str, int]],
    summary: RunSummary,
    slowest: Lane | None,
) -> tuple[str, list[str]]:
    """A headline and one sentence per launching step on the critical path: why it is as long as it is."""
    if not index.roots:
        return "Empty trace.", []
    root = index.roots[0]
    ratio = summary.steps / summary.critical_steps if summary.critical_steps else 0.0
    headline = (
        f"Critical path: {summary.critical_steps} critical steps for {summary.steps} steps in all "
        f"({ratio:.1f}× fewer than running every step one after another)."
    )
    lines: list[str] = []
    for i, (agent_id, t) in enumerate(critical):
        kids = index.children.get((agent_id, t), [])
        if not kids or i + 1 >= len(critical):
            continue
        owner = lanes[agent_id]
        kid_lanes = [lanes[k] for k in kids if k in lanes]
        if critical[i + 1][0] not in kids:  # none of them made a step: nothing was waited for
            continue
        worst = lanes[critical[i + 1][0]]  # the path goes on through the sub-agent it waited for
        median = statistics.median(lane.critical_steps for lane in kid_lanes)
        by_time = max(kid_lanes, key=lambda lane: lane.t1 - lane.t0)
        text = (
            f"{owner.name} step {t + 1} launched {len(kid_lanes)} sub-agent"
            f"{'s' if len(kid_lanes) != 1 else ''} and waited {worst.critical_steps} critical steps for "
            f"the slowest, {worst.name} ({_excerpt(worst.label or worst.task, 60)!r}): {worst.steps} steps, "
            f"{worst.tool_calls} tool calls, {_fmt_seconds(worst.t1 - worst.t0)}"
        )
        if len(kid_lanes) > 1:
            text += f"; the median sub-agent took {median:g} critical steps"
        if by_time.agent_id != worst.agent_id:
            text += f". By wall-clock the slowest was {by_time.name} ({_fmt_seconds(by_time.t1 - by_time.t0)})"
        lines.append(text + ".")
    own = sum(1 for a, _ in critical if a == root)
    if not lines:
        lines.append(f"{lanes[root].name} launched no sub-agents: all {own} of its steps are on the critical path.")
    else:
        lines.append(f"{lanes[root].name}'s own {own} steps make up the rest of the critical path.")
    if slowest is not None:
        headline += (
            f" Slowest sub-agent: {slowest.name} — {slowest.critical_steps} critical steps, "
            f"{_fmt_seconds(slowest.t1 - slowest.t0)}."
        )
    return headline, lines


def _json_for_script(data: ReportData) -> str:
    # Inside <script> nothing may close the tag or open a comment: escape <, > and &.
    text = data.model_dump_json()
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_html(data: ReportData) -> str:
    """The report as one HTML document with everything inline."""
    template = resources.files("parlswarm.trace").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return template.replace("__PARLSWARM_TITLE__", html.escape(data.title)).replace(
        "__PARLSWARM_REPORT_DATA__", _json_for_script(data)
    )


def save_html(data: ReportData, path: str | Path) -> Path:
    """Write the report of ``data`` to ``path``; returns the path written."""
    return write_whole(path, render_html(data))  # never a half-written report


def write_report(
    events: Sequence[Event], path: str | Path, prices: Prices | None = None, title: str | None = None
) -> Path:
    """Build and write the report of ``events``; returns the path written."""
    return save_html(build_report(events, prices, title), path)


__all__ = ["Lane", "ReportData", "StepBar", "ToolBar", "build_report", "render_html", "save_html", "write_report"]
