"""benchmarks/nano_eval.py: the harness scores the scripted expert 1.0, and its diagnostics
tell a wrong header from wrong values."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("bm25s")

from script_support import benchmark_module  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "nano_eval.py"


def _module():  # type: ignore[no-untyped-def]
    return benchmark_module("nano_eval")


def test_the_expert_scores_one_on_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "expert", "--world-seed", "1000", "--lookups", "6", "--max-rows", "-1",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lookups = json.loads(out.read_text())["subagent_lookups"]
    assert lookups["lookups"] == 6
    assert lookups["cell_accuracy"] == lookups["header_right"] == lookups["cells_if_header_right"] == 1.0
    assert lookups["no_row"] == 0.0
    assert lookups["wrong_by_column"] and all(v["wrong"] == 0 for v in lookups["wrong_by_column"].values())
    assert lookups["wrong_sources"] == {} and all(r["wrong_sources"] == [] for r in lookups["runs"])
    from parlswarm.world.fields import FIELDS

    # columns named as the task's header writes them ("Highest point"), not as the scorer keys them
    assert set(lookups["wrong_by_column"]) <= {f.label for f in FIELDS}


def one_row_task(min_fields: int, distinct: bool = False):  # type: ignore[no-untyped-def]
    """A test-split task (world seed 0) of at least ``min_fields`` fields, with ``distinct`` one whose first row's cells
    all differ: the task, its WideSearch form, that row, a gold table of that row alone, and the task's header."""
    from parlswarm.scoring import GoldTable, WideSearchTask
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import header, make_tasks

    task = next(
        t for t in make_tasks("test", Factbook.load())
        if len(t.spec.fields) >= min_fields and (not distinct or len(set(t.rows[0])) == len(t.rows[0]))
    )  # fmt: skip
    wst = WideSearchTask.model_validate(task.line())
    row = task.rows[0]
    gold = GoldTable(instance_id=task.instance_id, columns=[c.lower() for c in wst.evaluation.required], rows=[row])
    return task, wst, row, gold, header(task.spec)


def test_a_wrong_header_scores_zero_but_the_diagnostic_sees_the_right_values() -> None:
    nano_eval = _module()
    _, wst, row, gold, columns = one_row_task(2)
    right = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n| " + " | ".join(row) + " |"
    wrong_header = right.replace(columns[2], columns[1], 1)  # a column repeated, as the nano model does
    swapped = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n| " + " | ".join([row[0], row[2], row[1], *row[3:]]) + " |"
    n = len(columns) - 1
    assert nano_eval.cell_accuracy(nano_eval.score_response(wst, gold, right), n) == 1.0
    assert nano_eval.cell_accuracy(nano_eval.score_response(wst, gold, wrong_header), n) == 0.0
    assert nano_eval.header_blind_accuracy(wst, gold, columns, wrong_header) == 1.0
    assert nano_eval.header_blind_accuracy(wst, gold, columns, swapped) < 1.0
    assert nano_eval.header_blind_accuracy(wst, gold, columns, "no table") == 0.0


def test_wrong_cells_are_traced_to_another_column_to_what_was_read_or_to_nothing_read() -> None:
    nano_eval = _module()
    _, wst, row, gold, columns = one_row_task(3, distinct=True)

    def sources(cells: list[str], read: str) -> list[str]:
        reply = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n| " + " | ".join(cells) + " |"
        return nano_eval.wrong_cell_sources(nano_eval.score_response(wst, gold, reply), reply, row, gold.columns[1:], read)

    assert sources(row, "") == []
    # the second column's value written for the first: the value read for the wrong column
    assert sources([row[0], row[2], *row[2:]], "") == ["another_column"]
    assert sources([row[0], "Nowhere Peak", *row[2:]], "## Elevation\nhighest point: Nowhere Peak 652 m") == ["read"]
    assert sources([row[0], "Nowhere Peak", *row[2:]], "## Elevation\nhighest point: Te Manga 652 m") == ["not_read"]
    # numbers compare as numbers, with the page's thousands separators
    assert sources([row[0], "123456789", *row[2:]], "total: 123,456,789 (2025 est.)") == ["read"]
    assert sources([row[0], "", *row[2:]], "") == ["empty"]


def test_one_field_look_ups_ask_and_score_each_column_alone() -> None:
    from parlswarm.bench import BenchTask
    from parlswarm.world.tasks import parse_query

    nano_eval = _module()
    task, wst, row, gold, columns = one_row_task(3, distinct=True)
    parsed = parse_query(task.query)
    split = nano_eval.one_field_lookups(BenchTask(task=wst, gold=gold), parsed, row)
    assert len(split) == len(columns) - 1
    for k, (bt, one, cells) in enumerate(split, start=1):
        assert one.header == [columns[0], columns[k]] and one.columns == [parsed.columns[k - 1]]
        assert one.filter == parsed.filter and cells == [row[0], row[k]]
        assert bt.task.instance_id == f"{task.instance_id}.{k}" and bt.gold.rows == [[row[0], row[k]]]
        right = f"| {columns[0]} | {columns[k]} |\n|---|---|\n| {row[0]} | {row[k]} |"
        other = f"| {columns[0]} | {columns[k]} |\n|---|---|\n| {row[0]} | {row[k % (len(columns) - 1) + 1]} |"
        assert nano_eval.cell_accuracy(nano_eval.score_response(bt.task, bt.gold, right), 1) == 1.0
        assert nano_eval.cell_accuracy(nano_eval.score_response(bt.task, bt.gold, other), 1) == 0.0
    assert wst.evaluation.required == gold.columns  # the whole task's own columns untouched


def test_the_expert_answers_one_field_look_ups_of_the_same_places(tmp_path: Path) -> None:
    def run(*extra: str) -> dict:  # type: ignore[type-arg]
        out = tmp_path / "eval.json"
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--model", "expert:find", "--world-seed", "1000", "--lookups", "3",
             "--max-rows", "-1", "--out", str(out), *extra],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(out.read_text())["subagent_lookups"]

    whole, split = run(), run("--one-field")
    assert split["places"] == whole["lookups"] == 3 and split["one_field"] and not whole["one_field"]
    assert split["lookups"] == sum(len(r["columns"]) for r in whole["runs"])
    assert [r["place"] for r in split["runs"]] == [r["place"] for r in whole["runs"] for _ in r["columns"]]
    assert all(len(r["columns"]) == 1 for r in split["runs"]) and split["cell_accuracy"] == 1.0


def test_a_look_up_cut_by_its_step_budget_is_counted(tmp_path: Path) -> None:
    # The find expert needs two steps (finds, then the answer); with one it is cut after its finds.
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "expert:find", "--world-seed", "1000", "--lookups", "3",
         "--lookup-steps", "1", "--max-rows", "-1", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    lookups = json.loads(out.read_text())["subagent_lookups"]
    assert lookups["budget_ended"] == 1.0
    assert all(r["stop"] == "max_steps" and r["cell_accuracy"] == 0.0 for r in lookups["runs"])
    assert "step budget used up 1.000" in proc.stdout
    assert lookups["no_row"] == 1.0 and lookups["wrong_by_column"] == {}  # no row written: no column to blame


def test_wrong_cells_are_counted_by_column_over_the_rows_written() -> None:
    nano_eval = _module()
    runs = [
        {"row_found": True, "columns": ["Capital", "Highest point"], "wrong_columns": ["Highest point"]},
        {"row_found": True, "columns": ["Highest point", "Population"], "wrong_columns": ["Highest point", "Population"]},
        {"row_found": True, "columns": ["Capital"], "wrong_columns": []},
        {"row_found": False, "columns": ["Capital", "Population"], "wrong_columns": []},  # no row: not counted
    ]
    by_column = nano_eval.wrong_by_column(runs)
    assert by_column == {
        "Highest point": {"wrong": 2, "of": 2}, "Population": {"wrong": 1, "of": 1}, "Capital": {"wrong": 0, "of": 2},
    }
    assert list(by_column) == ["Highest point", "Population", "Capital"]  # most wrong first
    assert nano_eval.most_wrong(by_column, 2) == "Highest point 2 of 2, Population 1 of 1"
    assert nano_eval.most_wrong({"Capital": {"wrong": 0, "of": 2}}) == "none"


def test_calls_per_step_reaches_the_look_ups(tmp_path: Path) -> None:
    # The find expert reads a place's columns with several find calls in one reply; capped at
    # one, the others are refused and it answers without their values.
    figures = {}
    for cap in ([], ["--calls-per-step", "1"]):
        out = tmp_path / f"eval{len(cap)}.json"
        traces = tmp_path / f"traces{len(cap)}"
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), "--model", "expert:find", "--world-seed", "1000", "--lookups", "4",
             "--max-rows", "-1", *cap, "--traces", str(traces), "--out", str(out)],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        report = json.loads(out.read_text())
        lookups = report["subagent_lookups"]
        figures[report["calls_per_step"]] = (lookups["cell_accuracy"], lookups["plan_right"], lookups["cells_if_plan_right"])
        assert lookups["plan_repeats"] == 0.0
        assert lookups["budget_ended"] == 0.0  # the expert answers within the 12-step default
        assert len(list(traces.glob("*.lookup.jsonl"))) == 4  # each look-up's trace, to read when a figure is low
        filtered = [r["cell_accuracy"] for r in lookups["runs"] if r["filtered"]]
        assert lookups["with_filter"] == len(filtered)
        assert lookups["cells_with_filter"] == (sum(filtered) / len(filtered) if filtered else None)
    # Uncapped, the expert's plan is its own; capped, only each reply's first find runs.
    assert figures[None] == (1.0, 1.0, 1.0)
    assert figures[1][0] < 1.0 and figures[1][1:] == (0.0, None)


def test_comparison_lines_are_checked_against_the_numbers_written() -> None:
    nano_eval = _module()
    figures = nano_eval.comparison_figures(
        [
            "Palau (ps): Coastline (km) = 1885 vs 0400: above, wanted above: kept\n| Palau | 1885 |",
            "Chad (cd): Internet users (%) = 79 vs 91: above, wanted below: left out\n"
            "Peru (pe): Coastline (km) = 1519 vs 400: below, wanted above: kept",  # unaligned, wrong, verdict off
            "Chad (cd): Area = 12 vs 10: above: kept",  # a compared line: no wanted relation
            "Chad (cd): Area = 12.5.3 vs 10: above: kept",  # not numbers: not a line to check
            "no table at all",
        ]
    )
    assert figures == {
        "lines": 4, "aligned": 0.75, "relation_right": 0.5, "relation_right_if_aligned": 2 / 3,
        "relation_right_if_not": 0.0, "verdict_follows": 2 / 3,
    }
    assert nano_eval.comparison_figures(["| Chad | 12 |"])["relation_right"] is None


def test_a_plan_is_the_find_texts_in_order_a_malformed_call_as_written() -> None:
    from parlswarm.trace.events import ToolStarted

    nano_eval = _module()
    trace = nano_eval.Trace()
    for i, (tool, arguments) in enumerate(
        [("find", '{"doc_id": "gb", "text": "Area"}'), ("open_page", '{"doc_id": "gb"}'),
         ("find", '{"doc_id": "gb", "text": "Area"}'), ("find", '{"doc_id": "gb", "text": "Coast')]
    ):
        trace.emit(ToolStarted(agent_id="a", step=1, call_id=str(i), tool=tool, arguments=arguments))
    assert nano_eval.find_plan(trace) == ["Area", "Area", '{"doc_id": "gb", "text": "Coast']


def test_first_turns_see_the_region_the_task_names(tmp_path: Path) -> None:
    from parlswarm.bench import load_bench_tasks
    from parlswarm.models.scripted import ScriptedModel
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tasks import make_tasks, write_tasks
    from parlswarm.world.world import World

    nano_eval = _module()
    real = Factbook.load()
    world = World.load(1000, base=real)
    tasks_file, gold = write_tasks(make_tasks("test", world.factbook, real=real, world_seed=1000), tmp_path)
    bench_tasks, errors, _ = load_bench_tasks(tasks_file, gold, world_seed=1000)
    assert not errors
    search = {"tool_calls": [{"name": "search", "arguments": {"query": "South Asia countries and territories"}}]}
    report = asyncio.run(nano_eval.first_turns(ScriptedModel([search]), world, bench_tasks, 8))
    south = [r["right"] for r in report["runs"] if r["region"] == "South Asia"]
    assert south and all(south) and report["region_right"] == len(south) / len(bench_tasks)
    opened = {"tool_calls": [{"name": "open_page", "arguments": {"doc_id": "region/central-asia"}}]}
    report = asyncio.run(nano_eval.first_turns(ScriptedModel([opened]), world, bench_tasks, 8))
    assert {r["region"] for r in report["runs"] if r["right"]} == {"Central Asia"}
    out = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "expert", "--world-seed", "1000", "--lookups", "0", "--max-rows", "-1",
         "--first-turns", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    first = json.loads(out.read_text())["first_turns"]
    assert first["tasks"] == len(bench_tasks) and first["region_right"] == 1.0
    assert set(first["by_phrasing"].values()) == {1.0}


def test_left_out_look_ups_are_right_without_a_row_and_wrong_for_a_model_that_keeps_all() -> None:
    import random
    import re

    from parlswarm.bench import load_bench_tasks
    from parlswarm.types import ModelResponse, content_text
    from parlswarm.world.expert import table_line
    from parlswarm.world.tasks import make_tasks, parse_query, write_tasks
    from parlswarm.world.world import World

    nano_eval = _module()
    world = World.load(1000)
    with __import__("tempfile").TemporaryDirectory() as tmp:
        tasks_file, gold_dir = write_tasks(make_tasks("test", world.factbook, world_seed=1000), tmp)
        bench_tasks, _, _ = load_bench_tasks(tasks_file, gold_dir, world_seed=1000)

    class KeepsAll:  # answers every sub-task with a row for its place, values made up
        name = "keeps-all"

        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            task_text = content_text(messages[1].content)
            place = re.search(r"^- (.+) \(\w+\)$", task_text, re.M)
            assert place is not None, task_text
            header = parse_query(task_text).header  # type: ignore[union-attr]
            rows = [table_line(header), table_line(["---"] * len(header)), table_line([place.group(1), *["1"] * (len(header) - 1)])]
            return ModelResponse.model_validate({"message": {"role": "assistant", "content": "\n".join(rows)}})

    expert = asyncio.run(nano_eval.left_out_lookups(nano_eval.load_model("expert:find"), world, bench_tasks, 8, 4, random.Random(0), 12))
    keeps = asyncio.run(nano_eval.left_out_lookups(KeepsAll(), world, bench_tasks, 8, 4, random.Random(0), 12))
    assert expert["lookups"] == keeps["lookups"] == 8
    assert [r["place"] for r in expert["runs"]] == [r["place"] for r in keeps["runs"]]  # the same places
    assert expert["right"] == 1.0 and expert["no_table"] == 0.0
    assert keeps["right"] == 0.0 and keeps["no_table"] == 0.0
    for run in expert["runs"]:  # every place asked for is one the task's gold table leaves out
        gold = next(bt.gold for bt in bench_tasks if bt.task.instance_id == run["task"])
        assert run["place"] not in {row[0] for row in gold.rows}


def test_the_balanced_verdict_gives_a_lean_alone_at_most_one_half() -> None:
    nano_eval = _module()
    always_kept = nano_eval.verdict_balanced({"cells_with_filter": 1.0}, {"right": 0.0})
    always_out = nano_eval.verdict_balanced({"cells_with_filter": 0.0}, {"right": 1.0})
    assert always_kept == always_out == 0.5
    assert nano_eval.verdict_balanced({"cells_with_filter": 0.8}, {"right": 0.6}) == pytest.approx(0.7)
    assert nano_eval.verdict_balanced({"cells_with_filter": None}, {"right": 0.6}) is None  # no filtered look-up
