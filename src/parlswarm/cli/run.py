"""``parlswarm run``: one task through a swarm or a single agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from parlswarm.cli import app
from parlswarm.cli.common import UserError, console_err, user_errors
from parlswarm.cli.runs import RUNS_DIR_HELP, build_swarm, execute, open_journal, print_outcome, save_outputs
from parlswarm.journal import RunConfig
from parlswarm.live import LiveProgress
from parlswarm.types import Budgets


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="The task, in words.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Orchestrator model (see docs/models.md).")],
    subagent_model: Annotated[str | None, typer.Option(help="Frozen sub-agent model; the orchestrator's by default.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint (vLLM, SGLang, Ollama ...).")] = None,
    mode: Annotated[str, typer.Option(help="swarm or single.")] = "swarm",
    tools: Annotated[str, typer.Option(help="Tool sets on the menu, comma-separated.")] = "none",
    thinking: Annotated[bool | None, typer.Option("--thinking/--no-thinking", help="Reasoning on/off where the model supports it.")] = None,
    trace: Annotated[Path | None, typer.Option(help="Write the run's trace as JSONL here.")] = None,
    max_subagents: Annotated[int, typer.Option(help="Sub-agents per run.")] = 100,
    max_concurrent: Annotated[int, typer.Option(help="Sub-agents running at once.")] = 100,
    max_tool_calls: Annotated[int, typer.Option(help="Tool calls per run.")] = 1500,
    max_tool_calls_per_step: Annotated[int | None, typer.Option(min=1, help="Tool calls one agent may make in one reply; the rest are refused.")] = None,
    max_steps: Annotated[int, typer.Option(help="Orchestrator steps.")] = 100,
    max_subagent_steps: Annotated[int, typer.Option(help="Steps per sub-agent.")] = 100,
    max_critical_steps: Annotated[int | None, typer.Option(help="Critical steps of the run.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="Tokens of the run.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Wall-clock seconds of the run.")] = None,
    max_cost: Annotated[float | None, typer.Option(help="Cost of the run, in the currency of --prices.")] = None,
    prices: Annotated[str | None, typer.Option(help="Prices per million tokens: a YAML/JSON file or 'MODEL=IN/OUT;MODEL=IN/CACHED/OUT'.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the run's HTML report (timeline, critical path, costs) here.")] = None,
    otel: Annotated[bool, typer.Option("--otel", help="Export OpenTelemetry spans over OTLP (OTEL_EXPORTER_OTLP_ENDPOINT).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    runs_dir: Annotated[Path | None, typer.Option(help=RUNS_DIR_HELP)] = None,
    journal: Annotated[bool, typer.Option("--journal/--no-journal", help="Journal the run so that `parlswarm resume` can continue it.")] = True,
    retries: Annotated[int, typer.Option(min=0, help="Retries of a model call that failed in passing (429, 5xx, timeout).")] = 6,
    call_timeout: Annotated[float, typer.Option(min=0.001, help="Seconds a model call may take before it is retried.")] = 600.0,
) -> None:
    """Run TASK and print the answer and one summary line."""
    with user_errors():
        if mode not in ("swarm", "single"):
            raise ValueError(f"--mode must be swarm or single, not {mode!r}")
        budgets = Budgets(
            max_subagents=max_subagents,
            max_concurrent_subagents=max_concurrent,
            max_tool_calls=max_tool_calls,
            max_tool_calls_per_step=max_tool_calls_per_step,
            max_orchestrator_steps=max_steps,
            max_subagent_steps=max_subagent_steps,
            max_critical_steps=max_critical_steps,
            max_tokens=max_tokens,
            max_seconds=timeout,
            max_cost=max_cost,
        )
        config = RunConfig(task=task, model=model, subagent_model=subagent_model, base_url=base_url, mode=mode,  # type: ignore[arg-type]
                           tools=tools, thinking=thinking, budgets=budgets, retries=retries, call_timeout=call_timeout,
                           options={"prices": prices} if prices else {})
        swarm, price_table = build_swarm(config)  # as `parlswarm resume` builds it again
        recorder, replay, run_journal = open_journal(config, runs_dir, journal)
        progress = LiveProgress(console_err, mode="quiet" if quiet else "auto")
        progress.watch(recorder)
        provider = None
        if otel:
            try:
                from parlswarm.trace.otel import OTelSpans, otlp_tracer_provider
            except ImportError as exc:
                raise UserError(str(exc)) from None
            provider = otlp_tracer_provider()
            recorder.subscribe(OTelSpans(provider))
        try:
            with progress:
                result = execute(swarm, task, recorder, replay, run_journal, runs_dir)
        finally:
            if provider is not None:
                provider.shutdown()  # sends the last batch of spans
        save_outputs(result, trace, report, price_table)
    print_outcome(result, run_journal, runs_dir)
    if report is not None:
        console_err.print(f"[dim]report: {report}[/dim]", highlight=False)
    if run_journal is not None:
        console_err.print(f"[dim]run {run_journal.run_id} · journal {run_journal.path}[/dim]", highlight=False)
