"""``parlswarm runs`` and ``parlswarm resume``: the journaled runs, and continuing one.

Also the part of ``parlswarm run`` that journals a run and ends it cleanly on Ctrl-C
(:func:`open_journal`, :func:`execute`), shared by both commands.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from parlswarm.cli import app
from parlswarm.cli.common import UserError, console, console_err, user_errors
from parlswarm.journal import Journal, Replay, RunConfig, list_runs, run_info, runs_dir
from parlswarm.live import LiveProgress
from parlswarm.models import ModelOptions, load_model
from parlswarm.pricing import Prices
from parlswarm.security import install_redaction, redact
from parlswarm.swarm import RunResult, Swarm
from parlswarm.toolsets import load_toolsets
from parlswarm.trace.metrics import summarize
from parlswarm.trace.recorder import Trace
from parlswarm.trace.report import write_report
from parlswarm.world.tools import offer_check

RUNS_DIR_HELP = "Folder of run journals (default: $PARLSWARM_RUNS, else ./runs)."


def open_journal(config: RunConfig, folder: Path | None, enabled: bool) -> tuple[Trace, Replay | None, Journal | None]:
    """The trace (and replay and journal, when journaling) of a new run."""
    if not enabled:
        trace = Trace()
        install_redaction(trace)  # before the live view and exporters subscribe
        return trace, None, None
    journal = Journal.create(config, folder)
    trace, replay = journal.start()
    return trace, replay, journal


def _resume_hint(journal: Journal, folder: Path | None) -> str:
    where = f" --runs-dir {folder}" if folder is not None else ""
    return f"parlswarm resume {journal.run_id}{where}"


def save_outputs(result: RunResult, trace: Path | None, report: Path | None, prices: Prices | None) -> None:
    """Write the run's trace and HTML report where asked."""
    if trace is not None:
        result.trace.save_jsonl(trace)
    if report is not None:
        write_report(result.trace.events, report, prices)


def print_outcome(result: RunResult, journal: Journal | None, folder: Path | None) -> None:
    """The answer on stdout and the summary line on stderr; a failed run exits 1 with how to resume."""
    if result.result.stop_reason == "error":
        console_err.print(f"[red]error:[/red] {result.result.error}", highlight=False)
        if journal is not None:
            console_err.print(f"resume with: {_resume_hint(journal, folder)}", highlight=False)
        raise typer.Exit(1)
    console.print(redact(result.answer), highlight=False, markup=False)
    status = "" if result.complete else " · INCOMPLETE"
    console_err.print(f"[dim]{result.summary.line()}{status}[/dim]", highlight=False)


def execute(
    swarm: Swarm,
    task: str,
    trace: Trace,
    replay: Replay | None,
    journal: Journal | None,
    folder: Path | None = None,
) -> RunResult:
    """Run to the end and close the journal with the run's status.

    Ctrl-C cancels every agent (their partial findings are journaled), prints the summary so
    far and how to resume, and exits with 130.
    """
    run_id = journal.run_id if journal is not None else None
    stats = lambda: dict(replay.stats) if replay is not None else {}  # noqa: E731
    try:
        result = asyncio.run(swarm.run(task, trace=trace, run_id=run_id, replay=replay))
    except KeyboardInterrupt:
        if journal is not None:
            journal.close("interrupted", stats())
        console_err.print(f"interrupted · {summarize(trace.events).line()}", highlight=False)
        if journal is not None:
            console_err.print(f"resume with: {_resume_hint(journal, folder)}", highlight=False)
        raise typer.Exit(130) from None
    except BaseException:
        if journal is not None:
            journal.close("failed", stats())
        raise
    if journal is not None:
        journal.close("failed" if result.result.stop_reason == "error" else "finished", stats())
        if journal.failed:
            console_err.print(f"[yellow]warning:[/yellow] the journal stopped ({journal.failed}); "
                              "this run cannot be resumed past that point", highlight=False)
    return result


def build_swarm(config: RunConfig, base_url: str | None = None) -> tuple[Swarm, Prices | None]:
    """The swarm a journaled run was started with."""
    options = ModelOptions(
        base_url=base_url or config.base_url,
        thinking=config.thinking,
        max_retries=config.retries,
        timeout=config.call_timeout,
    )
    orchestrator = load_model(config.model, options)
    sub = load_model(config.subagent_model, options) if config.subagent_model else orchestrator
    prices = config.options.get("prices")
    price_table = Prices.from_option(prices) if prices else None
    swarm = Swarm(
        orchestrator,
        subagent_model=sub,
        tools=offer_check(load_toolsets(config.tools), orchestrator, sub),  # a model trained with check gets it
        budgets=config.budgets,
        mode=config.mode,
        prices=price_table,
    )
    return swarm, price_table


@app.command("runs")
def runs_command(
    runs_dir_: Annotated[Path | None, typer.Option("--runs-dir", help=RUNS_DIR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """List journaled runs: status (running, finished, failed, interrupted), task, steps, sub-agents."""
    with user_errors():
        infos = list_runs(runs_dir_)
    if as_json:
        for info in infos:
            console.print(info.model_dump_json(), highlight=False, markup=False, soft_wrap=True)
        return
    if not infos:
        console_err.print(f"no runs in {runs_dir(runs_dir_)}", highlight=False)
        return
    table = Table(box=None, pad_edge=False)
    for column in ("run", "status", "started", "steps", "sub-agents", "sessions", "task"):
        table.add_column(column, no_wrap=column != "task", justify="right" if column in ("steps", "sub-agents", "sessions") else "left")
    colours = {"finished": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}
    for info in infos:
        started = datetime.datetime.fromtimestamp(info.created).strftime("%Y-%m-%d %H:%M:%S")
        task = info.task if len(info.task) <= 60 else info.task[:59] + "…"
        status = f"[{colours[info.status]}]{info.status}[/{colours[info.status]}]"
        table.add_row(info.run_id, status, started, str(info.steps), str(info.subagents), str(info.sessions), task)
    console.print(table)


@app.command()
def resume(
    run_id: Annotated[str, typer.Argument(help="The run to continue (see `parlswarm runs`).")],
    runs_dir_: Annotated[Path | None, typer.Option("--runs-dir", help=RUNS_DIR_HELP)] = None,
    base_url: Annotated[str | None, typer.Option(help="Use this endpoint instead of the one the run was started with.")] = None,
    trace: Annotated[Path | None, typer.Option(help="Write the whole run's trace as JSONL here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the whole run's HTML report here.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Continue an interrupted (or failed) run where it stopped.

    Sub-agents that had finished are not run again and completed tool calls are not repeated:
    their results come from the run's journal.
    """
    with user_errors():
        info = run_info(run_id, runs_dir_)
        if info.status == "finished":
            console_err.print(f"run {run_id} has finished already; its answer:", highlight=False)
            console.print(info.answer or "", highlight=False, markup=False)
            return
        journal = Journal.open(run_id, runs_dir_)
        try:
            config = journal.config()
            swarm, price_table = build_swarm(config, base_url)
            recorder, replay = journal.start(resume=True)
        except BaseException:
            journal.close(None)
            raise
        progress = LiveProgress(console_err, mode="quiet" if quiet else "auto")
        progress.watch(recorder)
        console_err.print(f"[dim]resuming run {run_id} ({info.steps} steps, {info.subagents} sub-agents journaled)[/dim]",
                          highlight=False)
        with progress:
            result = execute(swarm, config.task, recorder, replay, journal, runs_dir_)
        save_outputs(result, trace, report, price_table)
    print_outcome(result, journal, runs_dir_)
    console_err.print(f"[dim]resumed: {json.dumps(dict(replay.stats), sort_keys=True)}[/dim]", highlight=False)


__all__ = ["UserError", "build_swarm", "execute", "open_journal"]
