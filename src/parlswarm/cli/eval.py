"""``parlswarm eval``: score responses with WideSearch's metrics.

``--responses`` is a JSONL file of ``{"instance_id", "response"[, "trial"]}`` objects
(WideSearch's own response files, with ``trial_idx``, read too) or a folder holding
``<instance_id>.md`` / ``.txt`` files for trial 0 and sub-folders ``trial_<k>/`` for trial k.

Exit status: 0 when every task was scored from good input, 1 when some input was bad (each
problem is printed with its file and task; the other tasks are still scored and reported),
2 when nothing could be scored (a path is missing).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from parlswarm.cli import app
from parlswarm.cli.common import console, console_err, user_errors
from parlswarm.scoring import EvalReport, aevaluate_files
from parlswarm.scoring.aggregate import MetricAggregate


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _cell(m: MetricAggregate, trials: int, best: str = "max") -> str:
    if trials <= 1:
        return _pct(m.avg)
    return f"{_pct(m.avg)} / {_pct(getattr(m, best))}"


_SHORT = {"no_response": "no response", "no_table": "no table", "bad_table": "unreadable table", "columns": "columns differ"}


def _notes(report: EvalReport, instance_id: str) -> str:
    notes: list[str] = []
    for s in (s for s in report.scores if s.instance_id == instance_id):
        tag = f"t{s.trial}: " if report.trials > 1 else ""
        if s.error_kind:
            notes.append(tag + _SHORT[s.error_kind])
            continue
        parts = []
        if s.missing_keys:
            parts.append(f"{len(s.missing_keys)} missing")
        if s.extra_keys:
            parts.append(f"{len(s.extra_keys)} extra")
        if s.wrong_cells:
            parts.append(f"{len(s.wrong_cells)} wrong cells")
        if s.unscored_cells:
            parts.append(f"{s.unscored_cells} unscored")
        if parts:
            notes.append(tag + ", ".join(parts))
    return "; ".join(notes)


def render(report: EvalReport) -> Table:
    """Per-task and overall scores (percent). With N trials: Avg@N / Max@N (Pass@N for success)."""
    n = report.trials
    how = f"avg@{n} / max@{n}, success avg@{n} / pass@{n}" if n > 1 else "1 trial"
    table = Table(title=f"WideSearch scores (%), {report.summary.tasks} task(s), {how}")
    table.add_column("task", no_wrap=True)
    table.add_column("Item-F1", justify="right", no_wrap=True)
    table.add_column("Row-F1", justify="right", no_wrap=True)
    table.add_column("success", justify="right", no_wrap=True)
    table.add_column("rows g/r/m", justify="right", no_wrap=True)
    table.add_column("notes")
    last = {s.instance_id: s for s in report.scores}
    for t in report.summary.per_task:
        m = t.metrics
        s = last[t.instance_id]
        rows = f"{s.gold_rows}/{s.response_rows}/{s.matched_rows}" if n == 1 else f"{s.gold_rows}/–/–"
        table.add_row(
            escape(t.instance_id),
            _cell(m["item_f1"], n),
            _cell(m["row_f1"], n),
            _cell(m["success"], n),
            rows,
            escape(_notes(report, t.instance_id)),
        )
    o = report.summary.metrics
    table.add_section()
    table.add_row(
        "[bold]all[/bold]",
        _cell(o["item_f1"], n),
        _cell(o["row_f1"], n),
        _cell(o["success"], n),
        "",
        f"{report.summary.unscored_cells} unscored llm_judge cells" if report.summary.unscored_cells else "",
    )
    return table


def problems(report: EvalReport) -> list[str]:
    """One line per response that could not be compared or was only partly scored."""
    lines = []
    for s in report.scores:
        where = s.source or "no response"
        if s.error:
            lines.append(f"{where} (task {s.instance_id}, trial {s.trial}): {s.error}")
        for note in s.notes:
            lines.append(f"{where} (task {s.instance_id}, trial {s.trial}): {note}")
    return lines


@app.command("eval")
def eval_(
    tasks: Annotated[Path, typer.Option("--tasks", help="Task file (.jsonl, WideSearch format).")],
    gold: Annotated[Path, typer.Option("--gold", help="Folder of gold tables <instance_id>.csv.")],
    responses: Annotated[
        Path,
        typer.Option(
            "--responses",
            help="JSONL of {instance_id, response[, trial]} or a folder of <instance_id>.md/.txt "
            "(trial k in sub-folder trial_<k>/).",
        ),
    ],
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Trials per task (N of Avg@N / Max@N); a missing trial scores 0. Default: the most any task has.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the full report (every score, summary, problems) as JSON here.")] = None,
    judge: Annotated[str | None, typer.Option("--judge", help="Model that maps column names, aligns keys and grades llm_judge cells (see docs/models.md). Without one, those are reported, not guessed.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint for --judge.")] = None,
    skip_missing: Annotated[bool, typer.Option("--skip-missing", help="Leave out tasks with no response instead of scoring them 0.")] = False,
) -> None:
    """Score responses against gold tables with WideSearch's metrics and print the table."""
    with user_errors():
        judge_model = None
        if judge is not None:
            from parlswarm.models import ModelOptions, load_model

            judge_model = load_model(judge, ModelOptions(base_url=base_url, temperature=0.0))
        report = asyncio.run(
            aevaluate_files(tasks, gold, responses, trials=trials, judge=judge_model, skip_missing=skip_missing)
        )
    console.print(render(report))
    for line in problems(report):
        console_err.print(f"[yellow]warning:[/yellow] {escape(line)}", highlight=False)
    for error in report.errors:
        console_err.print(f"[red]error:[/red] {escape(str(error))}", highlight=False)
    if report.unknown_responses:
        console_err.print(
            f"[yellow]warning:[/yellow] {len(report.unknown_responses)} response task id(s) are not in {tasks}: "
            f"{escape(', '.join(report.unknown_responses[:10]))}{' ...' if len(report.unknown_responses) > 10 else ''}",
            highlight=False,
        )
    if report.skipped_tasks:
        console_err.print(f"[yellow]not scored:[/yellow] {escape(', '.join(report.skipped_tasks))}", highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=1), encoding="utf-8")
        console_err.print(f"[dim]report written to {escape(str(out))}[/dim]", highlight=False)
    if report.errors:
        raise typer.Exit(1)
