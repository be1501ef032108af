"""Live progress of runs, built from their events: a rich live table or plain lines.

:class:`LiveProgress` is a trace listener. Subscribe it to one or more runs' traces (or
feed it the events of :meth:`Swarm.run_streamed`) and it shows, per run, the running
sub-agents (name, task excerpt, step, tool calls, tokens, status) and the run's critical
steps against its total steps. On a terminal it draws a rich ``Live`` display; elsewhere
(a pipe, a CI log) it prints one plain line per notable event; ``quiet`` shows nothing.

    progress = LiveProgress(console)
    with progress:
        trace = Trace()
        progress.watch(trace)
        result = await swarm.run(task, trace=trace)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from parlswarm.trace.events import (
    AgentFinished,
    AgentStarted,
    BudgetEvent,
    Event,
    ModelCalled,
    ModelRetried,
    RunFinished,
    RunStarted,
    ToolFinished,
    ToolStarted,
)
from parlswarm.trace.metrics import TraceIndex
from parlswarm.trace.recorder import Trace

Mode = Literal["auto", "live", "plain", "quiet"]
STATUS_STYLE = {
    "thinking": "cyan",
    "tools": "blue",
    "waiting": "blue",
    "complete": "green",
    "partial": "yellow",
    "error": "red",
    "cancelled": "red",
}


def _excerpt(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _tokens(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


@dataclass
class AgentRow:
    """One agent as the progress view shows it."""

    agent_id: str
    name: str
    task: str
    parent_id: str | None
    depth: int
    started: float
    steps: int = 0
    tool_calls: int = 0
    tools_running: int = 0
    tokens: int = 0
    cost: float | None = None
    status: str = "thinking"  # thinking, tools, waiting, complete, partial, error, cancelled
    finished: float | None = None

    @property
    def done(self) -> bool:
        return self.finished is not None


@dataclass
class RunProgress:
    """The state of one run, updated event by event."""

    run_id: str
    task: str = ""
    started_wall: float = field(default_factory=time.monotonic)
    t: float = 0.0
    agents: dict[str, AgentRow] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    tool_calls: int = 0
    tokens: int = 0
    cost: float | None = None
    warnings: list[str] = field(default_factory=list)
    retries: int = 0  # model calls retried after a passing failure (429, 5xx, timeout)
    finished: bool = False
    complete: bool | None = None
    _critical: tuple[int, int] | None = None  # (critical steps, steps), cached until the next step

    def update(self, event: Event) -> None:
        self.events.append(event)
        self.t = max(self.t, event.t)
        if isinstance(event, RunStarted):
            self.task = event.task
        elif isinstance(event, AgentStarted):
            self.agents[event.agent_id] = AgentRow(
                agent_id=event.agent_id,
                name=event.name,
                task=event.task,
                parent_id=event.parent_id,
                depth=event.depth,
                started=event.t,
            )
            if not self.task and event.parent_id is None:
                self.task = event.task
        elif isinstance(event, ModelCalled):
            self._critical = None
            self.tokens += event.usage.total_tokens
            if event.cost is not None:
                self.cost = (self.cost or 0.0) + event.cost
            row = self.agents.get(event.agent_id)
            if row is not None:
                row.steps = event.step + 1
                row.tokens += event.usage.total_tokens
                if event.cost is not None:
                    row.cost = (row.cost or 0.0) + event.cost
                row.status = "tools" if event.tool_calls else row.status
        elif isinstance(event, ToolStarted):
            self.tool_calls += 1
            row = self.agents.get(event.agent_id)
            if row is not None:
                row.tool_calls += 1
                row.tools_running += 1
                row.status = "waiting" if event.tool in ("assign_task", "spawn_swarm") else "tools"
        elif isinstance(event, ToolFinished):
            row = self.agents.get(event.agent_id)
            if row is not None:
                row.tools_running = max(0, row.tools_running - 1)
                if row.tools_running == 0:
                    row.status = "thinking"
        elif isinstance(event, AgentFinished):
            row = self.agents.get(event.agent_id)
            if row is not None:
                row.finished = event.t
                row.steps = event.steps
                row.tool_calls = event.tool_calls
                if event.complete:
                    row.status = "complete"
                elif event.stop_reason in ("error", "cancelled"):
                    row.status = event.stop_reason
                else:
                    row.status = "partial"
        elif isinstance(event, BudgetEvent):
            self.warnings.append(f"{event.budget} {event.action}: {event.detail}")
        elif isinstance(event, RunFinished):
            self.finished = True
            self.complete = event.complete
        elif isinstance(event, ModelRetried):
            self.retries += 1

    def critical(self) -> tuple[int, int]:
        """(critical steps so far, steps so far)."""
        if self._critical is None:
            index = TraceIndex(self.events)
            root = index.roots[0] if index.roots else None
            crit = index.critical_steps(root) if root is not None else 0
            self._critical = (crit, sum(index.steps.values()))
        return self._critical

    @property
    def subagents(self) -> list[AgentRow]:
        return [row for row in self.agents.values() if row.parent_id is not None]


class LiveProgress:
    """A trace listener that shows the progress of runs on a console."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        mode: Mode = "auto",
        refresh_per_second: float = 4,
        max_rows: int | None = None,
        task_width: int = 48,
    ) -> None:
        if mode not in ("auto", "live", "plain", "quiet"):
            raise ValueError(f"progress mode must be auto, live, plain or quiet, not {mode!r}")
        self.console = console or Console(stderr=True)
        if mode == "auto":
            terminal = self.console.is_terminal and not self.console.is_dumb_terminal
            mode = "live" if terminal else "plain"
        self.mode: Mode = mode
        self.refresh_per_second = refresh_per_second
        self.max_rows = max_rows
        self.task_width = task_width
        self.runs: dict[str, RunProgress] = {}
        self._lock = threading.Lock()  # rich refreshes from its own thread
        self._live: Live | None = None

    # -- listening ---------------------------------------------------------------------
    def __call__(self, event: Event) -> None:
        if self.mode == "quiet":
            return
        with self._lock:
            run = self.runs.get(event.run_id)
            if run is None:
                run = self.runs[event.run_id] = RunProgress(run_id=event.run_id)
            run.update(event)
        if self.mode == "plain":
            line = self._plain_line(run, event)
            if line is not None:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def watch(self, trace: Trace) -> Callable[[], None]:
        """Follow ``trace``'s later events; returns a function that stops following."""
        return trace.subscribe(self)

    # -- the live display ----------------------------------------------------------------
    def start(self) -> None:
        if self.mode == "live" and self._live is None:
            self._live = Live(
                self,
                console=self.console,
                refresh_per_second=self.refresh_per_second,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __enter__(self) -> LiveProgress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __rich__(self) -> RenderableType:
        with self._lock:
            return Group(*(self._render_run(run) for run in self.runs.values()))

    def _rows_allowed(self, runs: int) -> int:
        if self.max_rows is not None:
            return self.max_rows
        height = self.console.size.height
        return max(3, (height - 2) // max(1, runs) - 5)

    def _render_run(self, run: RunProgress) -> RenderableType:
        crit, steps = run.critical()
        subs = run.subagents
        running = [r for r in subs if not r.done]
        done = [r for r in subs if r.done]
        head = Text()
        head.append(f"run {run.run_id} ", style="bold")
        head.append(_excerpt(run.task, 60), style="dim")
        stats = Text()
        stats.append(f"critical steps {crit}", style="bold magenta")
        stats.append(f" / steps {steps}")
        stats.append(f" · sub-agents {len(running)} running, {len(done)} done")
        stats.append(f" · tool calls {run.tool_calls} · tokens {_tokens(run.tokens)}")
        if run.retries:
            stats.append(f" · retries {run.retries}", style="yellow")
        if run.cost is not None:
            stats.append(f" · cost {run.cost:.4f}")
        stats.append(f" · {run.t:.1f}s")
        if run.finished:
            done_text, done_style = (" · finished", "green") if run.complete else (" · finished (incomplete)", "yellow")
            stats.append(done_text, style=done_style)
        parts: list[RenderableType] = [head, stats]
        if run.finished:
            return Group(*parts)

        table = Table(box=None, pad_edge=False, show_edge=False, header_style="dim", expand=False)
        table.add_column("agent", no_wrap=True, max_width=28)
        table.add_column("task", no_wrap=True, max_width=self.task_width)
        table.add_column("step", justify="right")
        table.add_column("tools", justify="right")
        table.add_column("tokens", justify="right")
        table.add_column("status", no_wrap=True)
        limit = self._rows_allowed(len(self.runs))
        # The orchestrator first, then running sub-agents (longest running first), then the latest finished.
        roots = [r for r in run.agents.values() if r.parent_id is None]
        ordered = roots + sorted(running, key=lambda r: r.started) + sorted(done, key=lambda r: -(r.finished or 0))
        for row in ordered[:limit]:
            style = STATUS_STYLE.get(row.status, "")
            table.add_row(
                Text("  " * row.depth + row.name, style="bold" if row.parent_id is None else ""),
                Text(_excerpt(row.task, self.task_width), style="dim"),
                str(row.steps),
                str(row.tool_calls),
                _tokens(row.tokens),
                Text(row.status, style=style),
            )
        if len(ordered) > limit:
            table.add_row(Text(f"… {len(ordered) - limit} more", style="dim"), "", "", "", "", "")
        parts.append(table)
        if run.warnings:
            parts.append(Text("budget: " + run.warnings[-1], style="yellow"))
        return Group(*parts)

    # -- plain lines ---------------------------------------------------------------------
    def _plain_line(self, run: RunProgress, event: Event) -> str | None:
        stamp = f"[{event.t:7.2f}s]"
        if isinstance(event, RunStarted):
            return f"{stamp} run {event.run_id} started: mode {event.mode}, model {event.model}"
        if isinstance(event, AgentStarted) and event.parent_id is not None:
            return f"{stamp} + {event.name} ({event.agent_id}) started: {_excerpt(event.task, self.task_width)}"
        if isinstance(event, ModelCalled):
            row = run.agents.get(event.agent_id)
            if row is not None and row.parent_id is None:
                crit, steps = run.critical()
                return (
                    f"{stamp} {row.name} step {event.step + 1}: {_n(event.tool_calls, 'tool call')} · "
                    f"critical steps {crit} / steps {steps}"
                )
            return None
        if isinstance(event, AgentFinished):
            row = run.agents.get(event.agent_id)
            if row is None or row.parent_id is None:
                return None
            mark = {"complete": "✓", "partial": "…"}.get(row.status, "✗")
            seconds = (row.finished or event.t) - row.started
            return (
                f"{stamp} {mark} {row.name} ({row.agent_id}) {row.status}: {_n(event.steps, 'step')}, "
                f"{_n(event.tool_calls, 'tool call')}, {_tokens(event.usage.total_tokens)} tokens, {seconds:.2f}s"
            )
        if isinstance(event, BudgetEvent):
            return f"{stamp} ! budget {event.budget} {event.action}: {event.detail}"
        if isinstance(event, RunFinished):
            crit, steps = run.critical()
            status = "complete" if event.complete else "incomplete"
            return f"{stamp} run {event.run_id} finished ({status}): critical steps {crit} / steps {steps}"
        return None


__all__ = ["AgentRow", "LiveProgress", "RunProgress"]
