"""Supervised warm start: recorded traces, teacher notes, the data mix, training, resume, CLI."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("bm25s")

from typer.testing import CliRunner  # noqa: E402

from parlswarm.cli import app  # noqa: E402
from parlswarm.parl.copy_task import CopyTaskConfig, Phrases, copy_batch  # noqa: E402
from parlswarm.parl.notes import NotingExpert, page_notes  # noqa: E402
from parlswarm.parl.sft import (  # noqa: E402
    Sample,
    SFTRun,
    _turn_refs,
    batches,
    check_answers,
    collate,
    draw_samples,
    evaluate,
    length_groups,
    masked_loss,
    sample_counts,
    verdict_positions,
    verdict_words,
)
from parlswarm.parl.sft_config import DataConfig, SFTConfig, TrainConfig  # noqa: E402
from parlswarm.parl.traces import RecordingModel, data_tasks, record_traces  # noqa: E402
from parlswarm.swarm import Swarm  # noqa: E402
from parlswarm.types import AssistantMessage, ToolMessage, content_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    from parlswarm.world.world import World

    return World.load(1)


@pytest.fixture(scope="module")
def small_task(world):  # type: ignore[no-untyped-def]
    from parlswarm.world.tasks import make_tasks

    tasks = make_tasks("dev", world.factbook, world_seed=1)
    return min(tasks, key=lambda t: (len(t.rows), t.instance_id))


def test_recorder_keeps_each_agent_conversation_as_the_runtime_fed_it(world, small_task) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.tools import world_tools

    recorder = RecordingModel(ExpertModel("auto", rows_per_agent=2))
    result = asyncio.run(Swarm(recorder, tools=world_tools(world), mode="swarm").run(small_task.query))
    conversations = recorder.conversations()
    assert len(conversations) == 1 + result.summary.subagents
    orchestrator = next(msgs for msgs, tools in conversations if any(t.name == "assign_task" for t in tools))
    assert orchestrator[0].role == "system" and orchestrator[1].content == small_task.query
    assert orchestrator[-1].role == "assistant" and orchestrator[-1].content == result.answer
    # Every tool call is answered by a tool message with its id, in the order of the calls.
    for msgs, _ in conversations:
        pending = []
        for m in msgs:
            if isinstance(m, AssistantMessage):
                assert not pending
                pending = [c.id for c in m.tool_calls or []]
            elif isinstance(m, ToolMessage):
                assert m.tool_call_id == pending.pop(0)


@pytest.mark.parametrize("reader", ["pages", "find"])
def test_noting_expert_writes_the_values_of_the_page_it_read(world, small_task, reader) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.tools import world_tools

    recorder = RecordingModel(NotingExpert(ExpertModel("serial", reader=reader)))
    result = asyncio.run(Swarm(recorder, tools=world_tools(world), mode="single").run(small_task.query))
    (messages, _), = recorder.conversations()
    notes = "\n".join(m.content or "" for m in messages if isinstance(m, AssistantMessage))
    assert "Places: " in notes  # the region index, written down before it is folded away
    # Every gold row's values appear in the notes, as the table writes them.
    for row in small_task.rows:
        line = next(ln for ln in notes.splitlines() if ln.startswith(f"{row[0]} ("))
        place_notes = " ".join(ln for ln in notes.splitlines() if ln.startswith(f"{row[0]} ("))
        assert "left out" not in place_notes, line
        for cell in row[1:]:
            assert f"= {cell}" in place_notes
    if reader == "find":  # one note line per place, written in the turn after its find calls
        places = len(world.factbook.regions[small_task.spec.region].members)
        assert sum(1 for ln in notes.splitlines() if re.match(r"^.+ \([a-z]{2}\): ", ln)) == places
    # The final answer is the expert's own table after the notes of the last page.
    assert messages[-1].content == result.answer and "| Country |" in result.answer
    table = result.answer[result.answer.index("Here is the table") :]
    assert all(f"| {row[0]} |" in table for row in small_task.rows)
    assert page_notes(messages[:2]) == ""  # no page read yet: no notes


@pytest.mark.parametrize("style", ["row", "verbatim"])
def test_row_notes_are_the_rows_of_the_final_table(world, small_task, style) -> None:  # type: ignore[no-untyped-def]

    answer, messages = noted_run(world, small_task.query, style)
    turns = [m.content or "" for m in messages if isinstance(m, AssistantMessage)]
    notes = [ln for t in turns[:-1] for ln in t.splitlines()] + turns[-1][: turns[-1].index("Here is the table")].splitlines()
    table = answer[answer.index("Here is the table") :]
    table_rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith(("| Country", "| ---"))]
    gold = ["| " + " | ".join(row) + " |" for row in small_task.rows]
    assert sorted(table_rows) == sorted(gold)  # the expert's table is the gold one ...
    header_line = next(ln for ln in table.splitlines() if ln.startswith("| Country |"))
    noted_rows = [ln for ln in notes if ln.startswith("| ") and ln != header_line]
    assert noted_rows == table_rows  # ... and its rows were noted word for word
    places = len(world.factbook.regions[small_task.spec.region].members)
    left_out = [ln for ln in notes if ln.endswith(": left out")]
    assert len(table_rows) + len(left_out) == places  # every place noted once: its row, or left out
    assert not any(" = " in ln for ln in notes)  # no labelled values
    index = next(m for m in messages if isinstance(m, ToolMessage) and str(m.content).startswith("[doc region/"))
    listed = [ln for ln in str(index.content).splitlines() if ln.startswith("- ")]
    if style == "verbatim":  # the places as the region index lists them, line for line
        start = notes.index("Places:")
        assert notes[start + 1 : start + 1 + len(listed)] == listed
        assert turns[0] == header_line  # and the first turn notes the answer's header
    else:
        assert header_line not in notes
        (line,) = [ln for ln in notes if ln.startswith("Places: ")]
        assert line.count("), ") == len(listed) - 1


def test_checked_notes_write_the_row_before_the_verdict(world) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.tasks import make_tasks, parse_query

    task = min(
        (t for t in make_tasks("dev", world.factbook, world_seed=1) if t.spec.filter is not None),
        key=lambda t: (len(t.rows), t.instance_id),
    )
    parsed = parse_query(task.query)
    assert parsed is not None and parsed.filter is not None and parsed.filter_field is not None
    answer, messages = noted_run(world, task.query, "checked")
    turns = [m.content or "" for m in messages if isinstance(m, AssistantMessage)]
    header = "| " + " | ".join(parsed.header) + " |"
    assert turns[0] == header
    notes = [ln for t in turns[:-1] for ln in t.splitlines()] + turns[-1][: turns[-1].index("Here is the table")].splitlines()
    rows = [i for i, ln in enumerate(notes) if ln.startswith("| ") and ln != header]
    places = len(world.factbook.regions[task.spec.region].members)
    assert len(rows) == places  # every place is noted as its row, kept or not
    label = dict(zip(parsed.columns, parsed.header[1:])).get(parsed.filter_field, parsed.filter_field.label)
    kept, left_out = [], []
    for i in rows:
        verdict = notes[i + 1]  # with a filter, every row is followed by the filter's check
        assert verdict.startswith(f"{label}"), verdict
        if verdict.endswith(": left out"):
            left_out.append(notes[i])
        else:
            assert verdict.endswith(f"{parsed.filter.op} {parsed.filter_field.cell(parsed.filter.value)}: kept"), verdict
            kept.append(notes[i])
            if i + 2 < len(notes) and notes[i + 2].endswith(": no value: left out"):  # a column without a value
                left_out.append(kept.pop())
    gold = ["| " + " | ".join(row) + " |" for row in task.rows]
    assert kept == gold and len(left_out) == places - len(gold) > 0  # the rows kept are the answer's
    assert not any("?" in row for row in kept)
    assert answer == turns[-1] and all(row in answer for row in gold)
    with pytest.raises(ValueError, match="data.reader"):
        DataConfig(note_style="checked", reader="pages")


def noted_run(world, query: str, style: str, check: bool = False):  # type: ignore[no-untyped-def]
    """The serial ``find`` expert noting in ``style``, in single mode on ``query`` (with the world's check
    tool on offer, with ``check``): its answer and its one recorded conversation."""
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.tools import world_tools

    recorder = RecordingModel(NotingExpert(ExpertModel("serial", reader="find"), style=style))  # type: ignore[arg-type]
    result = asyncio.run(Swarm(recorder, tools=world_tools(world, check=check), mode="single").run(query))
    ((messages, _),) = recorder.conversations()
    return result.answer, messages


def smallest_filtered_task(world):  # type: ignore[no-untyped-def]
    """The dev task with a filter and the fewest rows in world seed 1, and its parsed form."""
    from parlswarm.world.tasks import make_tasks, parse_query

    task = min(
        (t for t in make_tasks("dev", world.factbook, world_seed=1) if t.spec.filter is not None),
        key=lambda t: (len(t.rows), t.instance_id),
    )
    parsed = parse_query(task.query)
    assert parsed is not None and parsed.filter is not None
    return task, parsed


@pytest.mark.parametrize("style", ["compared", "matched"])
def test_compared_notes_put_value_and_threshold_digit_under_digit_before_the_verdict(world, style) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.parl.notes import aligned_numbers, written_comparisons
    from parlswarm.world.tasks import make_tasks, parse_query

    assert aligned_numbers("1885", "400") == ("1885", "0400")
    assert aligned_numbers("2.04", "2.5") == ("2.04", "2.50")
    assert aligned_numbers("-66", "100") == ("-066", "100")
    assert aligned_numbers("7", "12.25") == ("07.00", "12.25")
    task = min(
        (t for t in make_tasks("dev", world.factbook, world_seed=1) if t.spec.filter is not None),
        key=lambda t: (len(t.rows), t.instance_id),
    )
    parsed = parse_query(task.query)
    assert parsed is not None and parsed.filter is not None and parsed.filter_field is not None

    def notes_of(style: str) -> tuple[list[str], str]:
        answer, messages = noted_run(world, task.query, style)
        turns = [m.content or "" for m in messages if isinstance(m, AssistantMessage)]
        assert answer == turns[-1]
        return [ln for t in turns[:-1] for ln in t.splitlines()] + turns[-1][: turns[-1].index("Here is the table")].splitlines(), answer

    compared, answer = notes_of(style)
    verbatim, verbatim_answer = notes_of("verbatim")
    table = answer[answer.index("Here is the table") :]
    assert table == verbatim_answer[verbatim_answer.index("Here is the table") :]  # the notes differ, not the table
    label = dict(zip(parsed.columns, parsed.header[1:])).get(parsed.filter_field, parsed.filter_field.label)
    checks = [ln for ln in compared if re.match(rf"^.+ \([a-z]{{2}}\): {re.escape(label)} = ", ln)]
    places = len(world.factbook.regions[task.spec.region].members)
    assert 0 < len(checks) <= places
    gold = ["| " + " | ".join(row) + " |" for row in task.rows]
    threshold = parsed.filter_field.cell(parsed.filter.value)
    for line in checks:
        m = re.match(r"^(.+) \(([a-z]{2})\): .* = (\S+) vs (\S+): (above|below|equal)(, wanted \w+)?: (kept|left out)$", line)
        assert m is not None, line
        name, _, mine, theirs, relation, wanted, verdict = m.groups()
        wanted_relation = {"above": "above", "below": "below", "exactly": "equal"}[parsed.filter.op]
        assert wanted == (f", wanted {wanted_relation}" if style == "matched" else None)  # the task's relation, beside the one found
        assert float(theirs) == float(threshold) and len(mine) == len(theirs)  # digit under digit
        value = float(mine)
        assert relation == ("above" if value > float(threshold) else "below" if value < float(threshold) else "equal")
        assert (verdict == "kept") == (relation == wanted_relation)
        row = next((g for g in gold if g.startswith(f"| {name} |")), None)
        after = compared[compared.index(line) + 1 : compared.index(line) + 2]
        if verdict == "left out":  # the filter's verdict is the place's only note
            assert row is None and not any(ln.startswith((f"| {name} |", f"{name} (")) for ln in after)
        elif row is not None:  # kept and answered: its row follows
            assert after == [row]
    # Without the comparisons the notes are the verbatim ones, less the places the filter left out.
    rest = [ln for ln in compared if ln not in checks]
    dropped = [ln for ln in verbatim if ln not in rest]
    assert all(ln.endswith(": left out") for ln in dropped)
    assert len(dropped) == sum(ln.endswith(": left out") for ln in checks)
    # What checks a model's lines (benchmarks/nano_eval.py) reads every line of the expert's as right.
    read = written_comparisons("\n".join(checks))
    assert len(read) == len(checks) and all(c.aligned and c.relation_right and c.verdict_follows is not False for c in read)
    assert all((c.wanted is None) == (style == "compared") for c in read)
    with pytest.raises(ValueError, match="data.reader"):
        DataConfig(note_style=style, reader="pages")


def test_verified_notes_ask_the_check_tool_and_copy_its_answer_as_the_verdict(world) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.tasks import filter_condition

    task, parsed = smallest_filtered_task(world)
    condition = filter_condition(parsed.filter)
    assert f"is {condition}" in task.query  # the condition is a copy of the task's words
    answer, messages = noted_run(world, task.query, "verified", check=True)
    gold = ["| " + " | ".join(row) + " |" for row in task.rows]
    assert answer.endswith("\n".join(gold) + "\n```")
    asked: dict[str, str] = {}  # place code -> the check's answer
    for i, m in enumerate(messages):
        if not isinstance(m, AssistantMessage):
            continue
        lines = (m.content or "").splitlines()
        checks = [c for c in m.tool_calls or [] if c.function.name == "check"]
        if checks:  # the row (if kept, the answer's), then the value and the condition, then the call
            (call,) = checks
            args = json.loads(call.function.arguments)
            assert args["condition"] == condition
            question = lines[-1]
            m2 = re.match(r"^(.+) \(([a-z]{2})\): .+ = (\S+), (.+)\?$", question)
            assert m2 is not None and m2.group(3) == args["value"] and m2.group(4) == condition, question
            answer = content_text(messages[i + 1].content)
            asked[m2.group(2)] = answer
            name = m2.group(1)
            assert lines[-2].startswith(f"| {name} |") and (answer.startswith("yes") == (lines[-2] in gold))
        for line in lines:
            v = re.match(r"^(.+) \(([a-z]{2})\): (yes: kept|no: left out)$", line)
            if v is not None:  # a verdict copies the answer just above it
                assert asked[v.group(2)].split(":")[0] == v.group(3).split(":")[0]
                assert content_text(messages[i - 1].content) == asked[v.group(2)]
    assert sum(a.startswith("yes") for a in asked.values()) == len(gold) and len(asked) > len(gold)
    with pytest.raises(ValueError, match="data.check_tool"):
        DataConfig(note_style="verified", reader="find")
    with pytest.raises(ValueError, match="data.reader"):
        DataConfig(check_tool=True, reader="pages")


@pytest.mark.parametrize("style", ["cells", "lower_cells", "numbered_cells"])
def test_cell_notes_write_each_cell_on_a_line_of_its_own_before_its_row(world, style) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.parl.notes import cell_lines, lower_label, numbered_columns
    from parlswarm.world.expert import table_line
    from parlswarm.world.tasks import make_tasks, parse_query

    assert [lower_label(h) for h in ("Highest point", "Coastline (km)", "Real GDP per capita (USD)")] == [
        "highest point",
        "coastline",
        "real gdp per capita",
    ]
    assert cell_lines(["Highest point", "Coastline (km)"], ["Mount Kenya", "6609"], "cells") == [
        "Highest point = Mount Kenya",
        "Coastline (km) = 6609",
    ]
    assert cell_lines(["Highest point", "Coastline (km)"], ["Mount Kenya", "6609"], "lower_cells") == [
        "highest point: Mount Kenya",
        "coastline: 6609",
    ]
    assert cell_lines(["Highest point", "Coastline (km)"], ["Mount Kenya", "6609"], "numbered_cells") == [
        "1. Highest point = Mount Kenya",
        "2. Coastline (km) = 6609",
    ]

    tasks = make_tasks("dev", world.factbook, world_seed=1)
    elevation = min((t for t in tasks if "| Highest point |" in t.query or "Lowest point" in t.query), key=lambda t: (len(t.rows), t.instance_id))
    filtered, _ = smallest_filtered_task(world)
    unfiltered = min((t for t in tasks if t.spec.filter is None), key=lambda t: (len(t.rows), t.instance_id))
    elevation_cells = 0
    for task in {t.instance_id: t for t in (elevation, filtered, unfiltered)}.values():
        parsed = parse_query(task.query)
        assert parsed is not None
        answer, messages = noted_run(world, task.query, style, check=True)
        verified_answer, verified = noted_run(world, task.query, "verified", check=True)
        table = answer[answer.index("Here is the table") :]
        assert table == verified_answer[verified_answer.index("Here is the table") :]  # the notes differ, not the table
        header = parsed.header[1:]
        starts = tuple(cell_lines(header, [""] * len(header), style))  # each line up to its value
        listed = numbered_columns(header) if style == "numbered_cells" else []
        results = "\n".join(content_text(m.content) for m in messages if isinstance(m, ToolMessage))
        rows = 0
        for mine, theirs in zip(
            [m for m in messages if isinstance(m, AssistantMessage)], [m for m in verified if isinstance(m, AssistantMessage)], strict=True
        ):
            lines = (mine.content or "").splitlines()
            kept = [ln for ln in lines if not ln.startswith(starts) and ln not in listed]
            assert "\n".join(kept) == (theirs.content or "")  # the verified notes, with the cell lines added
            notes = lines[: lines.index("Here is the table, read from the World Factbook pages:")] if "```" in (mine.content or "") else lines
            for i, line in enumerate(notes):
                if not line.startswith("| ") or line.startswith("| Country |") or line.startswith("| ---"):
                    continue
                cells = [c.strip() for c in line.strip("|").split("|")][1:]
                assert lines[i - len(cells) : i] == cell_lines(header, cells, style)
                rows += 1
                for label, cell in zip(header, cells, strict=True):
                    if label in ("Highest point", "Lowest point"):  # the find result's line: its label, then the value
                        assert f"\n{label.lower()}: {cell}" in results
                        elevation_cells += 1
        assert rows >= len(task.rows)
        first = (next(m for m in messages if isinstance(m, AssistantMessage)).content or "").splitlines()
        assert first == [table_line(parsed.header), *listed]  # the header row, then (numbered_cells) the numbered columns
    assert elevation_cells > 0
    with pytest.raises(ValueError, match="data.check_tool"):
        DataConfig(note_style=style, reader="find")


def test_tracked_notes_name_the_next_place_and_end_with_none_before_the_answer(world) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.agent import Agent
    from parlswarm.types import Budgets
    from parlswarm.world.expert import SUBAGENT, SUBAGENT_PROMPT, ExpertModel
    from parlswarm.world.tasks import make_tasks, parse_query
    from parlswarm.world.tools import world_tools

    task = min(make_tasks("dev", world.factbook, world_seed=1), key=lambda t: (len(t.rows), t.instance_id))

    def turns_of(style: str) -> list[AssistantMessage]:
        _, messages = noted_run(world, task.query, style)
        return [m for m in messages if isinstance(m, AssistantMessage)]

    tracked, checked = turns_of("tracked"), turns_of("checked")
    # The checked notes, each turn after the index ending with the place to read next.
    without = ["\n".join(ln for ln in (t.content or "").splitlines() if not ln.startswith("Next: ")) for t in tracked]
    assert without == [t.content or "" for t in checked]
    places = re.findall(r"^- (.+) \((\w+)\)$", tracked[2].content or "", re.M)  # the index note
    assert len(places) == len(world.factbook.regions[task.spec.region].members)
    nexts = [next(ln for ln in (t.content or "").splitlines() if ln.startswith("Next: ")) for t in tracked[2:]]
    assert nexts == [f"Next: {n} ({c})" for n, c in places] + ["Next: none: answer"]
    for t, (_, code) in zip(tracked[2:], places):  # the turn that names a place reads it
        assert {c.function.name for c in t.tool_calls or []} == {"find"}
        assert all(json.loads(c.function.arguments)["doc_id"] == code for c in t.tool_calls or [])
    answer = tracked[-1].content or ""
    assert not tracked[-1].tool_calls and answer.index("Next: none: answer") < answer.index("Here is the table")

    # A sub-agent's places are its sub-task's list.
    parsed = parse_query(task.query)
    assert parsed is not None
    name, code = places[0]
    recorder = RecordingModel(NotingExpert(ExpertModel("serial", reader="find"), style="tracked"))
    agent = Agent(SUBAGENT, recorder, SUBAGENT_PROMPT, tools=world_tools(world), max_steps=6)
    asyncio.run(agent.run(ExpertModel.subtask(parsed, [(name, code)]), Budgets(max_orchestrator_steps=6)))
    (messages, _), = recorder.conversations()
    reply = [m for m in messages if isinstance(m, AssistantMessage)][-1].content or ""
    assert "Next: none: answer" in reply
    with pytest.raises(ValueError, match="note_style 'tracked'.*data.reader"):
        DataConfig(note_style="tracked", reader="pages")


def test_stepwise_notes_fill_each_row_one_found_value_a_turn(world) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.tools import world_tools

    task, parsed = smallest_filtered_task(world)  # so that some place is left out after its first find
    recorder = RecordingModel(NotingExpert(ExpertModel("serial", reader="find", stepwise=True), style="stepwise"))
    result = asyncio.run(Swarm(recorder, tools=world_tools(world), mode="single").run(task.query))
    (messages, _), = recorder.conversations()
    turns = [m for m in messages if isinstance(m, AssistantMessage)]
    header = "| " + " | ".join(parsed.header) + " |"
    assert (turns[0].content or "").splitlines()[0] == header
    finds = [t for t in turns if t.tool_calls and t.tool_calls[0].function.name == "find"]
    assert finds and all(len(t.tool_calls or []) == 1 for t in finds)  # one entry a turn
    headings = dict(zip(parsed.header[1:], (f.path[1] for f in parsed.columns)))
    headings.setdefault(parsed.filter_field.label, parsed.filter_field.path[1])  # type: ignore[union-attr]
    for turn in finds:
        todo = (turn.content or "").splitlines()[-1]
        assert todo.startswith("To do: ")  # the entry this turn asks for is the first to do
        asked = json.loads(turn.tool_calls[0].function.arguments)["text"]  # type: ignore[index]
        assert headings[todo[len("To do: ") :].split(" | ")[0]] == asked
    # Each turn's row is the previous turn's, plus at most one value.
    rows = [(t.content or "").splitlines()[-2] for t in finds]
    for before, after in zip(rows, rows[1:]):
        name = before.split(" | ")[0]
        if after.startswith(name + " |"):
            assert after.startswith(before[:-1]) and after.count(" | ") <= before.count(" | ") + 1
    # The answer's rows are the gold ones, and the last turn's notes hold them word for word.
    final = turns[-1].content or ""
    noted = final[: final.index("Here is the table")]
    gold = ["| " + " | ".join(row) + " |" for row in task.rows]
    assert [ln for ln in noted.splitlines() if ln.startswith("| ")] == gold
    assert len(gold) < len(world.factbook.regions[task.spec.region].members)  # the filter left some out
    assert noted.count(": left out") == len(world.factbook.regions[task.spec.region].members) - len(gold)
    assert result.answer == final
    with pytest.raises(ValueError, match="stepwise"):
        NotingExpert(ExpertModel("serial", reader="find"), style="stepwise")
    with pytest.raises(ValueError, match="data.reader"):
        DataConfig(note_style="stepwise")


def test_data_mix_follows_the_config() -> None:
    counts = sample_counts(DataConfig(orchestrator_samples=100, orchestrator_parallel_share=0.2, subagent_samples=50))
    assert counts == {"serial": 80, "parallel": 20, "subagent": 50}
    shipped = SFTConfig.load(ROOT / "configs" / "sft-nano.yaml")
    share = shipped.data.orchestrator_parallel_share
    assert 0 < share < 0.5  # mostly serial with a small parallel share: the warm start PARL needs
    assert 0 not in shipped.data.world_seeds and shipped.data.dev_world_seed not in shipped.data.world_seeds


def test_data_trains_on_the_split_or_on_drawn_questions(world) -> None:  # type: ignore[no-untyped-def]
    from parlswarm.world.tasks import make_tasks

    real = world.factbook  # world 1 stands in for the real Factbook: only the ids matter here
    split = data_tasks(DataConfig(split="dev"), world.factbook, real, 1)
    assert [t.instance_id for t in split] == [t.instance_id for t in make_tasks("dev", world.factbook, real, 1)]
    drawn = data_tasks(DataConfig(split="drawn", drawn_tasks=7), world.factbook, real, 1)
    assert [t.instance_id for t in drawn] == [f"world_drawn_1_{n:03d}" for n in range(1, 8)]


def test_serial_traces_in_swarm_mode_and_delegated_turns_drawn_apart() -> None:
    data = DataConfig(
        split="drawn", drawn_tasks=3, max_rows=None, rows_per_subagent=3, reader="find", serial_mode="swarm",
        delegated_samples=5, subtask="short",
    )
    conversations = record_traces(2, data)
    serial = [c for c in conversations if c.kind == "serial"]
    parallel = [c for c in conversations if c.kind == "parallel"]
    assert len(serial) == 3 and parallel
    for conv in serial:  # the orchestrator's prompt and tools, none of its own tools used
        assert {"create_subagent", "assign_task"} <= {t.name for t in conv.tools}
        assert conv.messages[0].content == parallel[0].messages[0].content
        called = {c.function.name for m in conv.messages if isinstance(m, AssistantMessage) for c in m.tool_calls or []}
        assert called and not called & {"create_subagent", "assign_task"}
    together, apart = _turn_refs(conversations), _turn_refs(conversations, delegated=True)
    assert together["delegated"] == [] and apart["serial"] == together["serial"]
    assert sorted(apart["parallel"] + apart["delegated"]) == sorted(together["parallel"])
    for ci, ti in apart["delegated"]:  # assign and merge turns: after the create_subagent turn
        replies = [m for m in conversations[ci].messages if isinstance(m, AssistantMessage)]
        assert ti > next(i for i, m in enumerate(replies) if any(c.function.name == "create_subagent" for c in m.tool_calls or []))
    assert {ti for _, ti in apart["parallel"]} == {0, 1, 2}  # search, index, create_subagent
    counts = sample_counts(data.model_copy(update={"orchestrator_samples": 10, "orchestrator_parallel_share": 0.2, "subagent_samples": 4}))
    assert counts == {"serial": 8, "parallel": 2, "subagent": 4, "delegated": 5}


def test_answer_turns_drawn_apart() -> None:
    data = DataConfig(split="drawn", drawn_tasks=3, max_rows=None, reader="find", orchestrator_parallel_share=0.0, answer_samples=6)
    conversations = record_traces(3, data)
    serial = [ci for ci, c in enumerate(conversations) if c.kind == "serial"]
    together, apart = _turn_refs(conversations), _turn_refs(conversations, answers=True)
    assert together["answer"] == [] and len(serial) == 3
    assert sorted(apart["answer"]) == [(ci, conversations[ci].turns() - 1) for ci in serial]
    assert sorted(apart["serial"] + apart["answer"]) == sorted(together["serial"])
    for ci, ti in apart["answer"]:  # the final reply: an answer, no tool call
        reply = [m for m in conversations[ci].messages if isinstance(m, AssistantMessage)][ti]
        assert not reply.tool_calls and "|" in content_text(reply.content)
    assert apart["subagent"] == together["subagent"] and apart["parallel"] == together["parallel"]
    counts = sample_counts(data.model_copy(update={"orchestrator_samples": 10, "subagent_samples": 4}))
    assert counts == {"serial": 10, "parallel": 0, "subagent": 4, "answer": 6}


def test_start_turns_drawn_apart_from_every_task() -> None:
    data = DataConfig(
        split="drawn", drawn_tasks=6, max_rows=10, reader="find", note_style="compared", orchestrator_parallel_share=0.0,
        start_samples=4,
    )
    conversations = record_traces(4, data)
    small = [c for c in conversations if c.kind == "serial"]
    cut = [c for c in conversations if c.kind == "start"]
    assert small and cut and len(small) + len(cut) == 6  # one serial run a task: whole, or cut after its start
    without = record_traces(4, data.model_copy(update={"start_samples": None}))
    assert [c.kind for c in without].count("start") == 0
    assert [c.messages for c in without if c.kind == "serial"] == [c.messages for c in small]
    together, apart = _turn_refs(conversations), _turn_refs(conversations, starts=True)
    assert together["start"] == [(ci, ti) for ci, c in enumerate(conversations) if c.kind == "start" for ti in range(c.turns())]
    assert sorted(apart["serial"] + [r for r in apart["start"] if conversations[r[0]].kind == "serial"]) == sorted(together["serial"])
    for ci, c in enumerate(conversations):
        if c.kind not in ("serial", "start"):
            continue
        replies = [m for m in c.messages if isinstance(m, AssistantMessage)]
        # the search, then opening the region's index page: the start, and nothing after it
        assert [ti for cj, ti in apart["start"] if cj == ci] == [0, 1]
        assert [call.function.name for call in replies[0].tool_calls or []] == ["search"]
        assert [call.function.name for call in replies[1].tool_calls or []] == ["open_page"]
        assert '"region/' in (replies[1].tool_calls or [])[0].function.arguments
        assert c.kind == "serial" or c.turns() == 2
    counts = sample_counts(data.model_copy(update={"orchestrator_samples": 10, "subagent_samples": 4}))
    assert counts == {"serial": 10, "parallel": 0, "subagent": 4, "start": 4}


def test_verdict_turns_drawn_apart_half_after_yes_half_after_no() -> None:
    import torch

    from parlswarm.models.local import LocalModel

    data = DataConfig(
        split="drawn", drawn_tasks=6, max_rows=10, reader="find", note_style="verified", check_tool=True,
        orchestrator_parallel_share=0.5, verdict_samples=10,
    )
    conversations = record_traces(4, data)
    together, apart = _turn_refs(conversations), _turn_refs(conversations, verdicts=True)
    assert together["verdict"] == [] and apart["verdict"]
    for kind in ("serial", "parallel", "subagent"):
        assert sorted(apart[kind] + [r for r in apart["verdict"] if conversations[r[0]].kind == kind]) == sorted(together[kind])
    said = {"yes": 0, "no": 0}
    for ci, ti in apart["verdict"]:  # the turn after a check call copies its answer into the verdict
        messages = conversations[ci].messages
        replies = [i for i, m in enumerate(messages) if isinstance(m, AssistantMessage)]
        before = messages[replies[ti - 1]]
        assert any(c.function.name == "check" for c in before.tool_calls or [])
        answer = check_answers(conversations[ci])[ti]
        said[answer] += 1
        assert content_text(messages[replies[ti] - 1].content).startswith(answer + ":")
        assert f": {answer}: " in (messages[replies[ti]].content or "")
    assert said["yes"] and said["no"] and said["yes"] != said["no"]  # the traces hold more of one
    lm = LocalModel.from_pretrained(ROOT / "src" / "parlswarm" / "weights" / "nano")
    samples, _ = draw_samples(lm, conversations, {"verdict": 10}, 4096, random.Random(0))
    verdicts = [lm.tokenizer.decode([i for i, m in zip(s.ids, s.mask) if m]) for s in samples]
    assert len(samples) == 10 and {s.kind for s in samples} == {"verdict"}
    assert sum(": yes: kept" in v for v in verdicts) == 5 and sum(": no: left out" in v for v in verdicts) == 5
    assert sample_counts(data.model_copy(update={"orchestrator_samples": 10, "subagent_samples": 4})) == {
        "serial": 5, "parallel": 5, "subagent": 4, "verdict": 10,
    }
    with pytest.raises(ValueError, match="data.check_tool"):
        DataConfig(reader="find", verdict_samples=10)
    # The verdict words are found where they are trained, and only there; their loss can be weighted.
    patterns = verdict_words(lm.tokenizer)
    ids, attention, target = collate(samples[3:7], lm.pad_id)  # two after a yes, two after a no
    found = verdict_positions(ids, target, patterns)
    assert int(found.sum()) == 4  # one verdict line a turn
    for row, col in found.nonzero().tolist():
        assert lm.tokenizer.decode(ids[row, col - 3 : col + 2].tolist()).endswith(("): yes:", "): no:"))
    with torch.no_grad():
        plain, metrics = masked_loss(lm.model, ids, attention, target)
        same, _ = masked_loss(lm.model, ids, attention, target, verdicts=found, verdict_weight=1.0)
        weighted, weighted_metrics = masked_loss(lm.model, ids, attention, target, verdicts=found, verdict_weight=50.0)
        logits = lm.model(input_ids=ids, attention_mask=attention).logits[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    predict, verdict = target[:, 1:], found[:, 1:]
    by_hand = (ce[predict].sum() + 49 * ce[verdict].sum()) / (predict.sum() + 49 * verdict.sum())
    assert torch.isclose(same, plain) and torch.isclose(weighted, by_hand, rtol=1e-4) and not torch.isclose(weighted, plain)
    assert weighted_metrics["verdicts"] == 4 and "verdict_acc" not in metrics
    assert weighted_metrics["verdict_acc"] == pytest.approx((logits.argmax(-1)[verdict] == ids[:, 1:][verdict]).float().mean().item())


def test_tool_word_task_copies_the_latest_tool_results_first_word() -> None:
    import torch

    from parlswarm.models.local import LocalModel
    from parlswarm.parl.tool_word_task import ToolWordTaskConfig, tool_word_sampler

    tok = LocalModel.from_pretrained(ROOT / "src" / "parlswarm" / "weights" / "nano").tokenizer
    draw = tool_word_sampler(tok, ToolWordTaskConfig(weight=1.0, batch=8, turns=5))
    ids, target = draw(3, 0)
    assert ids.shape[0] == 8 and int(target.sum()) == 8 * 5
    other = draw(4, 0)[0]
    assert torch.equal(ids, draw(3, 0)[0]) and (ids.shape != other.shape or not torch.equal(ids, other))
    tool, assistant = (tok.encode(m, add_special_tokens=False)[0] for m in ("<|tool|>", "<|assistant|>"))
    words = {tok.encode("yes", add_special_tokens=False)[0], tok.encode("no", add_special_tokens=False)[0]}
    said = {"yes": 0, "no": 0}
    for row, mask in zip(ids.tolist(), target.tolist()):
        for at in (i for i, trained in enumerate(mask) if trained):
            latest = max(i for i in range(at) if row[i] == tool)  # the latest tool result before the word
            assert row[at] in words and row[at] == row[latest + 1]
            assert max(i for i in range(at) if row[i] == assistant) > latest  # in the turn after it
            assert tok.decode(row[at - 2 : at + 1]).endswith(("): yes", "): no"))
            said[tok.decode([row[at]])] += 1
    assert said["yes"] and said["no"]

    with pytest.raises(ValueError, match="<\\|assistant\\|>"):
        tool_word_sampler(NoChatMarkers(), ToolWordTaskConfig(weight=1.0))


def test_next_place_task_goes_on_to_the_next_listed_place_or_answers_after_the_last() -> None:
    import re

    import torch

    from parlswarm.models.local import LocalModel
    from parlswarm.parl.next_place_task import NextPlaceTaskConfig, next_place_sampler
    from parlswarm.world.expert import SUBAGENT_PROMPT

    tok = LocalModel.from_pretrained(ROOT / "src" / "parlswarm" / "weights" / "nano").tokenizer

    def check(cfg: NextPlaceTaskConfig) -> tuple[set[int], set[str], int, set[int]]:
        """Checks each sequence's trained tokens; returns the list lengths, where the lists stood, how many
        sequences answered, and the list positions of the sequences' first verdicts."""
        draw = next_place_sampler(tok, cfg)
        ids, target = draw(5, 0)
        other = draw(6, 0)[0]
        assert ids.shape[0] == cfg.batch and torch.equal(ids, draw(5, 0)[0]) and (ids.shape != other.shape or not torch.equal(ids, other))
        counts, where, answered, firsts = set(), set(), 0, set()
        for row, mask in zip(ids.tolist(), target.tolist()):
            text = tok.decode(row, skip_special_tokens=False)
            codes = re.findall(r"^- .+ \((\w\w)\)$", text, re.M)  # the list, in the user turn or the Places note
            counts.add(len(codes))
            where.add("user" if re.search(r"<\|user\|>[^<]*\n- ", text) else "note")
            verdicts = re.findall(r"\((\w\w)\): (?:yes: kept|no: left out)\n", text)
            first = codes.index(verdicts[0])
            assert verdicts == codes[first : first + len(verdicts)]  # consecutive places
            assert cfg.lists == "task" or len(verdicts) <= cfg.turns
            firsts.add(first)
            # after each verdict: the tool call and the next listed code, or after the list's last place a newline
            expected = ["\n" if k + 1 == len(codes) else "<tool_call>" + codes[k + 1] for k in range(first, first + len(verdicts))]
            assert "".join(tok.decode([t]) for t, m in zip(row, mask) if m) == "".join(expected)
            if expected[-1] == "\n":
                answered += 1
                assert re.sub(r"(<\|end\|>)+$", "", text).endswith("Here is the table")
        return counts, where, answered, firsts

    # the seventh round's: the list in the user turn, every place from the first, so every sequence answers
    counts, where, answered, firsts = check(NextPlaceTaskConfig(weight=1.0, batch=12, places=3))
    assert counts == {1, 2, 3} and where == {"user"} and answered == 12 and firsts == {0}
    # the same in the sub-agent's own prompt and sub-task opening
    counts, where, answered, firsts = check(NextPlaceTaskConfig(weight=1.0, batch=12, places=3, phrasing="subagent"))
    assert counts == {1, 2, 3} and where == {"user"} and answered == 12 and firsts == {0}
    text = tok.decode(next_place_sampler(tok, NextPlaceTaskConfig(weight=1.0, batch=1, phrasing="subagent"))(0, 0)[0][0].tolist())
    assert text.startswith(f"<|system|>{SUBAGENT_PROMPT}<|end|><|user|>Fill in a table for exactly these places of the World Factbook")
    # the eighth round's: in the user turn or a Places note, up to two consecutive verdicts
    counts, where, answered, firsts = check(NextPlaceTaskConfig(weight=1.0, batch=24, lists="task_or_note", places=4, turns=2))
    assert counts == {1, 2, 3, 4} and where == {"user", "note"} and 0 < answered < 24 and firsts != {0}

    with pytest.raises(ValueError, match="next_place_task"):
        next_place_sampler(NoChatMarkers(), NextPlaceTaskConfig(weight=1.0))
    with pytest.raises(ValueError, match="phrasing 'subagent' needs lists: task"):
        NextPlaceTaskConfig(weight=1.0, lists="task_or_note", phrasing="subagent")


def test_label_task_copies_the_value_of_the_line_its_column_names() -> None:
    import re

    import torch

    from parlswarm.models.local import LocalModel
    from parlswarm.parl.label_task import LabelTaskConfig, label_sampler

    tok = LocalModel.from_pretrained(ROOT / "src" / "parlswarm" / "weights" / "nano").tokenizer
    cfg = LabelTaskConfig(weight=1.0, batch=40, columns=3, lines=3)
    draw = label_sampler(tok, cfg)
    ids, target = draw(5, 0)
    assert ids.shape[0] == 40 and torch.equal(ids, draw(5, 0)[0]) and not torch.equal(ids[:1], draw(6, 0)[0][:1])
    chosen_at, shared, dropped, widths = set(), 0, 0, set()
    for row, mask in zip(ids.tolist(), target.tolist()):
        text = tok.decode(row, skip_special_tokens=False)
        header = re.search(r"<\|assistant\|>\| Country \| (.+) \|\n", text)
        assert header is not None
        columns = header.group(1).split(" | ")
        sections = re.findall(r"## \w+\n(.*?)<\|end\|>", text, re.S)
        assert len(columns) == len(sections) and 1 <= len(columns) <= cfg.columns
        widths.add(len(columns))
        expected = []
        for column, section in zip(columns, sections):
            lines = [line.split(": ", 1) for line in section.split("\n")]
            labels = [label for label, _ in lines]
            assert len(set(labels)) == len(labels) <= cfg.lines  # no two lines share a label
            wanted = re.sub(r" \(\w+\)$", "", column).lower()
            at = labels.index(wanted)  # the column names exactly one line by its label
            chosen_at.add(at)
            shared += len(labels) > 1 and len({label.split(" ")[-1] for label in labels}) == 1
            value = re.sub(r" [\d,]+ m$", "", lines[at][1])  # the cell drops an elevation after the name
            dropped += value != lines[at][1]
            expected.append(value)
        row_text = re.search(r"<\|assistant\|>(\| [^\n]+ \|)\n<\|end\|>", text)
        assert row_text is not None and row_text.group(1).split(" | ")[1:] == [*expected[:-1], expected[-1] + " |"]
        assert "".join(tok.decode([t]) for t, m in zip(row, mask) if m) == "".join(expected)  # the values, nothing else
    # the chosen line is any of a section's lines, most sections tell their lines apart by one word, and
    # half the values carry an elevation that the cell leaves out
    assert chosen_at == {0, 1, 2} and widths == {1, 2, 3} and shared > 20 and dropped > 10

    # restated: the same draws, each cell written after its line's label; only the values trained
    restated = label_sampler(tok, cfg.model_copy(update={"form": "restated"}))(5, 0)
    for row, mask, plain in zip(*restated, ids.tolist()):
        text = tok.decode(row.tolist(), skip_special_tokens=False)
        turn = text[text.rindex("<|assistant|>") + len("<|assistant|>") :].split("<|end|>")[0]
        pairs = [line.split(": ", 1) for line in turn.splitlines()]
        sections = re.findall(r"## \w+\n(.*?)<\|end\|>", text, re.S)
        assert len(pairs) == len(sections)
        for (label, value), section in zip(pairs, sections):
            assert re.search(rf"^{re.escape(label)}: {re.escape(value)}(?: [\d,]+ m)?$", section, re.M)
        assert "".join(tok.decode([t]) for t, m in zip(row.tolist(), mask.tolist()) if m) == "".join(v for _, v in pairs)
        assert text.split("<|assistant|>")[1] == tok.decode(plain, skip_special_tokens=False).split("<|assistant|>")[1]

    with pytest.raises(ValueError, match="label_task"):
        label_sampler(NoChatMarkers(), cfg)


def test_a_model_trained_with_the_check_tool_says_so_in_its_settings(tmp_path: Path) -> None:
    cfg = _tiny_config(tmp_path, 1)
    run = SFTRun(cfg)
    assert run.settings().check_tool is False
    digest = run.recipe_digest(None)
    cfg.data = cfg.data.model_copy(update={"reader": "find", "note_style": "verified", "check_tool": True})
    assert run.settings().check_tool is True  # the runtime offers check to it (parlswarm.world.tools.offer_check)
    assert run.recipe_digest(None) != digest


class NoChatMarkers:
    """A tokenizer without the nano chat markers: the synthetic chat tasks refuse it."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [ord(c) for c in text]


def _tiny_config(out: Path, steps: int, synthetic: bool = False) -> SFTConfig:
    """configs/sft-tiny.yaml cut smaller; ``synthetic`` adds the synthetic chat tasks at a small weight."""
    cfg = SFTConfig.load(ROOT / "configs" / "sft-tiny.yaml")
    cfg.out_dir = out
    cfg.tokenizer_pages = 150
    cfg.data = cfg.data.model_copy(update={"orchestrator_samples": 12, "subagent_samples": 12, "dev_samples": 6})
    chat_tasks = {"tool_word_task": {"weight": 0.1, "batch": 2}, "next_place_task": {"weight": 0.1, "batch": 2},
                  "label_task": {"weight": 0.1, "batch": 2}} if synthetic else {}  # fmt: skip
    cfg.train = TrainConfig(
        steps=steps, batch_tokens=3072, lr=3e-3, warmup=1, eval_every=4, save_every=4, seed=0, threads=2,
        copy_task=CopyTaskConfig(weight=0.5, batch=4, length=12), **chat_tasks,
    )
    return cfg


def test_tiny_sft_loss_falls_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sft"
    first = SFTRun(_tiny_config(out, steps=4, synthetic=True))
    first.run()
    lm, data = first.prepare()  # reloads the checkpoint and the cached samples
    assert data.train and {s.kind for s in data.train} <= {"serial", "parallel", "subagent"}
    for s in data.train:
        assert len(s.ids) == len(s.mask) and any(s.mask) and not all(s.mask)
    from parlswarm.models.local import LocalModel

    initial = LocalModel.from_pretrained(out / "initial")
    before = evaluate(initial.model, data.train, lm.pad_id, 4096)["dev_loss"]

    second = SFTRun(_tiny_config(out, steps=10, synthetic=True))
    manifest = second.run()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 11))  # resumed at step 5, no step twice
    for task in ("copy", "tool_word", "next_place", "label"):  # each auxiliary task ran every step
        assert all(0 <= r[f"{task}_acc"] <= 1 and r[f"{task}_loss"] > 0 for r in records), task
    final = LocalModel.from_pretrained(out / "final")
    after = evaluate(final.model, data.train, lm.pad_id, 4096)["dev_loss"]
    assert after < before - 0.5, (before, after)
    assert manifest["steps"] == 10 and manifest["data"]["train_samples"] == len(data.train)
    assert "git_changes" in manifest  # uncommitted files beside git_commit (None outside git)
    assert json.loads((out / "final" / "manifest.json").read_text())["config"]["train"]["steps"] == 10
    assert (out / "final" / "parlswarm.json").exists()  # the LocalModel settings travel with the weights
    assert any("dev_loss" in h for h in manifest and second.history)


def test_data_from_reuses_a_run_drawn_by_the_same_recipe_and_refuses_another(tmp_path: Path) -> None:
    drawn = SFTRun(_tiny_config(tmp_path / "drawn", steps=1))
    _, data = drawn.prepare()
    reuse = _tiny_config(tmp_path / "reuse", steps=1).model_copy(update={"data_from": tmp_path / "drawn"})
    reuse.train = reuse.train.model_copy(update={"lr": 1e-3, "steps": 50})  # training may differ; samples may not
    _, copied = SFTRun(reuse).prepare()
    assert [s.ids for s in copied.train] == [s.ids for s in data.train] and copied.stats == data.stats
    assert (tmp_path / "reuse" / "initial" / "config.json").is_file()

    other = _tiny_config(tmp_path / "other", steps=1).model_copy(update={"data_from": tmp_path / "drawn"})
    other.train = other.train.model_copy(update={"seed": 1})  # another draw of the same turns
    with pytest.raises(ValueError, match="data_from .*drawn: its samples were drawn by another recipe"):
        SFTRun(other).prepare()
    other.train = other.train.model_copy(update={"seed": 0})
    other.data = other.data.model_copy(update={"max_rows": 6})
    with pytest.raises(ValueError, match="another recipe"):
        SFTRun(other).prepare()
    assert not (tmp_path / "other" / "data.pt").exists()  # nothing copied, nothing drawn
    missing = _tiny_config(tmp_path / "missing", steps=1).model_copy(update={"data_from": tmp_path / "nowhere"})
    with pytest.raises(ValueError, match="data_from .*nowhere: no data.pt and initial/ there"):
        SFTRun(missing).prepare()


def test_copy_stage_runs_first_resumes_and_ends_when_copying_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import parlswarm.parl.sft as sft

    out = tmp_path / "sft"
    real = sft.copy_loss
    calls = {"n": 0, "fail_at": 6, "acc": None}

    def flaky(model, ids, target):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == calls["fail_at"]:
            raise RuntimeError("interrupted")
        loss, metrics = real(model, ids, target)
        if calls["acc"] is not None:
            metrics["copy_acc"] = calls["acc"]
        return loss, metrics

    monkeypatch.setattr(sft, "copy_loss", flaky)

    def config(steps: int) -> SFTConfig:
        cfg = _tiny_config(out, steps=steps)
        cfg.train.copy_task = CopyTaskConfig(weight=0.5, batch=4, length=12, pretrain_steps=7, pretrain_until=None)
        return cfg

    with pytest.raises(RuntimeError, match="interrupted"):  # dies in stage 0, after its checkpoint at copy step 4
        SFTRun(config(steps=3)).run()
    calls["fail_at"] = -1
    manifest = SFTRun(config(steps=3)).run()
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r.get("copy_step") for r in records] == [1, 2, 3, 4, 5, 6, 7, None, None, None]  # stage 0 first, resumed at 5
    assert [r["step"] for r in records[7:]] == [1, 2, 3] and all("copy_acc" in r for r in records)
    assert [r["copy_kind"] for r in records[:3]] == ["repeat", "recall", "repeat"]
    assert manifest["steps"] == 3 and manifest["copy_stage"]["steps"] == 7 and not manifest["copy_stage"]["formed"]
    assert json.loads((out / "stage0" / "manifest.json").read_text())["steps"] == 7  # stage 0's weights, kept apart

    # With copying "formed" (accuracy 1.0), stage 0 ends once both kinds fill their window.
    calls["acc"] = 1.0
    cfg = _tiny_config(tmp_path / "formed", steps=1)
    cfg.train.copy_task = CopyTaskConfig(weight=0.0, batch=4, pretrain_steps=50, pretrain_until=0.9, pretrain_window=2)
    manifest = SFTRun(cfg).run()
    assert manifest["copy_stage"] == {"steps": 4, "formed": True, "accuracy": {"repeat": 1.0, "recall": 1.0}}


def test_length_groups_keep_order_and_padded_size() -> None:
    samples = [Sample([1] * n, [True] * n, "serial") for n in (3, 3, 4, 10, 11, 40)]
    groups = length_groups(samples, batch_tokens=24)
    assert [len(s) for g in groups for s in g] == [3, 3, 4, 10, 11, 40]  # every sample once, in order
    assert [[len(s) for s in g] for g in groups] == [[3, 3, 4], [10, 11], [40]]
    # A sample longer than the budget still gets a batch of its own; others stay within it.
    assert all(len(g) * max(len(s) for s in g) <= 24 for g in groups[:-1])
    rng = random.Random(0)
    first = [[len(s) for s in g] for g in itertools.islice(batches(samples, 24, rng), 6)]  # two passes
    assert sorted(map(tuple, first[:3])) == sorted(map(tuple, first[3:])) == [(3, 3, 4), (10, 11), (40,)]


def test_copy_task_batches_are_what_they_say_and_reproducible() -> None:
    repeat = CopyTaskConfig(weight=1.0, kind="repeat", batch=64, length=5)
    ids, target = copy_batch(repeat, (8, 100), step=7, seed=2)
    assert ids.shape == target.shape == (64, 15) and int(ids.min()) >= 8 and int(ids.max()) < 100
    distances = set()
    for row, mask in zip(ids.tolist(), target.tolist()):
        second = mask.index(True) - 1  # the repeat starts one before its first target
        assert sum(mask) == 4 and mask[second + 1 : second + 5] == [True] * 4
        first = next(i for i in range(second) if row[i : i + 5] == row[second : second + 5])
        distances.add(second - first)
    assert len(distances) > 3 and min(distances) >= 5  # the copies are not always the same distance apart
    assert bool((copy_batch(repeat, (8, 100), step=7, seed=2)[0] == ids).all())  # a resumed run draws the same
    assert not bool((copy_batch(repeat, (8, 100), step=8, seed=2)[0] == ids).all())
    spaced = CopyTaskConfig(weight=1.0, kind="repeat", batch=16, length=10, separators=3)
    ids, target = copy_batch(spaced, (8, 1000), step=3, seed=1)
    for row, mask in zip(ids.tolist(), target.tolist()):
        second = mask.index(True) - 1
        first = next(i for i in range(second) if row[i : i + 10] == row[second : second + 10])
        assert row[first : first + 10] == row[second : second + 10]
        string = row[first : first + 10]
        separators, content = sorted([string[0::2], string[1::2]], key=lambda part: len(set(part)))
        assert len(set(separators)) <= 3  # every other token is one of 3 separators ...
        assert len(set(content)) >= 4  # ... between content tokens drawn from the whole range
    # lists: phrases the model knows, in a random order, joined by one separator, copied.
    phrases = Phrases(phrases=[[10, 11], [12], [13, 14, 15], [16, 17], [18]], joins=[[5], [6, 7]])
    lists = CopyTaskConfig(weight=1.0, kind="lists", batch=32, length=8)
    ids, target = copy_batch(lists, (20, 1000), step=4, seed=3, phrases=phrases)
    orders = set()
    for row, mask in zip(ids.tolist(), target.tolist()):
        second = mask.index(True) - 1
        first = next(i for i in range(second) if row[i : i + 8] == row[second : second + 8])
        string = row[first : first + 8]
        assert set(string) <= {5, 6, 7, *range(10, 19)} and (5 in string) != (6 in string)  # one separator kind
        orders.add(tuple(t for t in string if t >= 10))
    assert len(orders) > 10  # the phrases come in many orders
    with pytest.raises(ValueError, match="needs phrases"):
        copy_batch(lists, (20, 1000), step=4, seed=3)
    recall = CopyTaskConfig(weight=1.0, kind="recall", batch=2, pairs=4, key_pool=5)
    ids, target = copy_batch(recall, (8, 100), step=1, seed=0, marks=(1, 2))
    assert ids.shape == target.shape == (2, 4 * 6 * 2)
    for row, mask in zip(ids.tolist(), target.tolist()):
        lines = [row[i : i + 6] for i in range(0, len(row), 6)]
        assert all(line[2] == 1 and line[5] == 2 for line in lines)
        facts = {tuple(line[:2]): line[3:5] for line in lines[:4]}
        assert len(facts) == 4  # distinct keys
        for n, line in enumerate(lines[4:], start=4):  # every query asks a key and is completed with its value
            assert facts[tuple(line[:2])] == line[3:5]
            assert mask[n * 6 : n * 6 + 6] == [False, False, False, True, True, False]
        assert not any(mask[:24])


def test_samples_over_the_length_limit_are_left_out_and_counted(tmp_path: Path) -> None:
    from parlswarm.parl.traces import Conversation
    from parlswarm.types import SystemMessage, UserMessage

    run = SFTRun(_tiny_config(tmp_path, steps=1))
    conv = Conversation(
        "subagent",
        [SystemMessage(content="s"), UserMessage(content="u " * 50), AssistantMessage(content="answer " * 30)],
        [],
        1,
        "t",
    )
    lm = run.build([conv])
    samples, stats = draw_samples(lm, [conv], {"subagent": 3}, max_tokens=20, rng=random.Random(0))
    assert samples == [] and stats["too_long"] == 3


def test_a_drawn_turn_is_the_sample_its_whole_conversation_gives_it(tmp_path: Path) -> None:
    # encode_turn encodes one turn; it must be what the conversation's samples hold for that turn.
    from parlswarm.parl.sft import encode_turn
    from parlswarm.parl.traces import Conversation
    from parlswarm.types import SystemMessage, ToolCall, UserMessage

    run = SFTRun(_tiny_config(tmp_path, steps=1))
    messages: list = [SystemMessage(content="s"), UserMessage(content="find two")]  # type: ignore[type-arg]
    for i in range(3):
        messages += [AssistantMessage(content=f"note {i}", tool_calls=[ToolCall.make(f"c{i}", "find", {"doc_id": "fr", "text": "x"})])]
        messages += [ToolMessage(tool_call_id=f"c{i}", content=f"result {i}")]
    messages += [AssistantMessage(content="answer")]
    conv = Conversation("serial", messages, [], 1, "t")
    lm = run.build([conv])
    for keep in (1, None):
        lm.settings = lm.settings.model_copy(update={"keep_tool_results": keep})
        whole = lm.training_samples(messages, [])
        for turn in range(4):
            ids, mask = encode_turn(lm, conv, turn)
            if keep is not None:
                assert (ids, mask) == whole[turn]
            else:  # one sequence; the turn's own tokens marked
                assert ids == whole[0][0][: len(ids)] and sum(mask) < sum(whole[0][1])


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "sft", "--config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code != 0 and "SFT config not found" in str(missing.exception or missing.output)
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: -3\n")
    result = runner.invoke(app, ["train", "sft", "--config", str(bad)])
    assert result.exit_code != 0 and "train.steps" in str(result.exception or result.output)


def test_input_noise_changes_only_what_the_model_reads_of_its_turn() -> None:
    torch = pytest.importorskip("torch")
    from parlswarm.parl.sft import noised

    torch.manual_seed(0)
    ids = torch.arange(1000, dtype=torch.long).reshape(4, 250) % 90 + 10
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[:, 100:200] = True  # the turn
    out = noised(ids, target, 0.3, (200, 300))
    changed = out != ids
    assert not changed[~target].any()  # the prompt is read as it is
    share = changed[target].float().mean().item()
    assert 0.2 < share < 0.4, share
    assert ((out[changed] >= 200) & (out[changed] < 300)).all()  # ordinary tokens only
    assert torch.equal(noised(ids, target, 0.0, (200, 300)), ids)


def test_lora_trains_an_adapter_alone_resumes_and_loads_merged(tmp_path: Path) -> None:
    import torch

    from parlswarm.models.adapter import LoraSettings, has_adapter
    from parlswarm.models.local import LocalModel
    from parlswarm.models.local_specs import weights_digest

    base_run = SFTRun(_tiny_config(tmp_path / "base", steps=1))
    base_run.run()
    base_dir = tmp_path / "base" / "final"
    base_weights = {k: v.clone() for k, v in LocalModel.from_pretrained(base_dir).model.state_dict().items()}

    def lora_config(steps: int) -> SFTConfig:
        cfg = _tiny_config(tmp_path / "lora", steps)
        cfg.init = str(base_dir)
        cfg.train = cfg.train.model_copy(update={"lr": 1e-2, "lora": LoraSettings(r=4, alpha=8), "copy_task": CopyTaskConfig()})
        return SFTConfig.model_validate(cfg.model_dump())

    SFTRun(lora_config(4)).run()
    manifest = SFTRun(lora_config(8)).run()
    out = tmp_path / "lora"
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 9))  # resumed from the adapter checkpoint
    final = out / "final"
    assert has_adapter(final) and not (final / "config.json").exists()  # the adapter alone, not the base
    saved = json.loads((final / "parlswarm.json").read_text())
    assert saved["base"] == str(base_dir) and saved["base_digest"] == weights_digest(str(base_dir))
    assert 0 < manifest["trained_parameters"] < manifest["parameters"] / 2
    # The base on disk is untouched; the loaded model is the base with the adapter merged in.
    unchanged = LocalModel.from_pretrained(base_dir).model.state_dict()
    assert all(torch.equal(unchanged[k], v) for k, v in base_weights.items())
    merged = LocalModel.from_pretrained(final)
    weights = merged.model.state_dict()
    assert set(weights) == set(base_weights)
    changed = {k for k, v in weights.items() if not torch.equal(v, base_weights[k])}
    assert changed and all(k.endswith("_proj.weight") for k in changed)  # the adapted linear layers alone
    _, data = SFTRun(lora_config(8)).prepare()
    before = evaluate(LocalModel.from_pretrained(base_dir).model, data.train, merged.pad_id, 4096)["dev_loss"]
    after = evaluate(merged.model, data.train, merged.pad_id, 4096)["dev_loss"]
    # Low-rank updates of a barely trained tiny model move its loss a little (0.11 here), not much.
    assert after < before - 0.05, (before, after)

    # A run whose init is an adapter goes on training that adapter, on the same base.
    more = lora_config(2).model_copy(update={"init": str(final), "out_dir": tmp_path / "more"})
    adapter_digest = weights_digest(str(final))
    more_manifest = SFTRun(more).run()
    assert json.loads((tmp_path / "more" / "final" / "parlswarm.json").read_text())["base"] == str(base_dir)
    # The manifest pins what init held when the run read it (the adapter's file, not the base's).
    assert more_manifest["init_digest"] == adapter_digest != weights_digest(str(base_dir))
    assert "init_digest" not in more_manifest["data"]
    mismatched = more.model_copy(update={"out_dir": tmp_path / "other"})
    mismatched.train = mismatched.train.model_copy(update={"lora": LoraSettings(r=8, alpha=8)})
    with pytest.raises(ValueError, match="train.lora must match it"):
        SFTRun(mismatched).run()
    whole = more.model_copy(update={"out_dir": tmp_path / "whole"})
    whole.train = whole.train.model_copy(update={"lora": None})
    with pytest.raises(ValueError, match="is a LoRA adapter: go on training it with train.lora"):
        SFTRun(whole).run()


def test_deepen_to_trains_init_with_more_layers_from_what_it_computed(tmp_path: Path) -> None:
    import torch

    from parlswarm.models.local import LocalModel

    SFTRun(_tiny_config(tmp_path / "base", steps=1)).run()
    base_dir = tmp_path / "base" / "final"
    cfg = _tiny_config(tmp_path / "deep", steps=2)
    cfg.init, cfg.deepen_to = str(base_dir), 3  # nano-tiny.json has 2 layers
    manifest = SFTRun(SFTConfig.model_validate(cfg.model_dump())).run()
    assert manifest["config"]["deepen_to"] == 3
    base, initial, final = (LocalModel.from_pretrained(d) for d in (base_dir, tmp_path / "deep" / "initial", tmp_path / "deep" / "final"))
    assert [m.model.config.num_hidden_layers for m in (base, initial, final)] == [2, 3, 3]
    ids = torch.tensor([list(range(5, 40))])
    with torch.no_grad():
        # The deeper model before step 1 is the base; its training then moved it.
        assert torch.allclose(initial.model(ids).logits, base.model(ids).logits, atol=1e-5)
        assert not torch.allclose(final.model(ids).logits, base.model(ids).logits, atol=1e-3)
    # A depth init cannot reach is refused before any trace is recorded.
    cfg.out_dir, cfg.deepen_to = tmp_path / "too-deep", 5
    with pytest.raises(ValueError, match=f"deepen_to 5 for init {base_dir}: cannot deepen 2 layers to 5: between 3 and 4"):
        SFTRun(cfg).run()
    assert not (tmp_path / "too-deep" / "data.pt").exists()


def test_lora_config_errors_name_the_setting(tmp_path: Path) -> None:
    from parlswarm.models.base import ModelSpecError
    from parlswarm.models.local import LocalModel

    with pytest.raises(ValueError, match="train.lora needs init"):
        SFTConfig.model_validate({"train": {"lora": {"r": 4}}})
    with pytest.raises(ValueError, match="GGUF model: fine-tune it with train.lora"):
        SFTConfig.model_validate({"init": "hf-gguf:smollm2"})
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "parlswarm.json").write_text("{}")
    with pytest.raises(ModelSpecError, match="names no 'base' model"):
        LocalModel.from_pretrained(folder)
