"""The scripted expert: an oracle policy for the world's tasks that reads pages like an agent.

It is a :class:`~parlswarm.models.base.Model`, so it runs through the same runtime
(:class:`~parlswarm.swarm.Swarm`) and the same tools as any LLM: it reads the task text,
searches for the region's index page, opens it, then opens each place's section pages and
reads the entries off them. It never sees gold tables. Every turn it works out what to do
next from the conversation alone, so one instance can serve an orchestrator and any number
of concurrent sub-agents.

Two styles, picked from the tools on offer:

- **serial** (no orchestration tools, or ``expert:serial``): one agent reads every page
  itself, one tool call per turn.
- **swarm** (``assign_task`` on offer): the orchestrator finds the places, creates one
  sub-agent with ``create_subagent``, and in one turn assigns each of k sub-agents a share of
  the places with ``assign_task``; they work serially and return a table each, which it
  merges.

Two ways to write a sub-task (``subtask``): ``full`` repeats the task's whole format rules
(what an LLM sub-agent needs); ``short`` (``expert:short``) gives only the places, the filter
and the columns, the ~60-token argument a small orchestrator can copy (docs/parl.md).

Two ways to read a place (``reader``): ``pages`` opens each section page it needs, one
``open_page`` per turn; ``find`` (``expert:find``, when the ``find`` tool is on offer) asks
for every entry it needs of one place in a single turn of ``find`` calls, the short
trajectories the built-in model is taught on. ``stepwise`` (``expert:stepwise``) asks for
one entry a turn instead, so that each turn has one new result to read (the built-in model's
``stepwise`` notes, docs/local-model.md).

It is the upper-bound baseline of the bench and a teacher for warm-start traces; it is
labelled "scripted expert" wherever it appears.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from parlswarm.models.base import ModelSpecError
from parlswarm.models.registry import ModelOptions, register
from parlswarm.models.scripted import reply_to_message
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolChoice, ToolMessage, ToolSpec, Usage, content_text
from parlswarm.world.factbook import REGION_NAMES
from parlswarm.world.fields import Value
from parlswarm.world.pages import parse_find, parse_page, read_entry, region_members, section_doc_id
from parlswarm.world.tasks import ParsedTask, filter_clause, filter_condition, format_instructions, parse_query

Style = Literal["auto", "serial"]
Reader = Literal["pages", "find"]
Subtask = Literal["full", "short"]
PlaceOutcome = list[Value] | None | dict[str, Any]  # a place's values; None: left out; or the next tool call
NAME = "scripted expert"
SUBAGENT = "factbook-reader"
SUBAGENT_PROMPT = (
    "You read the World Factbook with its tools (search, open_page, find) and fill in tables exactly as "
    "asked. Reply with the table only."
)
# A full sub-task's first line, before its list of places (``{code}``: the first place's).
SUBTASK_OPENING = (
    "Fill in a table for exactly these places of the World Factbook (each has one page per section, "
    "doc id CODE/SECTION, e.g. {code}/government):"
)
MAX_SEARCHES = 3


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]
    result: str | None = None


@dataclass
class DocReading:
    """What has been read of one document so far."""

    pages: int = 0  # its page count, once known
    bodies: dict[int, str] = field(default_factory=dict)
    failed: bool = False  # open_page said it does not exist

    def next_page(self) -> int | None:
        """The next page to read, or None when there is nothing more to read."""
        if self.failed:
            return None
        n = len(self.bodies) + 1
        return n if self.pages == 0 or n <= self.pages else None

    def text(self) -> str:
        return "\n".join(self.bodies[p] for p in sorted(self.bodies))


def call_history(messages: Sequence[Message]) -> list[Call]:
    """Every tool call of the conversation in order, with its result once it came back."""
    calls: dict[str, Call] = {}
    order: list[Call] = []
    for m in messages:
        if isinstance(m, AssistantMessage):
            for tc in m.tool_calls or []:
                try:
                    args = json.loads(tc.function.arguments or "{}")
                except json.JSONDecodeError:
                    args = {}
                call = Call(tc.id, tc.function.name, args if isinstance(args, dict) else {})
                calls[tc.id] = call
                order.append(call)
        elif isinstance(m, ToolMessage) and m.tool_call_id in calls:
            calls[m.tool_call_id].result = content_text(m.content)
    return order


def _readings(calls: Sequence[Call]) -> dict[str, DocReading]:
    docs: dict[str, DocReading] = {}
    for call in calls:
        if call.name != "open_page" or call.result is None:
            continue
        doc_id = str(call.args.get("doc_id", "")).strip()
        reading = docs.setdefault(doc_id, DocReading())
        view = parse_page(call.result)
        if view is None:
            reading.failed = True
            continue
        reading.pages = view.pages
        reading.bodies[view.page] = view.body
    return docs


def _found(calls: Sequence[Call]) -> dict[tuple[str, str], str]:
    """The entries each answered ``find`` call returned, by (doc_id, words); "" when it failed."""
    out: dict[tuple[str, str], str] = {}
    for call in calls:
        if call.name != "find" or call.result is None:
            continue
        key = (str(call.args.get("doc_id", "")).strip(), " ".join(str(call.args.get("text", "")).split()).lower())
        view = parse_find(call.result)
        out[key] = view.body if view is not None else ""
    return out


def found_left_out(task: ParsedTask, code: str, found: dict[tuple[str, str], str], by_filter: bool = True) -> bool:
    """Whether the entries found so far for place ``code`` leave it out of the table: one of the
    task's fields found without a value, or (``by_filter``) the filter's value failing it. ``found``
    is keyed like :func:`_found`'s, (place code, the words looked for in lower case)."""
    for f in task.fields_to_read:
        entries = found.get((code, f.path[1].lower()))
        if entries is None:
            continue
        value = f.parse(read_entry(entries, f.path))
        if value is None or (by_filter and f is task.filter_field and not task.passes_filter(value)):
            return True
    return False


def checks_by_place(calls: Sequence[Call]) -> dict[str, Call]:
    """The answered ``check`` calls by place code: each belongs to the place the latest ``find``
    before it read (a reader checks a place's filter value after finding it)."""
    out: dict[str, Call] = {}
    place = None
    for call in calls:
        if call.name == "find":
            place = str(call.args.get("doc_id", "")).strip().partition("/")[0]
        elif call.name == "check" and call.result is not None and place:
            out[place] = call
    return out


def table_line(cells: Sequence[str]) -> str:
    """One line of the expert's Markdown tables (``|`` inside a cell becomes ``/``)."""
    return "| " + " | ".join(c.replace("|", "/") for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join([table_line(header), table_line(["---"] * len(header)), *(table_line(r) for r in rows)])


def _parse_table(text: str) -> list[list[str]]:
    """Body rows of the first Markdown table in ``text``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    return [r for r in rows[2:] if not all(set(c) <= set("-: ") for c in r)]


def _answer(header: Sequence[str], rows: Sequence[Sequence[str]], note: str = "") -> str:
    intro = f"Here is the table{note}, read from the World Factbook pages:"
    return f"{intro}\n\n```markdown\n{_table(header, rows)}\n```"


def _tool(tool_name: str, **arguments: Any) -> dict[str, Any]:
    return {"content": None, "tool_calls": [{"name": tool_name, "arguments": arguments}]}


class ExpertModel:
    """The scripted expert policy as a Model."""

    def __init__(
        self,
        style: Style = "auto",
        rows_per_agent: int = 2,
        max_agents: int = 32,
        reader: Reader = "pages",
        subtask: Subtask = "full",
        stepwise: bool = False,
    ) -> None:
        if rows_per_agent < 1 or max_agents < 1:
            raise ValueError("rows_per_agent and max_agents must be at least 1")
        if stepwise and reader != "find":
            raise ValueError("a stepwise expert finds one entry a turn: it needs reader='find'")
        self.style = style
        self.rows_per_agent = rows_per_agent
        self.max_agents = max_agents
        self.reader = reader
        self.subtask_style = subtask
        self.stepwise = stepwise
        traits = [
            "serial" if style == "serial" else "",
            "find" if reader == "find" else "",
            "short" if subtask == "short" else "",
            "stepwise" if stepwise else "",
        ]
        traits = [t for t in traits if t]
        self.name = NAME + (f" ({', '.join(traits)})" if traits else "")

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        # tool_choice is not honoured: the expert never repeats a step, the only time the runtime sets it.
        reply = self.decide(messages, [t.name for t in tools])
        message = reply_to_message(reply, sum(1 for m in messages if m.role == "assistant"))
        prompt_chars = sum(len(content_text(getattr(m, "content", None))) for m in messages)
        out_chars = len(message.content or "") + sum(
            len(c.function.name) + len(c.function.arguments) for c in message.tool_calls or []
        )
        usage = Usage(prompt_tokens=max(1, prompt_chars // 4), completion_tokens=max(1, out_chars // 4))
        return ModelResponse(
            message=message, usage=usage, model=self.name, finish_reason="tool_calls" if message.tool_calls else "stop"
        )

    # --- policy ---------------------------------------------------------------------------

    def decide(self, messages: Sequence[Message], tool_names: Sequence[str]) -> str | dict[str, Any]:
        """The next reply: a tool call (as a scripted reply mapping) or the final answer."""
        task_text = next((content_text(m.content) for m in messages if m.role == "user"), "")
        task = parse_query(task_text)
        if task is None or not {"search", "open_page"} <= set(tool_names):
            return (
                f"{NAME}: I only solve World Factbook table tasks written by parlswarm's task generator, "
                "with the world tools (search, open_page) on offer."
            )
        calls = call_history(messages)
        finds = "find" in tool_names
        checks = "check" in tool_names  # the filter's verdict from the check tool (find reader)
        if calls and calls[-1].result is not None and calls[-1].result.startswith("error: refused"):
            return self._final(task, calls, finds, note=" (incomplete: a budget ran out)", checks=checks)
        places = task.places
        if places is None:
            found = self._find_places(task, calls)
            if not isinstance(found, list):
                return found
            places = found
        orchestrate = (
            self.style == "auto"
            and "assign_task" in tool_names
            and "create_subagent" in tool_names
            and len(places) > self.rows_per_agent
        )
        if orchestrate:
            return self._orchestrate(task, places, calls, finds, checks)
        return self._work(task, places, calls, finds, checks)

    def _find_places(self, task: ParsedTask, calls: Sequence[Call]) -> list[tuple[str, str]] | str | dict[str, Any]:
        """The region's places from its index page, or the call that gets closer to them."""
        assert task.region is not None
        region_name = REGION_NAMES[task.region]
        title = f"{region_name} — countries and territories"
        readings = _readings(calls)
        for doc_id, reading in readings.items():
            first = reading.bodies.get(1, "")
            if first.startswith(f"# {title}"):
                page = reading.next_page()
                if page is not None:
                    return _tool("open_page", doc_id=doc_id, page=page)
                return [(name, code) for name, code in region_members(reading.text())]
        searches = [c for c in calls if c.name == "search" and c.result is not None]
        for call in searches:
            try:
                hits = json.loads(call.result or "[]")
            except json.JSONDecodeError:
                continue
            for hit in hits if isinstance(hits, list) else []:
                if isinstance(hit, dict) and hit.get("title") == title:
                    return _tool("open_page", doc_id=hit["doc_id"], page=1)
        if len(searches) >= MAX_SEARCHES:
            return f"{NAME}: could not find the index page of {region_name}."
        queries = [f"{region_name} countries and territories", f"{region_name} region index", region_name]
        return _tool("search", query=queries[len(searches)], k=5)

    def _work(
        self, task: ParsedTask, places: Sequence[tuple[str, str]], calls: Sequence[Call], finds: bool = False,
        checks: bool = False,
    ) -> str | dict[str, Any]:
        """Read the places one at a time; answer when every place is settled."""
        read = self._place_reader(calls, finds, checks)
        rows: list[list[str]] = []
        for name, code in places:
            outcome = read(task, code)
            if isinstance(outcome, dict):
                return outcome
            if outcome is not None:
                rows.append([name] + [f.cell(v) for f, v in zip(task.columns, outcome)])
        return _answer(task.header, rows)

    def _place_reader(self, calls: Sequence[Call], finds: bool, checks: bool = False) -> Callable[[ParsedTask, str], PlaceOutcome]:
        """How this expert settles a place, given what the conversation has read so far."""
        if finds and self.reader == "find":
            found = _found(calls)
            checked = checks_by_place(calls) if checks and not self.stepwise else None
            return lambda task, code: self._find_place(task, code, found, checked)
        readings = _readings(calls)
        return lambda task, code: self._read_place(task, code, readings)

    def _read_place(self, task: ParsedTask, code: str, readings: dict[str, DocReading]) -> PlaceOutcome:
        """A place's column values; None when it is left out; or the next page to open."""
        wanted = task.fields_to_read
        sections: list[str] = []
        for f in wanted:
            if f.section not in sections:
                sections.append(f.section)
        values: dict[str, Value] = {}
        for section in sections:
            doc_id = section_doc_id(code, section)
            reading = readings.get(doc_id, DocReading())
            text = reading.text()
            for f in (f for f in wanted if f.section == section and f.id not in values):
                value = f.parse(read_entry(text, f.path)) if text else None
                if value is None:
                    page = reading.next_page()
                    if page is not None:
                        return _tool("open_page", doc_id=doc_id, page=page)
                    return None  # not on any page: the place is left out
                values[f.id] = value
            if task.filter is not None and task.filter.field in values and not task.passes_filter(values[task.filter.field]):
                return None
        return [values[f.id] for f in task.columns]

    def _find_place(
        self, task: ParsedTask, code: str, found: dict[tuple[str, str], str], checked: dict[str, Call] | None = None
    ) -> PlaceOutcome:
        """Like ``_read_place`` with ``find``: every entry of the place asked for in one turn
        (``stepwise``: one entry a turn, in the order of ``fields_to_read``).

        It finds in the whole place (doc id = the place code), so a reader needs to know no
        field's section. With ``checked`` (the ``check`` tool on offer) a place with every value
        found is then checked against the task's filter in a turn of its own, and kept as that
        check answers.
        """
        wanted = task.fields_to_read
        keys: list[tuple[str, str]] = []
        for f in wanted:
            key = (code, f.path[1])
            if key not in keys:
                keys.append(key)
        missing = [k for k in keys if (k[0], k[1].lower()) not in found]
        if missing and self.stepwise:
            if found_left_out(task, code, found):  # settled before the rest is found
                return None
            missing = missing[:1]
        if missing:
            return {
                "content": None,
                "tool_calls": [{"name": "find", "arguments": {"doc_id": d, "text": t}} for d, t in missing],
            }
        if checked is not None and task.filter is not None and task.filter_field is not None:
            if found_left_out(task, code, found, by_filter=False):
                return None
            call = checked.get(code)
            if call is None:
                flt = task.filter_field
                value = flt.parse(read_entry(found[(code, flt.path[1].lower())], flt.path))
                return _tool("check", value=flt.cell(value), condition=filter_condition(task.filter))
            if not (call.result or "").startswith("yes"):
                return None
        elif found_left_out(task, code, found):
            return None
        values = [f.parse(read_entry(found[(code, f.path[1].lower())], f.path)) for f in task.columns]
        return [v for v in values if v is not None]  # all of them: none is missing

    def _orchestrate(
        self, task: ParsedTask, places: Sequence[tuple[str, str]], calls: Sequence[Call], finds: bool, checks: bool = False
    ) -> str | dict[str, Any]:
        created = [c for c in calls if c.name == "create_subagent"]
        if not created:
            reading = ["search", "open_page", "find"] if self.reader == "find" and finds else ["search", "open_page"]
            if checks and "find" in reading:
                reading.append("check")
            return _tool("create_subagent", name=SUBAGENT, system_prompt=SUBAGENT_PROMPT, tools=reading)
        if created[-1].result is not None and created[-1].result.startswith("error"):
            return self._work(task, places, calls, finds, checks)  # no sub-agents to be had: do it alone
        assigned = [c for c in calls if c.name == "assign_task"]
        if not assigned:
            k = min(self.max_agents, math.ceil(len(places) / self.rows_per_agent))
            size, extra = divmod(len(places), k)
            shares, start = [], 0
            for i in range(k):
                end = start + size + (1 if i < extra else 0)
                shares.append(places[start:end])
                start = end
            return {
                "content": None,
                "tool_calls": [
                    {"name": "assign_task", "arguments": {"agent": SUBAGENT, "prompt": self.subtask(task, share, self.subtask_style)}}
                    for share in shares
                ],
            }
        order = {name: i for i, (name, _) in enumerate(places)}
        rows: dict[str, list[str]] = {}
        for call in assigned:
            for row in _parse_table(call.result or ""):
                if row and row[0] in order and len(row) == len(task.header):
                    rows[row[0]] = row
        missing = sum(1 for c in assigned if not _parse_table(c.result or "") and "error" in (c.result or ""))
        note = f" ({missing} sub-agent{'s' if missing > 1 else ''} failed)" if missing else ""
        return _answer(task.header, sorted(rows.values(), key=lambda r: order[r[0]]), note)

    @staticmethod
    def subtask(task: ParsedTask, places: Sequence[tuple[str, str]], style: Subtask = "full") -> str:
        """A self-contained sub-task: these places, the same columns, filter and (``full``) format rules."""
        listing = "\n".join(f"- {name} ({code})" for name, code in places)
        keep = f"Keep only those {filter_clause(task.filter)}. " if task.filter is not None else ""
        if style == "short":
            columns = " | ".join(task.header)
            return f"Fill in a table for these places:\n{listing}\n\n{keep}Reply with a table with exactly these columns, in this order: {columns}."
        return f"{SUBTASK_OPENING.format(code=places[0][1])}\n{listing}\n\n{keep}{format_instructions(task.header)}"

    def _final(self, task: ParsedTask, calls: Sequence[Call], finds: bool, note: str, checks: bool = False) -> str:
        """The answer from whatever is complete so far (after a budget refusal)."""
        read = self._place_reader(calls, finds, checks)
        places = task.places
        if places is None:
            found = self._find_places(task, calls)
            places = found if isinstance(found, list) else []
        rows = []
        for name, code in places:
            outcome = read(task, code)
            if isinstance(outcome, list):
                rows.append([name] + [f.cell(v) for f, v in zip(task.columns, outcome)])
        for call in calls:
            if call.name == "assign_task":
                rows.extend(r for r in _parse_table(call.result or "") if len(r) == len(task.header))
        return _answer(task.header, rows, note)


def _factory(arg: str, options: ModelOptions) -> ExpertModel:
    style: Style = "auto"
    reader: Reader = "pages"
    subtask: Subtask = "full"
    stepwise = False
    kwargs: dict[str, int] = {}
    for part in (p.strip() for p in arg.split(",") if p.strip()):
        key, _, value = part.partition("=")
        if key == "serial" and not value:
            style = "serial"
        elif key == "find" and not value:
            reader = "find"
        elif key == "short" and not value:
            subtask = "short"
        elif key == "stepwise" and not value:
            reader, stepwise = "find", True
        elif key in ("rows", "agents") and value.isdigit() and int(value) >= 1:
            kwargs["rows_per_agent" if key == "rows" else "max_agents"] = int(value)
        else:
            raise ModelSpecError(
                f"unknown option '{part}' of model 'expert'; use expert, expert:serial, expert:find, expert:short, expert:stepwise, expert:rows=N, "
                "expert:agents=N"
                " (comma-separated)"
            )
    return ExpertModel(style, reader=reader, subtask=subtask, stepwise=stepwise, **kwargs)


register("expert", _factory, "expert[:serial|find|short|stepwise|rows=N|agents=N] (scripted expert for the offline world)")
