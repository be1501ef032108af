"""The benchmark harness: every task × mode × model × trial through the runtime, scored.

Tasks come as WideSearch files (``tasks.jsonl`` + ``gold/``), from ``parlswarm world tasks``
or anywhere else. Each run is a plain :class:`~parlswarm.swarm.Swarm` run over the world's
tools (``mode="single"`` is the single-agent baseline with the same model and tools), scored
with :mod:`parlswarm.scoring`, and measured from its trace: critical steps, total steps,
sub-agents, tool calls, tokens, wall-clock. Tasks run one after another so that wall-clock
figures are not shared.

Budgets live in one place, :class:`BenchConfig` (defaults below, or a YAML file with the
same shape): a tier per task size, because a serial agent needs about one step per page it
reads.

Bad input never stops the bench: a malformed task line, a missing gold table, a spec with
an unknown field or a task made for another world seed is reported (file, task, what is
wrong) and the other tasks still run and are scored.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parlswarm.config import load_yaml_model
from parlswarm.models.base import Model, call_model
from parlswarm.scoring import (
    GoldTable,
    InputError,
    TaskScore,
    WideSearchTask,
    load_gold,
    load_tasks_report,
    score_response,
    summarize,
    zero_score,
)
from parlswarm.swarm import Swarm
from parlswarm.tools import Toolset
from parlswarm.trace.recorder import Trace
from parlswarm.types import Budgets, Message, ModelResponse, ToolChoice, ToolSpec

log = logging.getLogger(__name__)

Mode = Literal["single", "swarm"]
MODES: tuple[Mode, ...] = ("single", "swarm")
WIDE_ROWS = 20  # tasks this wide get their own lines in the report


# --- configuration -------------------------------------------------------------------------


class BudgetTier(BaseModel):
    """Budgets for tasks whose gold table has at least ``min_rows`` rows."""

    model_config = ConfigDict(extra="forbid")

    min_rows: int = Field(0, ge=0)
    budgets: Budgets


def _default_tiers() -> list[BudgetTier]:
    # A serial agent making one tool call a turn needs about (pages read per row) × rows steps:
    # 56 rows × 3 sections reach ~175 steps. Sub-agents read 1–3 places each.
    return [
        BudgetTier(min_rows=0, budgets=Budgets(max_orchestrator_steps=300, max_subagent_steps=100, max_tool_calls=800)),
        BudgetTier(min_rows=40, budgets=Budgets(max_orchestrator_steps=600, max_subagent_steps=100, max_tool_calls=1500)),
    ]


class BenchConfig(BaseModel):
    """The bench's budgets, by task size. The one place they are set."""

    model_config = ConfigDict(extra="forbid")

    tiers: list[BudgetTier] = Field(default_factory=_default_tiers, min_length=1)

    def budgets_for(self, rows: int) -> Budgets:
        fitting = [t for t in self.tiers if rows >= t.min_rows]
        tier = max(fitting, key=lambda t: t.min_rows) if fitting else min(self.tiers, key=lambda t: t.min_rows)
        return tier.budgets

    def capped(self, steps: int) -> BenchConfig:
        """The same tiers with every agent's step budget at most ``steps``.

        The default tiers give a serial agent room for a serial read of the widest task (300
        steps); a small local model that loops would use it all, an hour on a CPU.
        """
        if steps < 1:
            raise ValueError(f"a step cap must be at least 1, not {steps}")
        tiers = []
        for tier in self.tiers:
            b = tier.budgets
            capped = b.model_copy(
                update={
                    "max_orchestrator_steps": min(b.max_orchestrator_steps, steps),
                    "max_subagent_steps": min(b.max_subagent_steps, steps),
                }
            )
            tiers.append(tier.model_copy(update={"budgets": capped}))
        return self.model_copy(update={"tiers": tiers})

    @classmethod
    def from_yaml(cls, path: str | Path) -> BenchConfig:
        return load_yaml_model(cls, path, "bench config")


# --- emulated latency ----------------------------------------------------------------------


class LatencyModel:
    """Wraps a model and waits a fixed time before each call: a remote LLM, emulated."""

    def __init__(self, inner: Model, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"latency must be ≥ 0 seconds, not {seconds}")
        self.inner = inner
        self.seconds = seconds
        self.name = f"{inner.name} [+{seconds:g}s/call emulated latency]"

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        await asyncio.sleep(self.seconds)
        return await call_model(self.inner, messages, tools, tool_choice)


# --- records -------------------------------------------------------------------------------


class RunRecord(BaseModel):
    """One task × mode × model × trial."""

    instance_id: str
    mode: Mode
    model: str
    trial: int
    rows: int  # of the gold table
    item_f1: float
    row_f1: float
    success: float | None
    item_precision: float
    item_recall: float
    row_precision: float
    row_recall: float
    critical_steps: int
    steps: int
    subagents: int
    tool_calls: int
    tokens: int
    seconds: float
    complete: bool
    stop_reason: str
    error: str | None = None  # why the run or its scoring went wrong
    response: str = ""


class GroupSummary(BaseModel):
    """Mean figures of one mode × model over a set of tasks (Avg@N for the scores)."""

    mode: Mode
    model: str
    tasks: int
    runs: int
    item_f1: float | None
    item_f1_max: float | None
    row_f1: float | None
    success: float | None
    critical_steps: float
    steps: float
    subagents: float
    tool_calls: float
    tokens: float
    seconds: float
    incomplete: int


class Ratio(BaseModel):
    """Swarm over single, same model, same tasks."""

    model: str
    subset: str
    critical_steps: float | None
    seconds: float | None
    item_f1_single: float | None
    item_f1_swarm: float | None
    tasks: int = 0
    worst_task_critical_steps: float | None = None  # the largest per-task swarm/single ratio
    worst_task_seconds: float | None = None


class BenchResult(BaseModel):
    tasks_file: str
    gold_dir: str
    world_seed: int
    models: list[str]
    modes: list[Mode]
    trials: int
    latency: float | None
    config: BenchConfig
    subagent_model: str | None = None  # the frozen sub-agents' model in swarm mode; None: each orchestrator's own
    input_errors: list[InputError] = Field(default_factory=list)
    runs: list[RunRecord] = Field(default_factory=list)
    summary: list[GroupSummary] = Field(default_factory=list)
    wide_summary: list[GroupSummary] = Field(default_factory=list)  # tasks of ≥ WIDE_ROWS rows
    ratios: list[Ratio] = Field(default_factory=list)
    seconds: float = 0.0


# --- inputs --------------------------------------------------------------------------------


class BenchTask(BaseModel):
    task: WideSearchTask
    gold: GoldTable

    @property
    def rows(self) -> int:
        return len(self.gold.rows)


def load_bench_tasks(
    tasks_file: str | Path,
    gold_dir: str | Path,
    *,
    world_seed: int | None = None,
    min_rows: int = 0,
    max_rows: int | None = None,
    limit: int | None = None,
) -> tuple[list[BenchTask], list[InputError], int]:
    """Tasks with their gold tables, the input errors, and the world seed to run them in.

    A task of ``parlswarm world tasks`` carries a ``spec``; its fields are checked against the
    registry and its world seed against the bench's (``world_seed``, else the tasks' own).
    """
    from parlswarm.world.tasks import TaskSpec  # the world is optional for foreign task files

    report = load_tasks_report(tasks_file)
    errors = list(report.errors)
    file = str(tasks_file)
    specs: dict[str, TaskSpec] = {}
    for task in report.tasks:
        if task.spec is None:
            continue
        try:
            specs[task.instance_id] = TaskSpec.model_validate(task.spec)
        except ValidationError as exc:
            problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            errors.append(InputError(file=file, instance_id=task.instance_id, message=f"bad spec: {problems}"))
    seeds = {s.world_seed for s in specs.values()}
    seed = world_seed if world_seed is not None else (seeds.pop() if len(seeds) == 1 else 0)
    tasks: list[BenchTask] = []
    for task in report.tasks:
        if task.spec is not None and task.instance_id not in specs:
            continue  # reported above
        spec = specs.get(task.instance_id)
        if spec is not None and spec.world_seed != seed:
            errors.append(
                InputError(
                    file=file,
                    instance_id=task.instance_id,
                    message=f"made for world seed {spec.world_seed}, the bench runs world seed {seed}; "
                    f"write its tasks with `parlswarm world tasks --world-seed {seed}`",
                )
            )
            continue
        try:
            gold = load_gold(gold_dir, task.instance_id)
        except (FileNotFoundError, ValueError) as exc:
            errors.append(InputError(file=str(Path(gold_dir) / f"{task.instance_id}.csv"), instance_id=task.instance_id, message=str(exc)))
            continue
        missing = [c for c in task.evaluation.required if c not in gold.columns]
        if missing:
            errors.append(
                InputError(file=gold.path or str(gold_dir), instance_id=task.instance_id, message=f"gold table lacks column(s) {missing}")
            )
            continue
        if len(gold.rows) < min_rows or (max_rows is not None and len(gold.rows) > max_rows):
            continue
        tasks.append(BenchTask(task=task, gold=gold))
    if limit is not None:
        tasks = tasks[:limit]
    return tasks, errors, seed


# --- running -------------------------------------------------------------------------------


async def run_one(
    bench_task: BenchTask,
    model: Model,
    mode: Mode,
    tools: Toolset,
    budgets: Budgets,
    *,
    trial: int = 0,
    subagent_model: Model | None = None,
    trace_file: Path | None = None,
) -> RunRecord:
    """Run and score one task in one mode with one model."""
    task = bench_task.task
    swarm = Swarm(model, subagent_model=subagent_model, tools=tools, budgets=budgets, mode=mode)
    trace = Trace()
    started = time.perf_counter()
    error: str | None = None
    try:
        result = await swarm.run(task.query, trace=trace)
    except Exception as exc:  # a broken run is a record, not the end of the bench
        log.warning("task %s (%s, %s) failed: %s", task.instance_id, mode, model.name, exc, exc_info=True)
        seconds = time.perf_counter() - started
        score = zero_score(task, trial, len(bench_task.gold.rows), error=f"run failed: {type(exc).__name__}: {exc}")
        return _record(bench_task, mode, model.name, trial, score, None, seconds, "", False, "error", score.error)
    seconds = time.perf_counter() - started
    if trace_file is not None:
        result.trace.save_jsonl(trace_file)
    if result.result.stop_reason == "error":
        error = result.result.error
    score = score_response(task, bench_task.gold, result.answer, trial=trial)
    if score.error and not error:
        error = score.error
    return _record(
        bench_task, mode, model.name, trial, score, result.summary, seconds, result.answer, result.complete, result.result.stop_reason, error
    )


def _record(
    bench_task: BenchTask,
    mode: Mode,
    model: str,
    trial: int,
    score: TaskScore,
    summary: object,
    seconds: float,
    response: str,
    complete: bool,
    stop_reason: str,
    error: str | None,
) -> RunRecord:
    s = summary
    return RunRecord(
        instance_id=bench_task.task.instance_id,
        mode=mode,
        model=model,
        trial=trial,
        rows=bench_task.rows,
        item_f1=score.item_f1,
        row_f1=score.row_f1,
        success=score.success,
        item_precision=score.item_precision,
        item_recall=score.item_recall,
        row_precision=score.row_precision,
        row_recall=score.row_recall,
        critical_steps=getattr(s, "critical_steps", 0),
        steps=getattr(s, "steps", 0),
        subagents=getattr(s, "subagents", 0),
        tool_calls=getattr(s, "tool_calls", 0),
        tokens=getattr(s, "prompt_tokens", 0) + getattr(s, "completion_tokens", 0),
        seconds=round(seconds, 4),
        complete=complete,
        stop_reason=stop_reason,
        error=error,
        response=response,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:60] or "model"


async def run_bench(
    tasks: Sequence[BenchTask],
    models: Sequence[Model],
    tools: Toolset,
    *,
    modes: Sequence[Mode] = MODES,
    trials: int = 1,
    config: BenchConfig | None = None,
    subagent_model: Model | None = None,
    trace_dir: Path | None = None,
    on_run: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Every task × mode × model × trial, one after another."""
    config = config or BenchConfig()
    records = []
    for bench_task in tasks:
        budgets = config.budgets_for(bench_task.rows)
        for model in models:
            for mode in modes:
                for trial in range(trials):
                    trace_file = None
                    if trace_dir is not None:
                        trace_file = trace_dir / f"{bench_task.task.instance_id}.{mode}.{_slug(model.name)}.t{trial}.jsonl"
                    record = await run_one(
                        bench_task, model, mode, tools, budgets, trial=trial, subagent_model=subagent_model, trace_file=trace_file
                    )
                    records.append(record)
                    if on_run is not None:
                        on_run(record)
    return records


# --- summaries -----------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def summarize_runs(runs: Sequence[RunRecord]) -> list[GroupSummary]:
    """Per mode × model: scores as Avg@N over tasks (WideSearch), the rest as means per run."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.mode, r.model), []).append(r)
    out = []
    for (mode, model), rs in groups.items():
        scores = [
            TaskScore(instance_id=r.instance_id, trial=r.trial, success=r.success, item_f1=r.item_f1, row_f1=r.row_f1)
            for r in rs
        ]
        agg = summarize(scores)
        out.append(
            GroupSummary(
                mode=mode,  # type: ignore[arg-type]
                model=model,
                tasks=agg.tasks,
                runs=len(rs),
                item_f1=agg.at("item_f1"),
                item_f1_max=agg.at("item_f1", "max"),
                row_f1=agg.at("row_f1"),
                success=agg.at("success"),
                critical_steps=_mean([r.critical_steps for r in rs]),
                steps=_mean([r.steps for r in rs]),
                subagents=_mean([r.subagents for r in rs]),
                tool_calls=_mean([r.tool_calls for r in rs]),
                tokens=_mean([r.tokens for r in rs]),
                seconds=_mean([r.seconds for r in rs]),
                incomplete=sum(1 for r in rs if not r.complete),
            )
        )
    order = {m: i for i, m in enumerate(MODES)}
    return sorted(out, key=lambda g: (g.model, order[g.mode]))


def ratios(runs: Sequence[RunRecord]) -> list[Ratio]:
    """Swarm / single critical steps and wall-clock per model, on all tasks and on wide ones."""
    out = []
    for subset, keep in (("all tasks", lambda r: True), (f"tasks of ≥ {WIDE_ROWS} rows", lambda r: r.rows >= WIDE_ROWS)):
        chosen = [r for r in runs if keep(r)]
        for group in {r.model for r in chosen}:
            single = [r for r in chosen if r.model == group and r.mode == "single"]
            swarm = [r for r in chosen if r.model == group and r.mode == "swarm"]
            if not single or not swarm:
                continue
            s_cs, w_cs = _mean([r.critical_steps for r in single]), _mean([r.critical_steps for r in swarm])
            s_t, w_t = _mean([r.seconds for r in single]), _mean([r.seconds for r in swarm])
            pairs = [
                (a, b)
                for a in single
                for b in swarm
                if (a.instance_id, a.trial) == (b.instance_id, b.trial) and a.critical_steps and a.seconds
            ]
            out.append(
                Ratio(
                    model=group,
                    subset=subset,
                    critical_steps=w_cs / s_cs if s_cs else None,
                    seconds=w_t / s_t if s_t else None,
                    item_f1_single=_mean([r.item_f1 for r in single]),
                    item_f1_swarm=_mean([r.item_f1 for r in swarm]),
                    tasks=len({r.instance_id for r in single} & {r.instance_id for r in swarm}),
                    worst_task_critical_steps=max((b.critical_steps / a.critical_steps for a, b in pairs), default=None),
                    worst_task_seconds=max((b.seconds / a.seconds for a, b in pairs), default=None),
                )
            )
    return sorted(out, key=lambda r: (r.model, r.subset))


def finish(result: BenchResult) -> BenchResult:
    result.summary = summarize_runs(result.runs)
    result.wide_summary = summarize_runs([r for r in result.runs if r.rows >= WIDE_ROWS])
    result.ratios = ratios(result.runs)
    return result


# --- reports -------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def _ratio(v: float | None, word: str = "") -> str:
    if v is None:
        return "—"
    if not word or v <= 0:
        return f"{v:.3f}"
    return f"{v:.3f} ({1 / v:.1f}× {word})"


def summary_markdown(groups: Sequence[GroupSummary]) -> list[str]:
    lines = [
        "| mode | model | tasks | Item-F1 | Row-F1 | success | critical steps | total steps | sub-agents | tool calls | tokens | wall-clock (s) | incomplete |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        lines.append(
            f"| {g.mode} | {g.model} | {g.tasks} | {_pct(g.item_f1)} | {_pct(g.row_f1)} | {_pct(g.success)} | "
            f"{g.critical_steps:.1f} | {g.steps:.1f} | {g.subagents:.1f} | {g.tool_calls:.1f} | {g.tokens:,.0f} | "
            f"{g.seconds:.2f} | {g.incomplete} |"
        )
    return lines


def render_markdown(result: BenchResult) -> str:
    """``results.md``: the tables of a bench run."""
    latency = (
        f"; every model call delayed by {result.latency:g} s (emulated remote-LLM latency, labelled in the model name)"
        if result.latency
        else ""
    )
    lines = [
        "# parlswarm bench",
        "",
        f"Tasks: `{result.tasks_file}` (gold `{result.gold_dir}`), world seed {result.world_seed}, "
        f"{result.trials} trial(s){latency}. Scores in %, Avg@{result.trials} over tasks; other figures are "
        "means per run; wall-clock in seconds per task.",
        "",
        f"Sub-agents in swarm mode: {_subagents(result)}.",
        "",
        "## All tasks",
        "",
        *summary_markdown(result.summary),
    ]
    if result.wide_summary:
        lines += ["", f"## Tasks of ≥ {WIDE_ROWS} rows", "", *summary_markdown(result.wide_summary)]
    if result.ratios:
        lines += [
            "",
            "## Swarm vs single (same model, same tasks)",
            "",
            "Ratios of means; \"worst task\" is the largest ratio of any single task.",
            "",
            "| model | tasks | critical steps swarm/single | worst task | wall-clock swarm/single | worst task | Item-F1 single | Item-F1 swarm |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for q in result.ratios:
            lines.append(
                f"| {q.model} | {q.subset} ({q.tasks}) | {_ratio(q.critical_steps, 'fewer')} | {_ratio(q.worst_task_critical_steps)} | "
                f"{_ratio(q.seconds, 'faster')} | {_ratio(q.worst_task_seconds)} | {_pct(q.item_f1_single)} | {_pct(q.item_f1_swarm)} |"
            )
    lines += [
        "",
        "## Per task",
        "",
        "| task | rows | mode | model | trial | Item-F1 | Row-F1 | critical steps | steps | sub-agents | tool calls | tokens | s | note |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result.runs:
        note = (r.error or ("" if r.complete else f"incomplete ({r.stop_reason})")).replace("|", "/").replace("\n", " ")
        lines.append(
            f"| {r.instance_id} | {r.rows} | {r.mode} | {r.model} | {r.trial} | {_pct(r.item_f1)} | {_pct(r.row_f1)} | "
            f"{r.critical_steps} | {r.steps} | {r.subagents} | {r.tool_calls} | {r.tokens:,} | {r.seconds:.2f} | {note[:120]} |"
        )
    if result.input_errors:
        lines += ["", "## Input errors (these tasks were not run)", ""]
        lines += [f"- {e}" for e in result.input_errors]
    return "\n".join(lines) + "\n"


def _subagents(result: BenchResult) -> str:
    return f"`{result.subagent_model}` (frozen), under every orchestrator" if result.subagent_model else "each orchestrator's own model"


def plot(result: BenchResult, path: Path) -> Path:
    """A PNG of Item-F1 against critical steps: one point per run, a large one per mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=120)
    groups = {(r.mode, r.model) for r in result.runs}
    markers = {"single": "o", "swarm": "s"}
    for i, (mode, model) in enumerate(sorted(groups)):
        rs = [r for r in result.runs if r.mode == mode and r.model == model]
        color = f"C{i}"
        ax.scatter([r.critical_steps for r in rs], [100 * r.item_f1 for r in rs], s=18, alpha=0.45, color=color, marker=markers[mode])
        ax.scatter(
            [_mean([r.critical_steps for r in rs])],
            [100 * _mean([r.item_f1 for r in rs])],
            s=140,
            color=color,
            marker=markers[mode],
            edgecolors="black",
            label=f"{mode} · {model}",
        )
    ax.set_xscale("log")
    ax.set_xlabel("critical steps per task (log scale)")
    ax.set_ylabel("Item-F1 (%)")
    ax.set_ylim(-3, 103)
    ax.set_title(f"Item-F1 vs critical steps — world seed {result.world_seed}, {len({r.instance_id for r in result.runs})} tasks")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_reports(result: BenchResult, out_dir: str | Path) -> dict[str, Path]:
    """``results.json``, ``results.md``, the plot, and a responses file per mode × model
    (``parlswarm eval`` can score them again)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "md": out / "results.md", "plot": out / "item_f1_vs_critical_steps.png"}
    paths["json"].write_text(result.model_dump_json(indent=1), encoding="utf-8")
    paths["md"].write_text(render_markdown(result), encoding="utf-8")
    if result.runs:
        plot(result, paths["plot"])
    else:
        del paths["plot"]
    responses = out / "responses"
    responses.mkdir(exist_ok=True)
    for mode, model in sorted({(r.mode, r.model) for r in result.runs}):
        file = responses / f"{mode}.{_slug(model)}.jsonl"
        with file.open("w", encoding="utf-8") as f:
            for r in result.runs:
                if r.mode == mode and r.model == model:
                    f.write(json.dumps({"instance_id": r.instance_id, "trial": r.trial, "response": r.response}, ensure_ascii=False) + "\n")
    paths["responses"] = responses
    return paths


__all__ = [
    "BenchConfig",
    "BenchResult",
    "BenchTask",
    "BudgetTier",
    "GroupSummary",
    "LatencyModel",
    "RunRecord",
    "finish",
    "load_bench_tasks",
    "render_markdown",
    "run_bench",
    "run_one",
    "summarize_runs",
    "summary_markdown",
    "write_reports",
]
