"""``parlswarm bench``: single agent vs swarm on the offline world's tasks, side by side.

Exit status: 0 when every task ran from good input, 1 when some input was bad (each problem
printed with its file and task; the other tasks still ran and are reported), 2 when nothing
could run.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from parlswarm.cli import app
from parlswarm.cli.common import UserError, console, console_err, user_errors


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def summary_table(result: object, title: str, groups: list) -> Table:  # type: ignore[type-arg]
    table = Table(title=title)
    for col in ("mode", "model", "tasks", "Item-F1", "Row-F1", "success", "crit. steps", "steps", "sub-agents", "tool calls", "tokens", "s/task"):
        table.add_column(col, justify="left" if col in ("mode", "model") else "right")
    for g in groups:
        table.add_row(
            g.mode, escape(g.model), str(g.tasks), _pct(g.item_f1), _pct(g.row_f1), _pct(g.success),
            f"{g.critical_steps:.1f}", f"{g.steps:.1f}", f"{g.subagents:.1f}", f"{g.tool_calls:.1f}",
            f"{g.tokens:,.0f}", f"{g.seconds:.2f}",
        )  # fmt: skip
    return table


def print_result(result: object) -> None:
    from parlswarm.bench import WIDE_ROWS, BenchResult, summary_markdown

    assert isinstance(result, BenchResult)
    subagents = f" · sub-agents: {result.subagent_model}" if result.subagent_model and "swarm" in result.modes else ""
    sections = [(f"world seed {result.world_seed}{subagents} · all tasks", result.summary)]
    if result.wide_summary:
        sections.append((f"tasks of ≥ {WIDE_ROWS} rows", result.wide_summary))
    for title, groups in sections:
        if console.is_terminal:
            console.print(summary_table(result, f"parlswarm bench · {title}", groups))
        else:  # piped: the Markdown table, whole, rather than a table cut to 80 columns
            console.print("\n".join([f"parlswarm bench · {title}", *summary_markdown(groups)]), markup=False, highlight=False)
    for r in result.ratios:
        if r.critical_steps and r.seconds:
            worst = ""
            if r.worst_task_critical_steps is not None and r.worst_task_seconds is not None:
                worst = f" (worst task {r.worst_task_critical_steps:.3f} and {r.worst_task_seconds:.3f})"
            console.print(
                f"{escape(r.model)} · {r.subset} ({r.tasks}): swarm/single critical steps {r.critical_steps:.3f} "
                f"({1 / r.critical_steps:.1f}× fewer), wall-clock {r.seconds:.3f} ({1 / r.seconds:.1f}× faster){worst}, "
                f"Item-F1 {_pct(r.item_f1_single)} → {_pct(r.item_f1_swarm)}",
                highlight=False,
            )


@app.command()
def bench(
    out: Annotated[Path, typer.Option(help="Folder for results.json, results.md, the plot, responses (and traces).")],
    split: Annotated[str | None, typer.Option(help="Generate and run a split of the world's tasks: train, dev, test.")] = None,
    tasks: Annotated[Path | None, typer.Option(help="A WideSearch task file (.jsonl) instead of --split.")] = None,
    gold: Annotated[Path | None, typer.Option(help="Folder of gold tables <instance_id>.csv (with --tasks).")] = None,
    world_seed: Annotated[int | None, typer.Option(help="World seed (0 = real Factbook); default: the tasks' own, else 0.", min=0)] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Model(s), comma-separated, e.g. expert or expert,kimi-k2.5.")] = "expert",
    mode: Annotated[str, typer.Option(help="Modes, comma-separated: single, swarm.")] = "single,swarm",
    trials: Annotated[int, typer.Option(help="Trials per task, mode and model (Avg@N, Max@N).", min=1)] = 1,
    latency: Annotated[float | None, typer.Option(help="Add this many seconds before every model call (emulated remote LLM).", min=0)] = None,
    limit: Annotated[int | None, typer.Option(help="Run only the first N tasks (after the row filters).", min=1)] = None,
    min_rows: Annotated[int, typer.Option(help="Only tasks whose gold table has at least this many rows.", min=0)] = 0,
    max_rows: Annotated[int | None, typer.Option(help="Only tasks whose gold table has at most this many rows.", min=0)] = None,
    config: Annotated[Path | None, typer.Option(help="Budgets by task size (YAML, see parlswarm.bench.BenchConfig).")] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(help="Cap every agent's steps (orchestrator and sub-agents) at N, below the config's budgets: for local models that may loop.", min=1),
    ] = None,
    subagent_model: Annotated[str | None, typer.Option(help="Frozen sub-agent model; the orchestrator's by default.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for the model(s).")] = None,
    traces: Annotated[bool, typer.Option("--traces/--no-traces", help="Save every run's trace (JSONL) under OUT/traces.")] = False,
    cache_dir: Annotated[Path | None, typer.Option(help="World cache folder ($PARLSWARM_CACHE or ~/.cache/parlswarm).")] = None,
) -> None:
    """Run every task in each mode with each model; score, measure and write the reports."""
    from parlswarm.bench import MODES, BenchConfig, BenchResult, LatencyModel, finish, load_bench_tasks, run_bench, write_reports
    from parlswarm.models import ModelOptions, load_model
    from parlswarm.models.registry import split_model_list
    from parlswarm.world.tools import offer_check, world_tools
    from parlswarm.world.world import World

    with user_errors():
        if (split is None) == (tasks is None):
            raise ValueError("give either --split or --tasks (with --gold)")
        if tasks is not None and gold is None:
            raise ValueError("--tasks needs --gold, the folder of <instance_id>.csv gold tables")
        modes = [m.strip() for m in mode.split(",") if m.strip()]
        bad = [m for m in modes if m not in MODES]
        if bad or not modes:
            raise ValueError(f"--mode takes single and/or swarm, not {', '.join(bad) or 'nothing'}")
        bench_config = BenchConfig.from_yaml(config) if config else BenchConfig()
        if max_steps is not None:
            bench_config = bench_config.capped(max_steps)
        options = ModelOptions(base_url=base_url)
        models = [load_model(m, options) for m in split_model_list(model)]
        if not models:
            raise ValueError("--model names no model")
        sub = load_model(subagent_model, options) if subagent_model else None
        if latency:
            models = [LatencyModel(m, latency) for m in models]
            sub = LatencyModel(sub, latency) if sub else None
        if split is not None:
            from parlswarm.world.counterfactual import counterfactual
            from parlswarm.world.factbook import Factbook
            from parlswarm.world.tasks import make_tasks, write_tasks

            seed = world_seed or 0
            real = Factbook.load()
            tasks, gold = write_tasks(make_tasks(split, counterfactual(real, seed), real, seed), out / "tasks")  # type: ignore[arg-type]
        assert tasks is not None and gold is not None
        chosen, errors, seed = load_bench_tasks(tasks, gold, world_seed=world_seed, min_rows=min_rows, max_rows=max_rows, limit=limit)
        for e in errors:
            console_err.print(f"[yellow]input error:[/yellow] {escape(str(e))}", highlight=False)
        if not chosen:
            raise UserError(f"no task to run from {tasks}" + (" (see the input errors above)" if errors else ""))
        world = World.load(seed, cache_dir)
    result = BenchResult(
        tasks_file=str(tasks), gold_dir=str(gold), world_seed=seed, models=[m.name for m in models],
        modes=modes, trials=trials, latency=latency, config=bench_config, input_errors=errors,  # type: ignore[arg-type]
        subagent_model=sub.name if sub else None,
    )  # fmt: skip
    total = len(chosen) * len(models) * len(modes) * trials
    started = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console_err, transient=False,
    ) as progress:  # fmt: skip
        bar = progress.add_task("bench", total=total)

        def advance(record: object) -> None:
            progress.update(bar, advance=1, description=f"{record.instance_id} {record.mode} item-F1 {100 * record.item_f1:.0f}")  # type: ignore[attr-defined]

        result.runs = asyncio.run(
            run_bench(
                chosen, models, offer_check(world_tools(world), *models, sub), modes=modes, trials=trials, config=bench_config,  # type: ignore[arg-type]
                subagent_model=sub, trace_dir=(out / "traces") if traces else None, on_run=advance,
            )
        )  # fmt: skip
    result.seconds = time.perf_counter() - started
    finish(result)
    paths = write_reports(result, out)
    print_result(result)
    console.print(f"reports: {paths['md']}, {paths['json']}" + (f", {paths['plot']}" if "plot" in paths else ""), highlight=False)
    if errors:
        raise typer.Exit(1)


__all__ = ["bench", "print_result"]
