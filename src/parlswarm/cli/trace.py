"""``parlswarm trace``: read saved run traces (JSONL): HTML report, cost summary, OpenTelemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from parlswarm.cli import app
from parlswarm.cli.common import UserError, console, console_err, user_errors
from parlswarm.pricing import Prices
from parlswarm.trace.recorder import Trace
from parlswarm.trace.report import build_report, save_html

trace_app = typer.Typer(
    name="trace",
    help="Read saved run traces (written by `parlswarm run --trace FILE`).",
    no_args_is_help=True,
)
app.add_typer(trace_app, name="trace")

PricesOption = Annotated[
    str | None,
    typer.Option(help="Prices per million tokens: a YAML/JSON file or 'MODEL=IN/OUT;MODEL=IN/CACHED/OUT'."),
]


def _load(trace_file: Path) -> Trace:
    if not trace_file.is_file():
        raise FileNotFoundError(f"trace file not found: {trace_file}")
    trace = Trace.load_jsonl(trace_file)
    if not trace.events:
        raise ValueError(f"{trace_file}: the trace holds no events")
    return trace


@trace_app.command("report")
def report(
    trace_file: Annotated[Path, typer.Argument(help="A trace written by `parlswarm run --trace`.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file; TRACE.html by default.")] = None,
    prices: PricesOption = None,
    title: Annotated[str | None, typer.Option(help="The report's title.")] = None,
) -> None:
    """Write one self-contained HTML report: timeline, critical path, costs, assignments."""
    with user_errors():
        trace = _load(trace_file)
        data = build_report(trace.events, Prices.from_option(prices) if prices else None, title)
        output = save_html(data, output or trace_file.with_suffix(".html"))
    console.print(str(output), highlight=False, markup=False)
    console_err.print(f"[dim]{data.headline}[/dim]", highlight=False)


@trace_app.command("summary")
def summary(
    trace_file: Annotated[Path, typer.Argument(help="A trace written by `parlswarm run --trace`.")],
    prices: PricesOption = None,
) -> None:
    """Print figures per agent (steps, tool calls, tokens, cost) and for the run."""
    with user_errors():
        price_table = Prices.from_option(prices) if prices else None
        data = build_report(_load(trace_file).events, price_table)
    has_cost = any(lane.cost is not None for lane in data.lanes)
    table = Table(title=data.title, title_justify="left")
    for name in ("agent", "status", "steps", "critical", "tool calls", "input", "cached", "output"):
        table.add_column(name, justify="left" if name in ("agent", "status") else "right")
    if has_cost:
        table.add_column("cost", justify="right")
    table.add_column("seconds", justify="right")
    for lane in data.lanes:
        u = lane.usage
        row = ["  " * lane.depth + lane.name + (" (slowest)" if lane.slowest else ""), lane.status, str(lane.steps),
               str(lane.critical_steps), str(lane.tool_calls), f"{u.prompt_tokens:,}", f"{u.cached_tokens:,}",
               f"{u.completion_tokens:,}"]
        if has_cost:
            row.append("—" if lane.cost is None else f"{lane.cost:.4f}")
        row.append(f"{lane.t1 - lane.t0:.2f}")
        table.add_row(*row)
    # Piped output gets a wide table rather than one squeezed into 80 columns.
    (console if console.is_terminal else Console(width=160)).print(table)
    console.print(data.summary.line(), highlight=False, markup=False)
    console_err.print(f"[dim]{data.headline}[/dim]", highlight=False)


@trace_app.command("otel")
def otel(
    trace_file: Annotated[Path, typer.Argument(help="A trace written by `parlswarm run --trace`.")],
) -> None:
    """Send a saved trace's spans over OTLP (endpoint from OTEL_EXPORTER_OTLP_ENDPOINT)."""
    with user_errors():
        trace = _load(trace_file)
        try:
            from parlswarm.trace.otel import export_events, otlp_tracer_provider
        except ImportError as exc:
            raise UserError(str(exc)) from None
        provider = otlp_tracer_provider()
        try:
            export_events(trace.events, provider)
        finally:
            provider.shutdown()
    console_err.print(f"[dim]exported {len(trace.events)} events of run {trace.run_id}[/dim]", highlight=False)
