"""Teacher notes: the scripted expert writing down, in each turn's text, what it has just read.

With context folding (``keep_tool_results``) a small model sees only the latest tool results;
:class:`NotingExpert` makes the teacher note what the page or ``find`` result it has just read
gives for the task (the expert's own reading of it), so that the values survive folding and
the final table can be copied from the notes. The supervised warm start
(:mod:`parlswarm.parl.sft`) trains on these turns, and PARL rollouts
(:mod:`parlswarm.parl.rollout`) let the noting expert play the turns before the policy's
decision, so the policy sees the notes it was trained on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from parlswarm.models.base import call_model
from parlswarm.types import Message, ModelResponse, ToolChoice, ToolMessage, ToolSpec, content_text
from parlswarm.world.pages import REGION_PREFIX

NoteStyle = Literal[
    "labelled", "row", "verbatim", "compared", "matched", "checked", "tracked", "verified", "cells", "lower_cells", "numbered_cells", "stepwise"
]
# The styles that note a place as its row first and its verdict after (find reader only).
CHECKED_STYLES = ("checked", "tracked")
# The styles that note a filter's value against its threshold before the verdict.
COMPARED_STYLES = ("compared", "matched")
# The styles whose verdict is the world's check tool's answer (the expert must have the tool on offer).
TOOL_CHECKED_STYLES = ("verified", "cells", "lower_cells", "numbered_cells")
# The styles that need the find reader's results (they note rows of find results).
FIND_STYLES = (*COMPARED_STYLES, *CHECKED_STYLES, *TOOL_CHECKED_STYLES)
# The styles that copy the answer's header and the index's lines into the notes.
VERBATIM_STYLES = ("verbatim", *FIND_STYLES)
# The styles a plain expert writes (stepwise needs an expert that finds one entry a turn): the CLIs' choices.
PLAIN_NOTE_STYLES: tuple[str, ...] = tuple(s for s in get_args(NoteStyle) if s != "stepwise")


class NotingExpert:
    """The scripted expert, writing down what each page it reads gives for the task.

    Every reply that follows ``open_page`` results gets, as its text (before the final
    answer, when it is one), one line per page: the region's places (index pages), or the
    place's values for the task's columns found on that section page, ``left out`` when the
    place fails the task's filter or the section's last page lacks a value. The tool calls
    and the final answer are the expert's own.

    ``style`` says how the notes are written. ``labelled``: ``Places: Name (code), ...`` and,
    with the ``find`` reader, ``Name (code): Column = value; ...``. ``row`` (``find`` reader):
    a place is noted as its row of the final table, ``| Name | value | ... |``, so that the
    answer copies its rows from the notes unchanged and no column label has to be recalled
    between two values. ``verbatim``: as ``row``; the places as the index page lists them,
    its ``- Name (code)`` lines copied as they are; and, in the first turn, the answer's
    header row copied from the task (``| Country | ... |``), so that the columns stand in
    order near every later turn and the final header is a copy of the agent's own note.
    ``checked`` (``find`` reader): as ``verbatim``, but every place read is noted as its row
    first, ``?`` for a value the page lacks, and the verdict after it, on a line of its own:
    the filter's value and whether it passes (``Coastline (km) = 136, not above 400: left
    out``, or ``...: kept``), or the first column without a value (``Electrification (%): no
    value: left out``). In ``verbatim`` a left-out place is noted ``Name (code): left out``,
    so keep or leave out is the first word the turn writes, before any value is copied; the
    SmolLM2 adapter trained on such notes came to write it for places with every value found
    and no filter (docs/local-model.md, "Checked notes"). Here the decision follows the
    values it rests on.
    ``compared`` (``find`` reader): as ``verbatim``, but when the task has a filter, every
    place whose filter value was read is first noted with the comparison, the value and the
    threshold written to the same digits (``Palau (ps): Coastline (km) = 1885 vs 0400:
    above: kept``), then as ``verbatim`` (its row, or ``left out`` for a missing value; a
    place the filter leaves out has no other line). The nano model, noting ``left out``
    first, left out places that passed (a coastline of 1,885 km "not above 400"): the keep
    decision rested on a value and a threshold it had not written down; here both stand side
    by side, digit under digit, before the verdict.
    ``matched`` (``find`` reader): as ``compared``, with the relation the task keeps written
    after the relation found, before the verdict (``Palau (ps): Coastline (km) = 1885 vs 0400:
    above, wanted above: kept``). Teacher-forced at 60 verdicts of the expert's look-ups, the
    compared round said ``kept`` 51 times and the round after it ``left out`` 60 times, whatever
    the relation (benchmarks/verdict_probe.py; docs/local-model.md, "Start turns"): the task's
    operator stood hundreds of tokens back. Here the verdict is whether two words side by side
    are the same.
    ``tracked`` (``find`` reader): as ``checked``, and every turn that read the index or a
    place ends its notes with the place to read next, ``Next: Name (code)`` (the first place
    of the index, or of the sub-task's list, not yet read), or ``Next: none: answer`` once
    every place is read. The checked round's single-mode runs read their first place again and
    again, or answered after one or two (docs/local-model.md, "Single mode on all ten tasks"):
    which place is next, and whether any is left, rested on comparing the whole place list
    with every turn before; here it is the line after the previous turn's ``Next`` place in
    the list, and the answer follows ``Next: none``.
    ``verified`` (``find`` reader, the world's ``check`` tool on offer): as ``verbatim``, but in a
    task with a filter a place with every value found is noted as its row and then its filter
    value with the task's condition, ``Palau (ps): Coastline (km) = 1885, below 400 km?``, before
    the turn's ``check`` call; the turn after it copies the check's answer as the verdict,
    ``Palau (ps): no: left out`` (or ``yes: kept``), and the answer keeps the rows whose verdict
    is ``kept``. Every round that wrote the verdict itself left it to a coin (docs/local-model.md,
    "Verdicts" to "Twice the start turns"): comparing two numbers and applying the task's
    operator is a step a calculator does; here the model copies a value and a condition into a
    call and a yes or no out of its answer.
    ``cells`` (as ``verified``): every row a turn notes is preceded by its cells, one line each,
    ``Label = value`` with the column's label as the header writes it (``Highest point = Mount
    Kenya``, ``Coastline (km) = 6609``), so that the row copies each value from the line just above
    it. The verified rounds wrote the lowest point's name where ``Highest point`` asks for the
    highest (docs/local-model.md, "Stop 69"): in the row the column's label stands only in the
    header, and a synthetic task with each value beside its label was learnt where the row was not.
    Its round (stop 70) wrote the first line's label right and hardly ever a later one: the next
    label is the header's item after the last one written, with a value between them.
    ``lower_cells``: as ``cells``, each line ``label: value`` with the label lower-cased and without
    its unit (``highest point: Mount Kenya``, ``coastline: 6609``), for ``Elevation``'s columns the
    ``find`` result's own label. Its round (stop 70) wrote the first label right and the later ones
    hardly ever, as the ``cells`` round did.
    ``numbered_cells``: as ``cells``, the first turn also notes the columns as a numbered list after
    the header row (``1. Highest point``, ``2. Electrification (%)``) and every cell line starts with
    its column's number (``2. Electrification (%) = 69.8``). The ``cells`` round (stop 70) wrote its
    first label right 76 times in 81 and the second 5 in 74: the next column is the header's item
    after the last label written, but a value stands between them, so the recall takes two
    look-ups. Here the next line's number is the last one plus one, and the number finds its label
    in the list, one look-up each. Its two rounds (stop 70) numbered the lines right and wrote the
    list's first item and the first label right, the later ones hardly ever: the list is the same
    recall, with a number between two items.
    ``stepwise`` (with an expert that finds one entry a turn, ``ExpertModel(stepwise=True)``):
    as ``verbatim``, but every turn notes the table so far, the row being filled in as far as
    it goes, and what is left to find for it (see :func:`stepwise_notes`).
    """

    def __init__(self, expert: Any, style: NoteStyle = "labelled") -> None:
        if style == "stepwise" and not getattr(expert, "stepwise", False):
            raise ValueError("note_style 'stepwise' needs an expert that finds one entry a turn (ExpertModel(stepwise=True))")
        self.expert = expert
        self.name = expert.name
        self.style = style

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        response = await call_model(self.expert, messages, tools, tool_choice)
        if self.style == "stepwise":
            notes = stepwise_notes(messages, response.message)
        else:
            notes = page_notes(messages, self.style)
        if notes:
            # Before a tool call the notes are the turn's text; before the final answer they
            # precede it, so every value goes page → note → table the same way.
            text = notes if response.message.tool_calls else f"{notes}\n\n{response.message.content or ''}"
            response = response.model_copy(update={"message": response.message.model_copy(update={"content": text})})
        return response


def stepwise_notes(messages: Sequence[Message], reply: Message) -> str:
    """The ``stepwise`` notes of the turn that ends with ``reply``.

    A turn writes, each on its own line: in the first turn, the answer's header row; after an
    index page, its places as it lists them; then the table so far — a row per place done
    (``| Name | value | ... |``, or ``Name (code): left out``) and the row being filled in, as
    far as it goes — and ``To do:`` the labels still to find for that row, the first of
    which is the entry this turn's ``find`` asks for. Every step is then a short copy: the
    previous lines, one value from the one result just above, the to-do list less its first
    item. (With every entry of a place found in one turn, the row had to gather values from
    several results in order, and the built-in model kept repeating one.)
    """
    from parlswarm.world.expert import found_left_out, table_line
    from parlswarm.world.pages import parse_find, parse_page, read_entry, region_members
    from parlswarm.world.tasks import parse_query

    task_text = next((content_text(m.content) for m in messages if m.role == "user"), "")
    task = parse_query(task_text)
    if task is None:
        return ""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    lines = [table_line(task.header)] if last < 0 else []
    places: dict[str, str] = {code: name for name, code in task.places or []}  # code -> name
    found: dict[tuple[str, str], str] = {}  # (code, heading) -> the entries found
    order: list[str] = []  # places in the order they were first looked up
    for i, m in enumerate(messages):
        text = content_text(m.content) if isinstance(m, ToolMessage) else ""
        page = parse_page(text) if text else None
        if page is not None and page.doc_id.startswith(REGION_PREFIX):
            members = region_members(page.body)
            places.update({code: name for name, code in members})
            if members and i > last:
                lines.append(_index_note(members))
        view = parse_find(text) if text else None
        if view is not None:
            places.setdefault(view.doc_id, view.title.split(" — ")[0])
            found[(view.doc_id, view.text.lower())] = view.body
            if view.doc_id not in order:
                order.append(view.doc_id)
    for call in getattr(reply, "tool_calls", None) or []:
        if call.function.name == "find":
            code = str(json.loads(call.function.arguments or "{}").get("doc_id", "")).strip()
            if code and code not in order:
                order.append(code)
    labels = _labels(task)
    places_noted: list[tuple[list[str], bool, bool]] = []  # per place: its lines, started, done
    for code in order:
        name = places.get(code, code)
        todo: dict[str, str] = {}  # heading -> label, in the order the expert finds them
        for f in task.fields_to_read:
            if (code, f.path[1].lower()) not in found:
                todo.setdefault(f.path[1].lower(), labels.get(f.id, f.label))
        left_out = found_left_out(task, code, found)
        cells: list[str] = []
        for f in task.columns:  # the row as far as it goes
            entries = found.get((code, f.path[1].lower()))
            value = f.parse(read_entry(entries, f.path)) if entries is not None else None
            if value is None:
                break
            cells.append(f.cell(value))
        started = len(todo) < len({f.path[1].lower() for f in task.fields_to_read})
        if left_out:
            places_noted.append(([_note(name, code, [], True)], started, True))
        else:
            todo_line = ["To do: " + " | ".join(todo.values())] if todo else []
            places_noted.append(([table_line([name, *cells]), *todo_line], started, not todo))
    # The rows of the places done are restated only in the turn the last of them is done
    # (and the answer's), so that the context grows by a table per place, not per turn.
    if places_noted and places_noted[-1][1] and not places_noted[-1][2]:
        places_noted = places_noted[-1:]
    lines += [line for place_lines, _, _ in places_noted for line in place_lines]
    return "\n".join(lines)


def page_notes(messages: Sequence[Message], style: NoteStyle = "labelled") -> str:
    """Notes on the ``open_page`` results that follow the last assistant turn (see NotingExpert)."""
    from parlswarm.world.expert import table_line
    from parlswarm.world.pages import parse_page, read_entry, region_members
    from parlswarm.world.tasks import parse_query

    task_text = next((content_text(m.content) for m in messages if m.role == "user"), "")
    task = parse_query(task_text)
    if task is None:
        return ""
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    if last < 0:  # the first turn: nothing read yet, but the answer's header can be noted
        header = [table_line(task.header)] if style in VERBATIM_STYLES else []
        return "\n".join([*header, *(numbered_columns(task.header[1:]) if style == "numbered_cells" else [])])
    # Every page read so far, by document, so that a value split over pages is found.
    bodies: dict[str, dict[int, str]] = {}
    for m in messages:
        if isinstance(m, ToolMessage):
            view = parse_page(content_text(m.content))
            if view is not None:
                bodies.setdefault(view.doc_id, {})[view.page] = view.body
    wanted = task.fields_to_read
    lines = _verdict_notes(messages) if style in TOOL_CHECKED_STYLES else []
    lines += _find_notes(task, messages[last + 1 :], style)
    for m in messages[last + 1 :]:
        view = parse_page(content_text(m.content)) if isinstance(m, ToolMessage) else None
        if view is None:
            continue
        if view.doc_id.startswith(REGION_PREFIX):
            places = region_members(view.body)
            if places and style in VERBATIM_STYLES:  # the index's own lines
                lines.append(_index_note(places))
            elif places:
                lines.append("Places: " + ", ".join(f"{n} ({c})" for n, c in places))
            continue
        code, _, _ = view.doc_id.partition("/")
        title = view.body.split("\n", 1)[0]
        name = title[2:].split(" — ")[0] if title.startswith("# ") else code
        here = [f for f in wanted if read_entry(view.body, f.path) is not None and f.parse(read_entry(view.body, f.path)) is not None]
        section_fields = [f for f in wanted if view.doc_id.endswith("/" + _slug_of(f.section))]
        parts = []
        left_out = False
        for f in here:
            value = f.parse(read_entry(view.body, f.path))
            assert value is not None
            parts.append(f"{f.label} = {f.cell(value)}")
            left_out = left_out or (f is task.filter_field and not task.passes_filter(value))
        if view.page == view.pages:
            text = "\n".join(bodies.get(view.doc_id, {}).get(p, "") for p in sorted(bodies.get(view.doc_id, {})))
            if any(f.parse(read_entry(text, f.path)) is None for f in section_fields):
                left_out = True
        if parts or left_out:
            lines.append(_note(name, code, parts, left_out))
    if style == "tracked" and lines:
        upcoming = _next_note(task, messages)
        if upcoming:
            lines.append(upcoming)
    return "\n".join(lines)


def _next_note(task: Any, messages: Sequence[Message]) -> str | None:
    """``tracked`` notes: the first listed place no ``find`` has read yet, or ``none: answer``."""
    from parlswarm.world.pages import parse_find, parse_page, region_members

    places = task.places
    read: set[str] = set()
    for m in messages:
        if not isinstance(m, ToolMessage):
            continue
        text = content_text(m.content)
        found = parse_find(text)
        if found is not None:
            read.add(found.doc_id.partition("/")[0])
        page = parse_page(text) if found is None and places is None else None
        if page is not None and page.doc_id.startswith(REGION_PREFIX):
            places = region_members(page.body) or None
    if not places:
        return None
    left = [(name, code) for name, code in places if code not in read]
    return f"Next: {left[0][0]} ({left[0][1]})" if left else "Next: none: answer"


def _index_note(places: Sequence[tuple[str, str]]) -> str:
    """A region index's places as it lists them, one ``- Name (code)`` line each (verbatim notes)."""
    return "\n".join(["Places:", *(f"- {n} ({c})" for n, c in places)])


def _note(name: str, code: str, parts: Sequence[str], left_out: bool) -> str:
    return f"{name} ({code}): " + "; ".join([*parts, *(["left out"] if left_out else [])])


def _find_notes(task: Any, results: Sequence[Message], style: NoteStyle = "labelled") -> list[str]:
    """One note per place for the ``find`` results of one turn (the ``find`` reader's notes)."""
    from parlswarm.world.expert import table_line
    from parlswarm.world.pages import parse_find

    found: dict[str, tuple[str, dict[str, str]]] = {}  # code -> (name, doc_id -> entries found)
    for m in results:
        view = parse_find(content_text(m.content)) if isinstance(m, ToolMessage) else None
        if view is None:
            continue
        code, _, _ = view.doc_id.partition("/")
        name = view.title.split(" — ")[0]
        docs = found.setdefault(code, (name, {}))[1]
        docs[view.doc_id] = (docs.get(view.doc_id, "") + "\n" + view.body).strip("\n")
    lines = []
    for code, (name, docs) in found.items():
        read = _read_fields(task, code, docs)
        if style in CHECKED_STYLES:
            lines.extend(_checked_note(task, name, read))
            continue
        if style in TOOL_CHECKED_STYLES and task.filter_field is not None and read.get(task.filter_field.id) is not None:
            lines.extend(_to_check_note(task, name, code, read, style))
            continue
        comparison = _comparison_note(task, name, code, read, wanted=style == "matched") if style in COMPARED_STYLES else None
        if comparison is not None:
            lines.append(comparison)
            if comparison.endswith(": left out"):
                continue  # the filter's verdict is the place's note
        parts = []
        cells: dict[str, str] = {}
        left_out = False
        for f in task.fields_to_read:
            if f.id not in read:
                continue
            value = read[f.id]
            if value is None:
                left_out = True
                continue
            parts.append(f"{f.label} = {f.cell(value)}")
            cells[f.id] = f.cell(value)
            left_out = left_out or (f is task.filter_field and not task.passes_filter(value))
        if style != "labelled" and not left_out and all(f.id in cells for f in task.columns):
            row = [cells[f.id] for f in task.columns]
            lines.extend([*cell_lines(task.header[1:], row, style), table_line([name, *row])])
        elif style != "labelled":
            lines.append(_note(name, code, [], True) if left_out else _note(name, code, parts, False))
        else:
            lines.append(_note(name, code, parts, left_out))
    return lines


def _read_fields(task: Any, code: str, docs: dict[str, str]) -> dict[str, Any]:
    """A place's values of the task's fields from its ``find`` results, by field id: None where
    the entry was found without a value; fields not looked for are absent."""
    from parlswarm.world.pages import read_entry

    read: dict[str, Any] = {}
    for f in task.fields_to_read:
        text = docs.get(f"{code}/{_slug_of(f.section)}", docs.get(code))  # a section's find, or the place's
        if text is not None:
            read[f.id] = f.parse(read_entry(text, f.path))
    return read


def _checked_note(task: Any, name: str, read: dict[str, Any]) -> list[str]:
    """A place's ``checked`` note: its row (``?`` where the page lacks a value), then the verdict."""
    from parlswarm.world.expert import table_line

    labels = _labels(task)
    lines = [table_line([name, *(f.cell(read[f.id]) if read.get(f.id) is not None else "?" for f in task.columns)])]
    flt = task.filter_field
    if flt is not None and flt.id in read:
        label = labels.get(flt.id, flt.label)
        value = read[flt.id]
        if value is None:
            return [*lines, f"{label}: no value: left out"]
        kept = task.passes_filter(value)
        verdict = "kept" if kept else "left out"
        lines.append(f"{label} = {flt.cell(value)}, {'' if kept else 'not '}{task.filter.op} {flt.cell(task.filter.value)}: {verdict}")
        if not kept:
            return lines
    missing = next((f for f in task.columns if f.id in read and read[f.id] is None), None)
    if missing is not None:
        lines.append(f"{labels[missing.id]}: no value: left out")
    return lines


def _to_check_note(task: Any, name: str, code: str, read: dict[str, Any], style: NoteStyle = "verified") -> list[str]:
    """A ``verified`` place with its filter value read: ``left out`` for a column without a value;
    else its row (after its cells' lines, in the cell styles) and the value with the task's
    condition, the ``check`` call's two arguments."""
    from parlswarm.world.expert import table_line
    from parlswarm.world.tasks import filter_condition

    if any(read.get(f.id, 0) is None for f in task.fields_to_read):
        return [_note(name, code, [], True)]
    flt = task.filter_field
    value = flt.cell(read[flt.id])
    row: list[str] = []
    if all(f.id in read for f in task.columns):
        cells = [f.cell(read[f.id]) for f in task.columns]
        row = [*cell_lines(task.header[1:], cells, style), table_line([name, *cells])]
    return [*row, f"{name} ({code}): {_labels(task).get(flt.id, flt.label)} = {value}, {filter_condition(task.filter)}?"]


def lower_label(label: str) -> str:
    """A column's label as a ``lower_cells`` note writes it: lower-cased, without its unit
    (``Highest point`` -> ``highest point``, ``Coastline (km)`` -> ``coastline``)."""
    return re.sub(r" \(.*\)$", "", label).lower()


def cell_lines(header: Sequence[str], cells: Sequence[str], style: NoteStyle) -> list[str]:
    """A row's cells, one line per column in the header's order: ``Label = value`` with the
    header's label (``cells`` notes), numbered as the first turn numbers the columns
    (``numbered_cells``: ``2. Label = value``), ``label: value`` with it lower-cased and without
    its unit (``lower_cells``); none in the other styles. ``header`` without its ``Country`` column."""
    if style == "cells":
        return [f"{label} = {cell}" for label, cell in zip(header, cells, strict=True)]
    if style == "numbered_cells":
        return [f"{n}. {label} = {cell}" for n, (label, cell) in enumerate(zip(header, cells, strict=True), 1)]
    if style == "lower_cells":
        return [f"{lower_label(label)}: {cell}" for label, cell in zip(header, cells, strict=True)]
    return []


def numbered_columns(header: Sequence[str]) -> list[str]:
    """The columns after ``Country``, one numbered line each (``1. Highest point``): what a
    ``numbered_cells`` first turn notes after the header row."""
    return [f"{n}. {label}" for n, label in enumerate(header, 1)]



def _verdict_notes(messages: Sequence[Message]) -> list[str]:
    """``verified`` notes: the answer of each ``check`` call of the last turn, as the verdict on the
    place it checked (the place of the latest ``find`` before it)."""
    from parlswarm.world.expert import call_history, checks_by_place
    from parlswarm.world.pages import parse_find

    calls = call_history(messages)
    last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=-1)
    latest = {tc.id for tc in getattr(messages[last], "tool_calls", None) or []} if last >= 0 else set()
    names = {}
    for call in calls:
        view = parse_find(call.result or "") if call.name == "find" else None
        if view is not None:
            names[view.doc_id.partition("/")[0]] = view.title.split(" — ")[0]
    lines = []
    for code, call in checks_by_place(calls).items():
        if call.id in latest and not (call.result or "").startswith("error"):
            kept = (call.result or "").startswith("yes")
            lines.append(f"{names.get(code, code)} ({code}): {'yes: kept' if kept else 'no: left out'}")
    return lines


def _comparison_note(task: Any, name: str, code: str, read: dict[str, Any], wanted: bool = False) -> str | None:
    """A place's ``compared`` note: its filter value against the threshold, and the verdict
    (None without a filter, or when the filter's value was not read or the page has none);
    ``wanted``: the relation the task keeps before the verdict (``matched`` notes)."""
    flt = task.filter_field
    value = read.get(flt.id) if flt is not None else None
    if flt is None or value is None:
        return None
    labels = _labels(task)
    mine, threshold = aligned_numbers(flt.cell(value), flt.cell(task.filter.value))
    relation = relation_of(value, task.filter.value)
    verdict = "kept" if task.passes_filter(value) else "left out"
    wants = f", wanted {_RELATIONS[task.filter.op]}" if wanted else ""
    return f"{name} ({code}): {labels.get(flt.id, flt.label)} = {mine} vs {threshold}: {relation}{wants}: {verdict}"


# A filter's operator as the relation a kept value has to its threshold.
_RELATIONS = {"above": "above", "below": "below", "exactly": "equal"}


def relation_of(value: float, threshold: float) -> str:
    """The relation a comparison line writes: ``above``, ``below`` or ``equal``."""
    return "above" if value > threshold else "below" if value < threshold else "equal"


def aligned_numbers(a: str, b: str) -> tuple[str, str]:
    """Two plain-digit numbers written to the same digits: whole parts zero-padded on the left,
    fractions on the right (``1885``/``400`` -> ``1885``/``0400``; ``2.04``/``2.5`` -> ``2.04``/``2.50``),
    so that comparing them is reading digit under digit from the left."""
    parts = []
    for text in (a, b):
        sign = "-" if text.startswith("-") else ""
        whole, _, frac = text.lstrip("-").partition(".")
        parts.append((sign, whole, frac))
    width = max(len(w) for _, w, _ in parts)
    decimals = max(len(f) for _, _, f in parts)
    out = [f"{s}{w.rjust(width, '0')}" + (f".{f.ljust(decimals, '0')}" if decimals else "") for s, w, f in parts]
    return out[0], out[1]


# A comparison line as _comparison_note writes it, wherever it stands in a turn (a line whose
# numbers are not numbers, "12.5.3", is not one: there is no relation to check it against).
_NUMBER = r"(-?\d+(?:\.\d+)?)"
_COMPARISON = re.compile(rf"= {_NUMBER} vs {_NUMBER}: (above|below|equal)(?:, wanted (above|below|equal))?: (kept|left out)")


@dataclass(frozen=True)
class WrittenComparison:
    """A comparison line a model wrote (``= 1885 vs 0400: above, wanted above: kept``), to be
    checked against its own numbers: whether they stand digit under digit, whether the relation
    is theirs, whether the verdict follows the relation (``matched`` lines)."""

    value: str
    threshold: str
    relation: str
    wanted: str | None  # None in compared lines
    verdict: str

    @property
    def aligned(self) -> bool:
        return aligned_numbers(self.value, self.threshold) == (self.value, self.threshold)

    @property
    def relation_right(self) -> bool:
        a, b = float(self.value), float(self.threshold)
        return self.relation == relation_of(a, b)

    @property
    def verdict_follows(self) -> bool | None:
        return None if self.wanted is None else (self.verdict == "kept") == (self.relation == self.wanted)


def written_comparisons(text: str) -> list[WrittenComparison]:
    """Every comparison line in ``text``, in order."""
    return [WrittenComparison(*m.groups()) for m in _COMPARISON.finditer(text)]


def _labels(task: Any) -> dict[str, str]:
    """Each column's label as the task's header writes it, by field id."""
    return {f.id: label for f, label in zip(task.columns, task.header[1:])}


def _slug_of(section: str) -> str:
    from parlswarm.world.factbook import slug

    return slug(section)
