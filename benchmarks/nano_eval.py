"""The built-in model's acceptance figures on one world seed, measured through the runtime.

1. **Sub-agent look-ups**: for gold rows of the split's tasks, the sub-task the scripted
   orchestrator would give one sub-agent for one place ("Fill in a table for exactly these
   places: - Chad (cd) ..."), run as a sub-agent (the expert's sub-agent system prompt, the
   world tools); cell accuracy = share of the row's non-key cells the reply gets right
   (scored with parlswarm.scoring's per-column metrics).
2. **Single mode**: every task of at most ``--max-rows`` rows, the model alone with the
   world tools (``Swarm(mode="single")``, the bench's budgets); Item-F1, Row-F1, success.

Diagnostics come with the look-ups, to show where a low figure comes from (they are not
acceptance figures): the share of replies whose table header is the task's exactly, and the
cell accuracy the replies would have had under the right header (the scorer rejects a table
whose columns are not the required ones, whatever its values); and the *plan*, the texts of
the look-up's ``find`` calls in order: the share of look-ups whose plan is the ``find``
expert's for the same sub-task exactly, the cell accuracy of those and of the others, and the
share whose plan asks for one text twice; the share whose reply has no row for the place, and
the share that used up the step budget (a model that reads again and again instead of
answering leaves partial findings, no table, so no row either); and, over the rows written, how
often each column is wrong (``wrong_by_column``, columns named as the task's header writes them,
the worst three printed), and where each wrong cell came from (``wrong_sources``: another of the
row's columns, elsewhere in what the look-up read, nothing it read; see :func:`wrong_cell_sources`).
A wrong plan is a wrong reading list; a right plan with wrong cells is a value copied wrong. And
the cell accuracy of the look-ups whose sub-task has a filter ("Keep only those whose ...") and
of the others: every place looked up is a gold
row, so a filtered look-up that answers "left out" compared its value wrong; and the
comparison lines of the replies (``= 1885 vs 0400: above``, in ``compared`` and ``matched``
notes) checked against their own numbers: the share written digit under digit, the relation
right (among those and the others), the verdict following the relation. With
``--left-out N``, the other way: N look-ups of places a filtered task leaves out (region
places that are no gold row), right when the reply's table has no row for the place; a model
that always keeps scores well on the look-ups above and 0 here. With both, ``verdict_balanced``
weighs the two sides equally (see :func:`verdict_balanced`), so a lean alone cannot raise it.

With ``--one-field`` (a diagnostic, not the acceptance figure), the same places are looked up one
column at a time: the sub-task asks for one column, and a place's cell accuracy is the share of its
look-ups right. Set beside the ordinary figure it says what writing a whole row costs — taking each
cell from the right one of several reads — over reading one value.

With ``--first-turns``, every task of the split (any size) is started in single mode for one
step: the share whose first tool call names the task's region (a search whose query holds the
region's name, or its index page opened), by the task's phrasing. A region read wrong at the
start is a table of the wrong places, scored zero whatever follows.

Runs go concurrently so a LocalModel decodes them in batches; each is an ordinary runtime
run. ``--model expert`` checks the harness itself (it should score 1.0).

    python benchmarks/nano_eval.py --model builtin --world-seed 1000 [--split test] [--lookups 120] [--max-rows 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, get_args

from parlswarm.agent import Agent
from parlswarm.bench import BenchConfig, BenchTask, load_bench_tasks
from parlswarm.models import load_model
from parlswarm.parl.notes import written_comparisons
from parlswarm.scoring import score_response
from parlswarm.scoring.metrics import NUMBER, norm_str
from parlswarm.scoring.table import ResponseTable, TableError, extract_table, render_markdown_table
from parlswarm.scoring.tasks import GoldTable, norm_column
from parlswarm.swarm import Swarm
from parlswarm.tools import Toolset
from parlswarm.trace.events import ToolFinished, ToolStarted
from parlswarm.trace.recorder import Trace
from parlswarm.types import Budgets, RepeatedCalls
from parlswarm.world.expert import SUBAGENT, SUBAGENT_PROMPT, ExpertModel, table_line
from parlswarm.world.factbook import REGION_NAMES, Factbook
from parlswarm.world.pages import opened_region, region_doc_id, region_members
from parlswarm.world.tasks import TaskSpec, make_tasks, parse_query, write_tasks
from parlswarm.world.tools import offer_check, world_tools
from parlswarm.world.world import World


def cell_accuracy(score: Any, columns: int) -> float:
    """Share of the non-key cells of a one-row gold table that the reply got right."""
    if score.matched_rows != 1:
        return 0.0
    wrong = len(score.wrong_cells) + len(score.missing_columns)
    return max(0.0, (columns - wrong) / columns)


def place_row(reply: str, name: str) -> list[str] | None:
    """The cells after the name of the reply's last table row for ``name``, if it wrote one."""
    lines = [ln.strip() for ln in reply.splitlines() if ln.strip().startswith(f"| {name} |")]
    return [c.strip() for c in lines[-1].strip("|").split("|")][1:] if lines else None


def header_blind_accuracy(task: Any, gold: GoldTable, header: list[str], reply: str) -> float:
    """Diagnostic, not the acceptance figure: cell accuracy had the reply's header been right.

    The scorer rejects a table whose columns are not the required ones, so one wrong header
    cell scores a look-up 0 whatever its values. This puts the reply's row for the place
    (cut or padded to the header's width) under the right header and scores that.
    """
    cells = place_row(reply, gold.rows[0][0])
    if cells is None:
        return 0.0
    cells = (cells + [""] * len(header))[: len(header) - 1]
    repaired = render_markdown_table(header, [[gold.rows[0][0], *cells]])
    return cell_accuracy(score_response(task, gold, repaired), len(header) - 1)


def calls_to(trace: Trace, tool: str) -> list[dict[str, Any] | str]:
    """The arguments of an agent's calls to ``tool``, in order; a malformed call's as written."""
    out: list[dict[str, Any] | str] = []
    for event in trace.events:
        if isinstance(event, ToolStarted) and event.tool == tool:
            try:
                args = json.loads(event.arguments)
            except json.JSONDecodeError:
                args = None
            out.append(args if isinstance(args, dict) else event.arguments)
    return out


def find_plan(trace: Trace) -> list[str]:
    """The texts of an agent's ``find`` calls, in order: what it set out to read."""
    return [str(a.get("text", "")) if isinstance(a, dict) else a for a in calls_to(trace, "find")]


def check_arguments(trace: Trace) -> list[dict[str, Any]]:
    """The arguments of an agent's ``check`` calls (the world's filter calculator), in order."""
    return [a if isinstance(a, dict) else {"malformed": a} for a in calls_to(trace, "check")]


def tool_results(trace: Trace) -> str:
    """Everything the agent's tools returned to it, in order."""
    return "\n".join(e.result for e in trace.events if isinstance(e, ToolFinished))


def numbers_in(text: str) -> set[float]:
    return {float(n.rstrip("%")) for n in NUMBER.findall(text.replace(",", ""))}


def table_rows(reply: str, name: str) -> tuple[ResponseTable | None, list[list[str]]]:
    """The reply's table (None when it has none, or one the scorer cannot read) and its rows for ``name``."""
    try:
        table = extract_table(reply)
    except TableError:
        return None, []
    return table, [r for r in (table.rows if table else []) if r and norm_str(r[0]) == norm_str(name)]


def written_cells(reply: str, name: str) -> dict[str, str]:
    """The cells of the reply's table row for ``name``, as written, by the table's (normalised) column names."""
    table, rows = table_rows(reply, name)
    return dict(zip(table.columns, rows[0], strict=False)) if table and rows else {}


def wrong_cell_sources(score: Any, reply: str, row: list[str], columns: list[str], read: str) -> list[str]:
    """Where each wrong or missing cell of a found row came from, one word a cell: ``missing`` (no such
    column in the reply), ``empty``, ``another_column`` (the right value of another of the row's
    columns: the value read for the wrong column), ``read`` (elsewhere in what the look-up's tools
    returned: the wrong line or entry) or ``not_read`` (in nothing it read: from memory, or mangled).
    A number counts as read when the same number stands anywhere in the results, so a small one
    (``0``) is easily ``read``: the split is a diagnostic, not a figure to hold a model to."""
    gold = dict(zip([norm_column(c) for c in columns], row[1:], strict=True))
    written = written_cells(reply, row[0])
    read_text, read_numbers = norm_str(read.replace(",", "")), numbers_in(read)
    sources = ["missing"] * len(score.missing_columns)
    for cell in score.wrong_cells:
        raw = written.get(cell.column, cell.response).strip()
        said = norm_str(raw)
        others = {norm_str(v) for c, v in gold.items() if c != cell.column}
        number = NUMBER.fullmatch(raw.replace(",", ""))
        if not said:
            sources.append("empty")
        elif said in others:
            sources.append("another_column")
        elif (number and float(number.group().rstrip("%")) in read_numbers) or (not number and said in read_text):
            sources.append("read")
        else:
            sources.append("not_read")
    return sources


def mean_or_none(values: list[float] | list[bool]) -> float | None:
    return statistics.mean(values) if values else None


def comparison_figures(replies: list[str]) -> dict[str, Any]:
    """The comparison lines of ``compared`` and ``matched`` notes in ``replies``, checked
    against the model's own numbers: a filtered look-up is right only when each of them is."""
    lines = [c for reply in replies for c in written_comparisons(reply)]
    aligned = [c for c in lines if c.aligned]
    follows = [c.verdict_follows for c in lines if c.verdict_follows is not None]
    return {
        "lines": len(lines),
        "aligned": mean_or_none([c.aligned for c in lines]),
        "relation_right": mean_or_none([c.relation_right for c in lines]),
        "relation_right_if_aligned": mean_or_none([c.relation_right for c in aligned]),
        "relation_right_if_not": mean_or_none([c.relation_right for c in lines if not c.aligned]),
        "verdict_follows": mean_or_none(follows),
    }


def comparisons_said(figures: dict[str, Any]) -> str:
    return (
        f"comparison lines {figures['lines']}: digit under digit {figure(figures['aligned'])}, relation right "
        f"{figure(figures['relation_right'])} (then {figure(figures['relation_right_if_aligned'])}, else "
        f"{figure(figures['relation_right_if_not'])}), verdict follows the relation {figure(figures['verdict_follows'])}"
    )


def one_field_lookups(bt: Any, parsed: Any, row: list[str]) -> list[tuple[Any, Any, list[str]]]:
    """The look-up of ``row``'s place as one look-up per column: the same sub-task (place, filter, rules)
    asking for that column alone, scored on that cell alone. A diagnostic (``--one-field``), not the
    acceptance figure: it takes the alignment of a row's cells with its ``find`` results out of the look-up."""
    evaluation, key = bt.task.evaluation, bt.gold.columns[0]
    out = []
    for i, (field, column) in enumerate(zip(parsed.columns, bt.gold.columns[1:], strict=True)):
        if norm_column(parsed.header[i + 1]) != column:
            raise ValueError(f"{bt.task.instance_id}: header column {parsed.header[i + 1]!r} is not gold column {column!r}")
        pipeline = {c: v for c, v in evaluation.eval_pipeline.items() if c in (key, column)}
        task = bt.task.model_copy(
            update={
                "instance_id": f"{bt.task.instance_id}.{i + 1}",
                "evaluation": evaluation.model_copy(update={"required": [key, column], "eval_pipeline": pipeline}),
            }
        )
        gold = GoldTable(instance_id=task.instance_id, columns=[key, column], rows=[[row[0], row[i + 1]]])
        one = parsed.model_copy(update={"columns": [field], "header": [parsed.header[0], parsed.header[i + 1]]})
        out.append((BenchTask(task=task, gold=gold), one, [row[0], row[i + 1]]))
    return out


async def lookups(
    model: Any, world: World, bench_tasks: list[Any], n: int, concurrency: int, rng: random.Random, max_steps: int,
    calls_per_step: int | None = None, traces: Path | None = None, repeated_calls: RepeatedCalls = "answer",
    tools: Toolset | None = None, one_field: bool = False,
) -> dict[str, Any]:
    tools = tools or world_tools(world)
    jobs = []
    for bt in bench_tasks:
        parsed = parse_query(bt.task.query)
        if parsed is None or parsed.region is None:
            continue
        codes = dict(region_members(world.docs[region_doc_id(parsed.region)].text))
        for row in bt.gold.rows:
            if row[0] in codes:
                jobs.append((bt, parsed, row))
    jobs = rng.sample(jobs, min(n, len(jobs)))
    # the same places either way; with one_field each place is one look-up per column
    places = [[job] for job in jobs] if not one_field else [one_field_lookups(*job) for job in jobs]
    gate = asyncio.Semaphore(concurrency)
    budgets = Budgets(max_orchestrator_steps=max_steps, max_tool_calls_per_step=calls_per_step, repeated_calls=repeated_calls)
    planner = load_model("expert:find")  # the plan each look-up is compared with

    async def one(bt: Any, parsed: Any, row: list[str]) -> dict[str, Any]:
        name = row[0]
        codes = dict(region_members(world.docs[region_doc_id(parsed.region)].text))
        prompt = ExpertModel.subtask(parsed, [(name, codes[name])])
        agent = Agent(SUBAGENT, model, SUBAGENT_PROMPT, tools=tools, max_steps=budgets.max_orchestrator_steps)
        trace, expert_trace = Trace(), Trace()
        async with gate:
            result = await agent.run(prompt, budgets, trace)
        if traces is not None:
            trace.save_jsonl(traces / f"{bt.task.instance_id}.{codes[name]}.lookup.jsonl")
        expert = Agent(SUBAGENT, planner, SUBAGENT_PROMPT, tools=tools, max_steps=budgets.max_orchestrator_steps)
        # Uncapped: a model run under --calls-per-step is compared with the whole reading list.
        await expert.run(prompt, Budgets(max_orchestrator_steps=max_steps), expert_trace)
        plan, expert_plan = find_plan(trace), find_plan(expert_trace)
        checks, expert_checks = check_arguments(trace), check_arguments(expert_trace)
        gold = GoldTable(instance_id=bt.task.instance_id, columns=bt.gold.columns, rows=[row])
        score = score_response(bt.task, gold, result.content)
        acc = cell_accuracy(score, len(bt.gold.columns) - 1)
        header = table_line(parsed.header)
        row_found = score.matched_rows == 1
        named = {norm_column(h): h for h in parsed.header}  # the scorer's column names, as the header writes them
        return {
            "task": bt.task.instance_id,
            "place": name,
            "cell_accuracy": acc,
            "header_right": any(ln.strip() == header for ln in result.content.splitlines()),
            "cells_if_header_right": header_blind_accuracy(bt.task, gold, parsed.header, result.content),
            "plan": plan,
            "plan_right": plan == expert_plan,
            "plan_repeats": len(set(plan)) < len(plan),
            "filtered": parsed.filter is not None,
            # with the check tool: the model's checks, and whether its first asks what the expert's does
            "checks": checks,
            "check_right": checks[:1] == expert_checks[:1] if expert_checks else None,
            "row_found": row_found,
            # the columns of a found row that are wrong or missing: which values are copied wrong
            "wrong_columns": [named.get(c, c) for c in [w.column for w in score.wrong_cells] + list(score.missing_columns)]
            if row_found
            else [],
            "wrong_sources": wrong_cell_sources(score, result.content, row, bt.gold.columns[1:], tool_results(trace)) if row_found else [],
            "columns": [named.get(c, c) for c in bt.gold.columns[1:]],
            "steps": result.steps,
            "stop": result.stop_reason,
            "reply": result.content,  # what the model answered, to read when the figure is low
        }

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(*j) for group in places for j in group))
    starts = list(itertools.accumulate((len(g) for g in places), initial=0))
    by_place = [[r["cell_accuracy"] for r in results[a:b]] for a, b in itertools.pairwise(starts)]
    return {
        "lookups": len(results),
        "places": len(places),
        "one_field": one_field,
        # a place's share of cells right, averaged over places: with one_field, its look-ups' mean
        "cell_accuracy": mean_or_none([statistics.mean(cells) for cells in by_place]),
        "all_cells_right": mean_or_none([min(cells) == 1.0 for cells in by_place]),
        "mean_steps": mean_or_none([r["steps"] for r in results]),
        "budget_ended": mean_or_none([r["stop"] == "max_steps" for r in results]),
        # diagnostics (see header_blind_accuracy): where a 0 comes from
        "header_right": mean_or_none([r["header_right"] for r in results]),
        "cells_if_header_right": mean_or_none([r["cells_if_header_right"] for r in results]),
        "plan_right": mean_or_none([r["plan_right"] for r in results]),
        "cells_if_plan_right": mean_or_none([r["cell_accuracy"] for r in results if r["plan_right"]]),
        "cells_if_plan_wrong": mean_or_none([r["cell_accuracy"] for r in results if not r["plan_right"]]),
        "plan_repeats": mean_or_none([r["plan_repeats"] for r in results]),
        "with_filter": sum(r["filtered"] for r in results),
        "cells_with_filter": mean_or_none([r["cell_accuracy"] for r in results if r["filtered"]]),
        "cells_without_filter": mean_or_none([r["cell_accuracy"] for r in results if not r["filtered"]]),
        "no_row": mean_or_none([not r["row_found"] for r in results]),
        "wrong_by_column": wrong_by_column(results),
        "wrong_sources": dict(Counter(w for r in results for w in r["wrong_sources"]).most_common()),
        "comparisons": comparison_figures([r["reply"] for r in results]),
        "checked": sum(bool(r["checks"]) for r in results),
        "check_right": mean_or_none([r["check_right"] for r in results if r["check_right"] is not None]),
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": results,
    }


def wrong_by_column(results: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """For each column, of the look-ups whose reply has a row for the place: how many asked for
    it (``of``) and how many got it wrong or left it out (``wrong``); most wrong first."""
    asked: Counter[str] = Counter(c for r in results if r["row_found"] for c in r["columns"])
    wrong: Counter[str] = Counter(c for r in results for c in r["wrong_columns"])
    order = sorted(asked, key=lambda c: (-wrong[c], -asked[c], c))
    return {c: {"wrong": wrong[c], "of": asked[c]} for c in order}


def verdict_balanced(lookups: dict[str, Any], left_out: dict[str, Any]) -> float | None:
    """The look-ups that carry a verdict, kept and left out weighted equally: the mean of the filtered
    look-ups' cell accuracy (gold rows, to be kept) and the share of left-out look-ups answered
    without a row. A verdict that ignores the values and always keeps (or always leaves out) scores
    at most 0.5, whichever way it leans; None without filtered look-ups or left-out ones."""
    kept, out = lookups.get("cells_with_filter"), left_out.get("right")
    return None if kept is None or out is None else (kept + out) / 2


def most_wrong(by_column: dict[str, dict[str, int]], n: int = 3) -> str:
    worst = [f"{c} {v['wrong']} of {v['of']}" for c, v in list(by_column.items())[:n] if v["wrong"]]
    return ", ".join(worst) or "none"


async def left_out_lookups(
    model: Any, world: World, bench_tasks: list[Any], n: int, concurrency: int, rng: random.Random, max_steps: int,
    repeated_calls: RepeatedCalls = "answer", tools: Toolset | None = None,
) -> dict[str, Any]:
    """Look-ups of places a filtered task leaves out (its region's places that are no gold row):
    right when the reply's table has no row for the place. Every place :func:`lookups` asks for
    is a gold row, so a model that always keeps scores well there; these ask the other way."""
    tools = tools or world_tools(world)
    jobs = []
    for bt in bench_tasks:
        parsed = parse_query(bt.task.query)
        if parsed is None or parsed.region is None or parsed.filter is None:
            continue
        kept = {row[0] for row in bt.gold.rows}
        members = region_members(world.docs[region_doc_id(parsed.region)].text)
        jobs += [(bt, parsed, name, code) for name, code in members if name not in kept]
    jobs = rng.sample(jobs, min(n, len(jobs)))
    gate = asyncio.Semaphore(concurrency)
    budgets = Budgets(max_orchestrator_steps=max_steps, repeated_calls=repeated_calls)

    async def one(bt: Any, parsed: Any, name: str, code: str) -> dict[str, Any]:
        agent = Agent(SUBAGENT, model, SUBAGENT_PROMPT, tools=tools, max_steps=max_steps)
        trace = Trace()
        async with gate:
            result = await agent.run(ExpertModel.subtask(parsed, [(name, code)]), budgets, trace)
        table, named = table_rows(result.content, name)
        return {
            "task": bt.task.instance_id, "place": name, "table": table is not None, "right": table is not None and not named,
            "steps": result.steps, "stop": result.stop_reason, "reply": result.content, "checks": check_arguments(trace),
        }

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(*j) for j in jobs))
    return {
        "lookups": len(results),
        "right": mean_or_none([r["right"] for r in results]),
        "no_table": mean_or_none([not r["table"] for r in results]),
        "budget_ended": mean_or_none([r["stop"] == "max_steps" for r in results]),
        "comparisons": comparison_figures([r["reply"] for r in results]),
        "checked": sum(bool(r["checks"]) for r in results),
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": results,
    }


async def single_mode(
    model: Any, world: World, bench_tasks: list[Any], concurrency: int, max_steps: int | None, traces: Path | None = None,
    calls_per_step: int | None = None, repeated_calls: RepeatedCalls = "answer", tools: Toolset | None = None,
) -> dict[str, Any]:
    tools = tools or world_tools(world)
    config = BenchConfig() if max_steps is None else BenchConfig().capped(max_steps)
    gate = asyncio.Semaphore(concurrency)

    async def one(bt: Any) -> dict[str, Any]:
        budgets = config.budgets_for(bt.rows).model_copy(
            update={"max_tool_calls_per_step": calls_per_step, "repeated_calls": repeated_calls}
        )
        swarm = Swarm(model, tools=tools, mode="single", budgets=budgets)
        async with gate:
            result = await swarm.run(bt.task.query)
        if traces is not None:
            result.trace.save_jsonl(traces / f"{bt.task.instance_id}.single.jsonl")
        score = score_response(bt.task, bt.gold, result.answer)
        return {
            "task": bt.task.instance_id,
            "rows": bt.rows,
            "item_f1": score.item_f1,
            "row_f1": score.row_f1,
            "success": score.success or 0.0,
            "steps": result.summary.steps,
            "stop": result.result.stop_reason,
            "error": score.error,
            "reply": result.answer,  # what the model answered, to read when the figure is low
        }

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(bt) for bt in bench_tasks))
    mean = lambda k: mean_or_none([r[k] for r in results])  # noqa: E731
    return {
        "tasks": len(results),
        "item_f1": mean("item_f1"),
        "row_f1": mean("row_f1"),
        "success": mean("success"),
        "mean_steps": mean("steps"),
        "ended_on_context": sum(r["stop"] == "error" and "fills its context" in r["reply"] for r in results),
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": results,
    }


async def first_turns(
    model: Any, world: World, bench_tasks: list[Any], concurrency: int, tools: Toolset | None = None
) -> dict[str, Any]:
    """Each task's first single-mode step: does its first tool call name the task's region?"""
    tools = tools or world_tools(world)
    gate = asyncio.Semaphore(concurrency)

    async def one(bt: Any) -> dict[str, Any]:
        spec = TaskSpec.model_validate(bt.task.spec)
        swarm = Swarm(model, tools=tools, mode="single", budgets=BenchConfig().capped(1).budgets_for(bt.rows))
        async with gate:
            result = await swarm.run(bt.task.query)
        calls = [e for e in result.trace.events if isinstance(e, ToolStarted)]
        first = calls[0] if calls else None
        name = REGION_NAMES[spec.region]
        right = first is not None and (
            (first.tool == "search" and name.lower() in first.arguments.lower())
            or opened_region(first.tool, first.arguments) == spec.region
        )
        return {
            "task": bt.task.instance_id, "region": name, "phrasing": spec.phrasing, "right": right,
            "call": None if first is None else f"{first.tool} {first.arguments}",
        }

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(bt) for bt in bench_tasks))
    by_phrasing = {
        str(p): mean_or_none([r["right"] for r in results if r["phrasing"] == p])
        for p in sorted({r["phrasing"] for r in results})
    }
    return {
        "tasks": len(results),
        "region_right": mean_or_none([r["right"] for r in results]),
        "by_phrasing": by_phrasing,
        "seconds": round(time.perf_counter() - t0, 1),
        "runs": results,
    }


def figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def cap_replies(model: Any, max_new_tokens: int | None) -> None:
    """Cap each reply of a local model (others have no sampling settings to cap)."""
    if max_new_tokens is not None and hasattr(model, "sampling"):
        model.sampling = model.sampling.model_copy(update={"max_new_tokens": max_new_tokens})


def overflow_folds(model: Any) -> int:
    """Prompts a local model folded because they filled its context (0 for other models)."""
    stats = getattr(model, "stats", None)
    return int(getattr(stats, "overflow_folds", 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--world-seed", type=int, default=1000)
    parser.add_argument("--split", default="test")
    parser.add_argument("--lookups", type=int, default=120, help="sub-agent look-ups to run (0: none)")
    parser.add_argument(
        "--left-out", type=int, default=0,
        help="also look up this many places a filtered task leaves out: right when the reply has no row for it",
    )
    parser.add_argument("--max-rows", type=int, default=10, help="single mode: tasks of at most this many rows (-1: skip)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--one-field", action="store_true",
        help="diagnostic: ask each drawn place's columns one look-up at a time (the same places; cell accuracy still a "
        "place's share of cells right), to see what the alignment of a row's cells with its reads costs",
    )  # fmt: skip
    parser.add_argument("--lookup-steps", type=int, default=12, help="step budget of a look-up sub-agent (the expert needs 3-6)")
    parser.add_argument(
        "--single-steps", type=int, default=None,
        help="step budget in single mode (default: the bench's tiers); the find expert needs up to 25 (43 with --check-tool) "
        "on the test split's tasks of <= 10 rows (a filtered task reads every place of its region), so with 20 even it scores 0.8",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="single mode: only the first N tasks")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="cap each reply of a local model")
    parser.add_argument(
        "--single-max-new-tokens", type=int, default=None,
        help="cap each reply in single mode instead (its answer is a whole table; default: --max-new-tokens)",
    )
    parser.add_argument(
        "--calls-per-step", type=int, default=None,
        help="tool calls an agent may make in one reply (Budgets.max_tool_calls_per_step; default: no cap)",
    )
    parser.add_argument(
        "--repeated-calls", choices=get_args(RepeatedCalls), default="answer",
        help="what the runtime does with a step that only repeats the previous step's calls (Budgets.repeated_calls): "
        "'answer' (the default) does not run them and asks the next step with tool calls off; 'run' runs them, "
        "the model alone",
    )
    parser.add_argument(
        "--fold-on-overflow", choices=("on", "off"), default="on",
        help="a local model's prompt that fills its context is folded to the turns' notes (LocalSettings.fold_on_overflow; "
        "'on', the default) or fails the agent ('off')",
    )
    parser.add_argument(
        "--check-tool", action="store_true",
        help="offer the world's check tool too (world_tools(check=True)), even to a model not trained with it; a model "
        "whose settings say it was (LocalSettings.check_tool, from SFT's data.check_tool) is offered it without this",
    )
    parser.add_argument(
        "--traces", type=Path, default=None,
        help="save each run's trace (JSONL) in this folder: TASK.CODE.lookup.jsonl, TASK.single.jsonl",
    )
    parser.add_argument(
        "--first-turns", action="store_true",
        help="also start every task of the split in single mode for one step: is its region the one read?",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures and every run as JSON")
    args = parser.parse_args()

    model = load_model(args.model)
    cap_replies(model, args.max_new_tokens)
    if hasattr(model, "settings"):
        model.settings = model.settings.model_copy(update={"fold_on_overflow": args.fold_on_overflow == "on"})
    real = Factbook.load()
    world = World.load(args.world_seed, base=real)
    tasks = make_tasks(args.split, world.factbook, real=real, world_seed=args.world_seed)
    with tempfile.TemporaryDirectory() as tmp:
        tasks_file, gold_dir = write_tasks(tasks, tmp)
        every, errors, _ = load_bench_tasks(tasks_file, gold_dir, world_seed=args.world_seed)
        small, _, _ = load_bench_tasks(
            tasks_file, gold_dir, world_seed=args.world_seed, max_rows=max(args.max_rows, 0), limit=args.limit
        )
    if errors:
        raise SystemExit(f"bad tasks: {errors[0]}")
    tools = offer_check(world_tools(world, check=args.check_tool), model)  # check: on request, or as the model was trained
    report: dict[str, Any] = {
        "model": model.name, "world_seed": args.world_seed, "split": args.split, "calls_per_step": args.calls_per_step,
        "repeated_calls": args.repeated_calls, "fold_on_overflow": args.fold_on_overflow,
        "check_tool": "check" in tools.names(),
    }

    def save() -> None:  # after each part, so a long second part loses nothing
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.traces is not None:
        args.traces.mkdir(parents=True, exist_ok=True)
    if args.lookups:
        report["subagent_lookups"] = asyncio.run(
            lookups(
                model, world, every, args.lookups, args.concurrency, random.Random(args.seed), args.lookup_steps,
                args.calls_per_step, args.traces, args.repeated_calls, tools, args.one_field,
            )
        )
        lk = report["subagent_lookups"]
        counted = f"{lk['places']} places, one look-up a column ({lk['lookups']})" if args.one_field else lk["lookups"]
        print(
            f"{model.name} · world seed {args.world_seed} · {args.split}: sub-agent look-ups {counted}, "
            f"cell accuracy {lk['cell_accuracy']:.3f}, rows all right {lk['all_cells_right']:.3f}, "
            f"{lk['mean_steps']:.1f} steps, {lk['seconds']}s; diagnostics: no row for the place {lk['no_row']:.3f} "
            f"(step budget used up {lk['budget_ended']:.3f}), most wrong columns of the rows written: "
            f"{most_wrong(lk['wrong_by_column'])} (where the wrong cells came from: "
            f"{', '.join(f'{k} {v}' for k, v in lk['wrong_sources'].items()) or 'none'}); header right {lk['header_right']:.3f}, "
            f"cell accuracy had the header been right {lk['cells_if_header_right']:.3f}; "
            f"plan as the find expert's {lk['plan_right']:.3f} (cell accuracy then {figure(lk['cells_if_plan_right'])}, "
            f"else {figure(lk['cells_if_plan_wrong'])}), a find asked twice {lk['plan_repeats']:.3f}; "
            f"cell accuracy with the task's filter {figure(lk['cells_with_filter'])} ({lk['with_filter']} look-ups), "
            f"without {figure(lk['cells_without_filter'])}; {comparisons_said(lk['comparisons'])}; "
            f"look-ups that called check {lk['checked']}, first check as the expert's {figure(lk['check_right'])}"
        )
        save()
    if args.left_out:
        report["left_out_lookups"] = asyncio.run(
            left_out_lookups(
                model, world, every, args.left_out, args.concurrency, random.Random(args.seed), args.lookup_steps,
                args.repeated_calls, tools,
            )
        )
        lo = report["left_out_lookups"]
        if args.lookups:
            report["verdict_balanced"] = verdict_balanced(report["subagent_lookups"], lo)
        print(
            f"{model.name} · world seed {args.world_seed} · {args.split}: look-ups of {lo['lookups']} places the filter leaves out: "
            f"no row for the place {figure(lo['right'])} (no table at all {figure(lo['no_table'])}, step budget used up {figure(lo['budget_ended'])}), "
            f"{lo['seconds']}s; verdict balanced (with the filtered look-ups) {figure(report.get('verdict_balanced'))}; "
            f"{comparisons_said(lo['comparisons'])}; look-ups that called check {lo['checked']}"
        )
        save()
    if args.first_turns:
        report["first_turns"] = asyncio.run(first_turns(model, world, every, args.concurrency, tools))
        ft = report["first_turns"]
        print(
            f"{model.name} · world seed {args.world_seed} · {args.split}: first turns of {ft['tasks']} tasks: "
            f"region right {ft['region_right']:.3f}; by phrasing "
            + ", ".join(f"{p}: {figure(v)}" for p, v in ft["by_phrasing"].items())
            + f"; {ft['seconds']}s"
        )
        save()
    if args.max_rows >= 0 and args.limit != 0:
        cap_replies(model, args.single_max_new_tokens)
        folds_before = overflow_folds(model)
        report["single_mode"] = asyncio.run(
            single_mode(
                model, world, small, args.concurrency, args.single_steps, args.traces, args.calls_per_step,
                args.repeated_calls, tools,
            )
        )
        sm = report["single_mode"]
        sm["overflow_folds"] = overflow_folds(model) - folds_before
        print(
            f"{model.name} · world seed {args.world_seed} · {args.split}: single mode on {sm['tasks']} tasks of ≤ {args.max_rows} rows: "
            f"Item-F1 {sm['item_f1']:.3f}, Row-F1 {sm['row_f1']:.3f}, success {sm['success']:.3f}, "
            f"{sm['mean_steps']:.1f} steps, {sm['seconds']}s; prompts folded at the context's end {sm['overflow_folds']}, "
            f"runs ended on the context {sm['ended_on_context']}"
        )
        save()


if __name__ == "__main__":
    main()
