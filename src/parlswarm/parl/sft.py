"""Supervised warm start: expert traces from real runtime runs, then next-token training on assistant turns.

1. **Traces.** The scripted expert (:mod:`parlswarm.world.expert`) solves training tasks in
   counterfactual worlds through the ordinary runtime (:class:`~parlswarm.swarm.Swarm`), in
   single mode (serial) and swarm mode (an orchestrator plus sub-agents). A
   :class:`RecordingModel` around it keeps every conversation exactly as the runtime fed it
   to the model: system prompt, task, assistant turns with their tool calls, tool results.
   Many world seeds, so the model learns to read pages rather than memorise facts.
2. **Notes.** With context folding (``keep_tool_results``) a small model sees only the latest
   tool results; :class:`NotingExpert` makes the teacher write down, in the text of each
   turn, what the page it has just read gives for the task (the expert's own reading of it),
   so that the values survive folding and the final table can be copied from the notes.
3. **Mix.** Orchestrator samples are drawn with a configurable parallel share (default mostly
   serial, as the warm start PARL needs); sub-agent samples from the swarm runs' sub-agents.
4. **Training.** Next-token loss on assistant tokens only (the mask from
   :meth:`LocalModel.training_samples`), AdamW with warm-up and cosine decay, periodic
   evaluation on dev-world samples (loss, token accuracy, whole-turn exact match),
   checkpoints with optimiser and random state, resume.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from parlswarm.config import load_yaml_model
from parlswarm.models.adapter import ADAPTER_CONFIG, LoraSettings, add_adapter, has_adapter, load_adapter, trainable
from parlswarm.models.local import SETTINGS_FILE, LocalModel, LocalSettings, load_local, module_device, weights_digest
from parlswarm.models.nano import NanoConfig, build_model, parameter_count, train_tokenizer, write_settings
from parlswarm.swarm import Swarm
from parlswarm.types import Budgets, Message, ModelResponse, ToolMessage, ToolSpec, content_text

log = logging.getLogger(__name__)

Kind = Literal["serial", "parallel", "subagent"]
# A sample's kind: a conversation's, except that with ``data.delegated_samples`` the turns of a
# parallel conversation after its create_subagent turn (assign, merge) are "delegated", and with
# ``data.answer_samples`` the final answer turn of a serial conversation is "answer".
SampleKind = Literal["serial", "parallel", "delegated", "answer", "subagent"]
NoteStyle = Literal["labelled", "row", "verbatim", "checked", "tracked", "stepwise"]
LookupPlaces = Literal["region", "gold"]  # where relabelled look-ups draw their place (parlswarm.parl.relabel)
# The styles that note a place as its row first and its verdict after (find reader only).
CHECKED_STYLES = ("checked", "tracked")
# The styles a plain expert writes (stepwise needs an expert that finds one entry a turn): the CLIs' choices.
PLAIN_NOTE_STYLES: tuple[str, ...] = tuple(s for s in get_args(NoteStyle) if s != "stepwise")


# --------------------------------------------------------------------------------------------
# Configuration


class OnPolicyConfig(BaseModel):
    """Relabelled on-policy turns (DAgger; :mod:`parlswarm.parl.relabel`), added to the expert's.

    ``policy`` (a ``save_pretrained`` folder, usually the run's ``init``) runs sub-agent
    look-ups and single-mode tasks in ``world_seeds`` at its own settings; every state it
    reaches becomes a training turn with the expert's reply as the target.
    """

    model_config = ConfigDict(extra="forbid")

    policy: Path
    world_seeds: list[int] = Field(default_factory=lambda: list(range(1, 9)))  # training worlds only
    lookups: int = Field(24, ge=0)  # one-place sub-agent look-ups per world
    single_tasks: int = Field(4, ge=0)  # single-mode tasks per world (of at most max_rows rows)
    max_rows: int | None = 10
    lookup_steps: int = Field(6, ge=1)
    # "region": any place of the task's region (some must be left out); "gold": its gold rows only
    lookup_places: LookupPlaces = "region"
    single_steps: int = Field(20, ge=1)
    max_new_tokens: int | None = 320  # caps the policy's turns (a looping turn ends sooner)
    temperature: float | None = None  # the policy's sampling temperature; its own setting when None
    samples: int = Field(2000, ge=0)  # relabelled turns drawn into the training set (with replacement if fewer)
    concurrency: int = Field(32, ge=1)  # runs in flight together (decoded in batches)


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world_seeds: list[int] = Field(default_factory=lambda: list(range(1, 13)))  # never 0: that is the real world
    dev_world_seed: int = 900
    # "drawn": new training questions in every world seed (parlswarm.world.tasks.drawn_tasks),
    # so column lists are read off the task, not learnt by heart from a few dozen.
    split: Literal["train", "dev", "test", "all", "drawn"] = "train"
    dev_split: Literal["train", "dev", "test", "all"] = "dev"
    drawn_tasks: int = Field(74, ge=1)  # tasks per world seed with split "drawn"
    max_rows: int | None = 10  # orchestrator traces only from tasks with at most this many rows
    rows_per_subagent: int = Field(1, ge=1)  # the expert's share of rows per sub-agent
    orchestrator_samples: int = Field(2000, ge=0)
    orchestrator_parallel_share: float = Field(0.2, ge=0.0, le=1.0)
    # Where the serial expert is recorded: "single" mode (its own prompt, no orchestration tools)
    # or "swarm" mode (the orchestrator's prompt and tools, none used), so that swarm-mode
    # decisions are mostly serial too — the serial-leaning warm start PARL needs (docs/parl.md).
    serial_mode: Literal["single", "swarm"] = "single"
    # None: a parallel conversation's turns are drawn together, at orchestrator_parallel_share.
    # A number: its turns after create_subagent (assign, merge) are drawn apart, this many, so
    # the share sets the decision alone and the turns after it can still be trained enough.
    delegated_samples: int | None = Field(None, ge=0)
    # None: a serial conversation's answer turn is drawn with its other turns. A number: answer
    # turns are drawn apart, this many. A serial trace has one answer turn among a dozen tool
    # turns, and its prompt is the longest, so drawn together few are trained (docs/local-model.md).
    answer_samples: int | None = Field(None, ge=0)
    subtask: Literal["full", "short"] = "full"  # how the expert writes sub-tasks (see parlswarm.world.expert)
    subagent_samples: int = Field(2000, ge=0)
    dev_samples: int = Field(64, ge=0)
    max_tokens: int = Field(2048, ge=16)  # samples longer than this are left out (counted)
    notes: bool = True  # teacher notes (see NotingExpert)
    note_style: NoteStyle = "labelled"  # how the teacher notes are written (see NotingExpert)
    reader: Literal["pages", "find"] = "pages"  # how the expert reads a place (see parlswarm.world.expert)
    on_policy: OnPolicyConfig | None = None  # add the policy's own runs, relabelled by the expert

    @model_validator(mode="after")
    def _stepwise_reads_with_find(self) -> DataConfig:
        if self.note_style == "stepwise" and self.reader != "find":
            raise ValueError("data.note_style 'stepwise' notes find results one at a time: set data.reader to 'find'")
        if self.note_style in CHECKED_STYLES and self.reader != "find":
            raise ValueError(f"data.note_style '{self.note_style}' notes the rows of find results: set data.reader to 'find'")
        return self


class CopyTaskConfig(BaseModel):
    """An auxiliary copying task mixed into every step (off at weight 0).

    A model trained from the agent turns alone did not learn to copy — the place code from
    its task into a doc id, a value from a tool result into its notes: those tokens are a
    small share of its targets. Two synthetic tasks train the mechanism directly:

    * ``repeat``: ``length`` random ordinary tokens and, after a random gap, the same tokens
      again; loss on the repeat. It only needs one-token matches. (With the copies always
      ``length`` apart the nano model learnt "copy from 40 tokens back" — 0.998 accuracy —
      and nothing that helps elsewhere.)
    * ``lists``: like ``repeat``, but the string is a list of the world's own phrases —
      column labels and place names in a random order, joined by `` | ``, ``, `` or a new
      line and ``- `` — cut to ``length`` tokens. The model knows these phrases and which
      tend to follow which, and that prior wins over copying: it wrote a table header from
      the task text right above it as ``Highest point | Unemployment rate (%) | Airports |
      Airports`` for ``Highest point | Population | Internet users (%) | Airports``. A list
      in a random order can only be copied.
    * ``recall`` (multi-query associative recall): ``pairs`` lines ``KEY = VALUE`` whose keys
      are two tokens from a small pool (so one token never tells them apart), then the keys
      again in a random order, each to be completed with its value; loss on the values. This
      is what the agent turns need: ``Yemen (`` → ``ym``, a field's label → its value.
      Mixed into the agent turns from the start it was not learnt in 300 steps; after
      ``repeat`` has formed the one-token copying mechanism it can build on it (``both``).
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    kind: Literal["repeat", "recall", "both", "lists"] = "both"  # both: repeat on even steps, recall on odd ones
    batch: int = Field(16, ge=1)
    length: int = Field(40, ge=2)  # repeat: tokens copied
    # repeat: every other token of the string is one of this many separator tokens (0: none).
    # Real copies run through separators — spaces (with ``separate_spaces``), " | ", "; " —
    # and the token before a word then says nothing about which word comes next; only the
    # token two back does. A plain random string never asks for that.
    separators: int = Field(0, ge=0)
    pairs: int = Field(16, ge=2)  # recall: key-value lines per sequence
    key_pool: int = Field(24, ge=4)  # recall: distinct tokens keys are made of
    # Stage 0: copy-task-only steps before the first agent turn. A fresh nano model forms
    # content-based copying in a sudden phase change (~2,000 steps of ``repeat``, ~3,500 of
    # ``both``; docs/local-model.md); mixed into agent turns it did not. The stage ends at
    # ``pretrain_steps`` or earlier, once every kind's accuracy over the last
    # ``pretrain_window`` steps reaches ``pretrain_until``.
    pretrain_steps: int = Field(0, ge=0)
    pretrain_until: float | None = Field(0.95, gt=0.0, le=1.0)
    pretrain_window: int = Field(50, ge=1)
    pretrain_lr: float = Field(1e-3, gt=0)

    def kind_at(self, step: int) -> Literal["repeat", "recall", "lists"]:
        """The task drawn at ``step``: ``both`` alternates, repeat on even steps."""
        if self.kind == "both":
            return "repeat" if step % 2 == 0 else "recall"
        return self.kind


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, ge=1)
    batch_tokens: int = Field(8192, ge=64)  # tokens per optimiser step (samples packed by length)
    lr: float = Field(2e-3, gt=0)
    min_lr: float = 1e-4
    warmup: int = Field(50, ge=0)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    eval_every: int = Field(100, ge=1)
    save_every: int = Field(100, ge=1)
    seed: int = 0
    threads: int | None = None  # torch threads; torch's default when None
    max_minutes: float | None = None  # stop (and save) after this long even before ``steps``
    # Share of a turn's tokens replaced, in the model's *input* only, by random ordinary
    # tokens; every target stays the expert's token. Teacher forcing never shows the model a
    # wrong token of its own; this teaches it to carry on correctly after one.
    input_noise: float = Field(0.0, ge=0.0, lt=1.0)
    copy_task: CopyTaskConfig = Field(default_factory=CopyTaskConfig)
    # Train a LoRA adapter on the ``init`` model instead of every weight (parlswarm.models.adapter);
    # the run's folders then hold the adapter and name its base (``init``, or init's own base
    # when init is an adapter, whose training goes on).
    lora: LoraSettings | None = None


class SFTConfig(BaseModel):
    """``configs/sft-*.yaml``."""

    model_config = ConfigDict(extra="forbid")

    out_dir: Path = Path("runs/sft-nano")
    architecture: Path = Path("configs/nano-small.json")  # a NanoConfig, relative to the config file
    vocab_size: int | None = None  # overrides the architecture's (tokenizer target size)
    # Fine-tune this model instead of a new nano model: a save_pretrained folder or a local
    # model spec (``hf:PATH``, ``hf-gguf:FILE``, ``hf-gguf:smollm2``, ``builtin``).
    init: str | None = None
    settings: LocalSettings = Field(
        default_factory=lambda: LocalSettings(tool_format="compact", keep_tool_results=1, max_context=None)
    )
    tokenizer_pages: int = Field(3000, ge=0)  # world pages (from the first training seed) the tokenizer learns on
    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _lora_and_init_agree(self) -> SFTConfig:
        if self.train.lora is not None and self.init is None:
            raise ValueError("train.lora needs init: the pretrained model the adapter is trained on")
        if self.init is not None and self.init.startswith("hf-gguf:") and self.train.lora is None:
            # transformers de-quantises a GGUF model but cannot save it whole again.
            raise ValueError(f"init {self.init!r} is a GGUF model: fine-tune it with train.lora (an adapter)")
        return self

    @classmethod
    def load(cls, path: str | Path) -> SFTConfig:
        path = Path(path)
        config = load_yaml_model(cls, path, "SFT config")
        base = path.parent
        if not config.architecture.is_absolute() and not config.architecture.exists():
            candidate = (base / config.architecture).resolve()
            if candidate.exists():
                config.architecture = candidate
        return config


# --------------------------------------------------------------------------------------------
# Recording real runs


@dataclass
class Conversation:
    """One agent's conversation as the runtime fed it to the model, ending with its last reply."""

    kind: Kind
    messages: list[Message]
    tools: list[ToolSpec]
    world_seed: int
    task_id: str
    last_turn_only: bool = False  # relabelled on-policy data: earlier turns are the model's own, context only

    def turns(self) -> int:
        return sum(1 for m in self.messages if m.role == "assistant")

    def trained_turns(self) -> range:
        n = self.turns()
        return range(n - 1, n) if self.last_turn_only else range(n)


class RecordingModel:
    """Wraps a Model; keeps each agent's latest (messages, tools, reply) by conversation.

    The agent loop passes the same list object on every turn of one agent, so its identity
    tells conversations apart; the recorder holds the list so the identity stays unique.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self._latest: dict[int, tuple[Sequence[Message], list[Message], list[ToolSpec]]] = {}

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        response = await self.inner.complete(messages, tools)
        self._latest[id(messages)] = (messages, [*messages, response.message], list(tools))
        return response

    def conversations(self) -> list[tuple[list[Message], list[ToolSpec]]]:
        return [(conv, tools) for _, conv, tools in self._latest.values()]


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
    ``tracked`` (``find`` reader): as ``checked``, and every turn that read the index or a
    place ends its notes with the place to read next, ``Next: Name (code)`` (the first place
    of the index, or of the sub-task's list, not yet read), or ``Next: none: answer`` once
    every place is read. The checked round's single-mode runs read their first place again and
    again, or answered after one or two (docs/local-model.md, "Single mode on all ten tasks"):
    which place is next, and whether any is left, rested on comparing the whole place list
    with every turn before; here it is the line after the previous turn's ``Next`` place in
    the list, and the answer follows ``Next: none``.
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

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        response = await self.expert.complete(messages, tools)
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
        if page is not None and page.doc_id.startswith("region/"):
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
    labels = {f.id: label for f, label in zip(task.columns, task.header[1:])}
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
        return table_line(task.header) if style in ("verbatim", *CHECKED_STYLES) else ""
    # Every page read so far, by document, so that a value split over pages is found.
    bodies: dict[str, dict[int, str]] = {}
    for m in messages:
        if isinstance(m, ToolMessage):
            view = parse_page(content_text(m.content))
            if view is not None:
                bodies.setdefault(view.doc_id, {})[view.page] = view.body
    wanted = task.fields_to_read
    lines = _find_notes(task, messages[last + 1 :], style)
    for m in messages[last + 1 :]:
        view = parse_page(content_text(m.content)) if isinstance(m, ToolMessage) else None
        if view is None:
            continue
        if view.doc_id.startswith("region/"):
            places = region_members(view.body)
            if places and style in ("verbatim", *CHECKED_STYLES):  # the index's own lines
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
        if page is not None and page.doc_id.startswith("region/"):
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
            lines.append(table_line([name, *(cells[f.id] for f in task.columns)]))
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

    labels = {f.id: label for f, label in zip(task.columns, task.header[1:])}
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


def _slug_of(section: str) -> str:
    from parlswarm.world.factbook import slug

    return slug(section)


async def _run_task(swarm: Swarm, query: str) -> None:
    await swarm.run(query)


def data_tasks(data: DataConfig, world: Any, real: Any, world_seed: int) -> list[Any]:
    """The tasks ``data`` trains on in one world: a split's, or drawn afresh (``split: drawn``)."""
    from parlswarm.world.tasks import drawn_tasks, make_tasks

    if data.split == "drawn":
        return drawn_tasks(world, real, world_seed, data.drawn_tasks)
    return make_tasks(data.split, world, real=real, world_seed=world_seed)


def record_traces(world_seed: int, data: DataConfig, real: Any = None) -> list[Conversation]:
    """Expert conversations in world ``world_seed``: serial and swarm runs of the split's tasks."""
    from parlswarm.world.expert import ExpertModel
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.tools import world_tools
    from parlswarm.world.world import World

    real = real or Factbook.load()
    world = World.load(world_seed, base=real)
    tools = world_tools(world)
    tasks = data_tasks(data, world.factbook, real, world_seed)
    budgets = Budgets(max_orchestrator_steps=400, max_subagent_steps=100, max_tool_calls=5000)
    out: list[Conversation] = []

    def wrap(model: Any) -> RecordingModel:
        return RecordingModel(NotingExpert(model, data.note_style) if data.notes else model)

    for task in tasks:
        small = data.max_rows is None or len(task.rows) <= data.max_rows
        runs: list[tuple[Literal["serial", "auto"], RecordingModel]] = []
        stepwise = data.note_style == "stepwise"
        serial = wrap(ExpertModel("serial", reader=data.reader, stepwise=stepwise))
        parallel = wrap(
            ExpertModel("auto", rows_per_agent=data.rows_per_subagent, reader=data.reader, subtask=data.subtask, stepwise=stepwise)
        )
        if small:
            asyncio.run(_run_task(Swarm(serial, tools=tools, mode=data.serial_mode, budgets=budgets), task.query))
            runs.append(("serial", serial))
        asyncio.run(_run_task(Swarm(parallel, tools=tools, mode="swarm", budgets=budgets), task.query))
        runs.append(("auto", parallel))
        for style, recorder in runs:
            for messages, specs in recorder.conversations():
                names = {t.name for t in specs}
                kind: Kind = "serial" if style == "serial" else "parallel" if "assign_task" in names else "subagent"
                if kind == "parallel" and not small:
                    continue
                out.append(Conversation(kind, messages, specs, world_seed, task.instance_id))
    return out


# --------------------------------------------------------------------------------------------
# Samples


@dataclass
class Sample:
    ids: list[int]
    mask: list[bool]
    kind: SampleKind

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Dataset:
    train: list[Sample]
    dev: list[Sample]
    stats: dict[str, Any] = field(default_factory=dict)


def _turn_refs(
    conversations: Sequence[Conversation], delegated: bool = False, answers: bool = False
) -> dict[SampleKind, list[tuple[int, int]]]:
    """(conversation, turn) of every trained turn by sample kind.

    ``delegated``: a parallel conversation's turns after its decision are a pool of their own;
    ``answers``: so is a serial conversation's final answer turn.
    """
    refs: dict[SampleKind, list[tuple[int, int]]] = {k: [] for k in get_args(SampleKind)}
    for ci, conv in enumerate(conversations):
        decided = _decision_turn(conv) if delegated and conv.kind == "parallel" else None
        answered = _answer_turn(conv) if answers and conv.kind == "serial" else None
        for ti in conv.trained_turns():
            if decided is not None and ti > decided:
                refs["delegated"].append((ci, ti))
            elif ti == answered:
                refs["answer"].append((ci, ti))
            else:
                refs[conv.kind].append((ci, ti))
    return refs


def _decision_turn(conv: Conversation) -> int | None:
    """The index of the assistant turn that first calls create_subagent, if any."""
    replies = [m for m in conv.messages if m.role == "assistant"]
    for turn, message in enumerate(replies):
        if any(c.function.name == "create_subagent" for c in getattr(message, "tool_calls", None) or []):
            return turn
    return None


def _answer_turn(conv: Conversation) -> int | None:
    """The index of the last assistant turn when it calls no tool (the final answer), if so."""
    replies = [m for m in conv.messages if m.role == "assistant"]
    if replies and not getattr(replies[-1], "tool_calls", None):
        return len(replies) - 1
    return None


def encode_turn(lm: LocalModel, conv: Conversation, turn: int) -> tuple[list[int], list[bool]]:
    """Assistant turn ``turn`` of ``conv`` as SFT trains it: token ids, and the mask of trained ones."""
    idx = [i for i, m in enumerate(conv.messages) if m.role == "assistant"][turn]
    samples = lm.training_samples(conv.messages[: idx + 1], conv.tools)
    if lm.settings.keep_tool_results is None:
        # One sequence for the whole prefix: keep the mask of this turn only.
        ids, mask = samples[0]
        prior = lm.encode_conversation(conv.messages[:idx], conv.tools)[0] if idx else []
        return ids, [m and i >= len(prior) for i, m in enumerate(mask)]
    return samples[-1]


def draw_samples(
    lm: LocalModel,
    conversations: Sequence[Conversation],
    counts: dict[SampleKind, int],
    max_tokens: int,
    rng: random.Random,
) -> tuple[list[Sample], dict[str, int]]:
    """Draw turns of each kind (with replacement when a pool is small) and encode them."""
    refs = _turn_refs(conversations, delegated="delegated" in counts, answers="answer" in counts)
    samples: list[Sample] = []
    skipped = 0
    for kind, n in counts.items():
        pool = refs[kind]
        if n <= 0 or not pool:
            continue
        chosen = rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]
        for ci, ti in chosen:
            ids, mask = encode_turn(lm, conversations[ci], ti)
            if len(ids) > max_tokens or not any(mask):
                skipped += 1
                continue
            samples.append(Sample(ids, mask, kind))
    return samples, {"too_long": skipped, **{f"pool_{k}": len(v) for k, v in refs.items()}}


def sample_counts(data: DataConfig, scale: float = 1.0) -> dict[SampleKind, int]:
    orch = data.orchestrator_samples * scale
    counts: dict[SampleKind, int] = {
        "serial": round(orch * (1 - data.orchestrator_parallel_share)),
        "parallel": round(orch * data.orchestrator_parallel_share),
        "subagent": round(data.subagent_samples * scale),
    }
    if data.delegated_samples is not None:
        counts["delegated"] = round(data.delegated_samples * scale)
    if data.answer_samples is not None:
        counts["answer"] = round(data.answer_samples * scale)
    return counts


# --------------------------------------------------------------------------------------------
# Training


def batches(samples: Sequence[Sample], batch_tokens: int, rng: random.Random) -> Iterator[list[Sample]]:
    """Endless shuffled batches of samples of similar length, about ``batch_tokens`` padded tokens each."""
    while True:
        order = sorted(samples, key=lambda s: (len(s), rng.random()))
        groups: list[list[Sample]] = []
        current: list[Sample] = []
        for s in order:
            if current and (len(current) + 1) * len(s) > batch_tokens:
                groups.append(current)
                current = []
            current.append(s)
        if current:
            groups.append(current)
        rng.shuffle(groups)
        yield from groups


def collate(group: Sequence[Sample], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and target mask (True where the next token is trained)."""
    width = max(len(s) for s in group)
    ids = torch.full((len(group), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(group), width), dtype=torch.long)
    target = torch.zeros((len(group), width), dtype=torch.bool)
    for i, s in enumerate(group):
        ids[i, : len(s)] = torch.tensor(s.ids)
        attention[i, : len(s)] = 1
        target[i, : len(s)] = torch.tensor(s.mask)
    return ids, attention, target


def noised(ids: torch.Tensor, target: torch.Tensor, rate: float, vocab: tuple[int, int]) -> torch.Tensor:
    """``ids`` with a share ``rate`` of the target tokens replaced by random ordinary tokens (``train.input_noise``)."""
    hit = target & (torch.rand(ids.shape) < rate)
    out = ids.clone()
    out[hit] = torch.randint(vocab[0], vocab[1], (int(hit.sum()),))
    return out


def masked_loss(
    model: Any, ids: torch.Tensor, attention: torch.Tensor, target: torch.Tensor, inputs: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on target tokens only; the output layer runs only where a token is trained.

    ``inputs``: what the model reads, when not ``ids`` (noised); the labels are always ``ids``.
    """
    device = module_device(model)
    ids, attention, target = ids.to(device), attention.to(device), target.to(device)
    inputs = ids if inputs is None else inputs.to(device)
    hidden = model.get_decoder()(input_ids=inputs, attention_mask=attention).last_hidden_state
    # Position t predicts token t+1: trained positions are those whose next token is a target.
    predict = target[:, 1:]
    states = hidden[:, :-1][predict]
    labels = ids[:, 1:][predict]
    logits = model.get_output_embeddings()(states)
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        correct = (logits.argmax(-1) == labels).float()
        # Whole-turn exact match: every target token of a sequence right.
        per_row = torch.zeros(ids.shape[0], device=device)
        rows = predict.nonzero()[:, 0]
        per_row.index_add_(0, rows, 1 - correct)
        exact = (per_row == 0).float().mean().item()
    return loss, {"loss": loss.item(), "token_acc": correct.mean().item(), "turn_exact": exact, "tokens": float(labels.numel())}


@dataclass
class Phrases:
    """What ``lists`` copy batches are made of: tokenised phrases and the separators joining them."""

    phrases: list[list[int]]
    joins: list[list[int]]

    @classmethod
    def of_world(cls, tokenizer: Any) -> Phrases:
        """The world's column labels and place names, joined as tables, notes and indexes join them."""
        from parlswarm.world.factbook import Factbook
        from parlswarm.world.fields import FIELDS

        texts = sorted({f.label for f in FIELDS} | {e.name for e in Factbook.load()})
        encode = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
        return cls([encode(t) for t in texts], [encode(j) for j in (" | ", ", ", "\n- ")])

    def draw(self, n: int, generator: torch.Generator) -> list[int]:
        """A list of ``n`` tokens: phrases in a random order, one separator throughout."""
        join = self.joins[int(torch.randint(0, len(self.joins), (1,), generator=generator))]
        out: list[int] = []
        for i in torch.randperm(len(self.phrases), generator=generator).tolist():
            out += (join if out else []) + self.phrases[i]
            if len(out) >= n:
                break
        return (out * (n // max(1, len(out)) + 1))[:n]


def copy_batch(
    cfg: CopyTaskConfig,
    vocab: tuple[int, int],
    step: int,
    seed: int,
    marks: tuple[int, int] = (0, 1),
    phrases: Phrases | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and the mask of trained positions (True where the token is a target).

    Drawn from (seed, step), so a resumed run draws the same; ``marks`` are the token ids
    written between a key and its value and after a value (" =" and a newline for the nano
    tokenizer); ``phrases`` are what ``lists`` batches are made of.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
    low, high = vocab
    kind = cfg.kind_at(step)
    if kind == "lists" and phrases is None:
        raise ValueError("copy_task kind 'lists' needs phrases (Phrases.of_world(tokenizer))")
    if kind in ("repeat", "lists"):
        # Random filler before the string and between its two copies (``length`` filler tokens
        # in all), so the distance between the copies varies: with a fixed distance a model
        # learns "copy from ``length`` tokens back", not copying by content.
        n = cfg.length
        ids = torch.randint(low, high, (cfg.batch, 3 * n), generator=generator)
        target = torch.zeros_like(ids, dtype=torch.bool)
        gaps = torch.randint(0, n + 1, (cfg.batch,), generator=generator).tolist()
        if cfg.separators:
            pool = low + torch.randperm(high - low, generator=generator)[: cfg.separators]
            picks = torch.randint(0, cfg.separators, (cfg.batch, (3 * n + 1) // 2), generator=generator)
            ids[:, 1::2] = pool[picks]  # the filler too, so the copy's start is not given away
        for row, gap in enumerate(gaps):
            start = n - gap  # filler before the first copy
            second = start + n + gap
            if kind == "lists":
                assert phrases is not None
                ids[row, start : start + n] = torch.tensor(phrases.draw(n, generator))
            ids[row, second : second + n] = ids[row, start : start + n]
            target[row, second + 1 : second + n] = True  # the repeat's first token cannot be known
        return ids, target
    rows, targets = [], []
    for _ in range(cfg.batch):
        pool = low + torch.randperm(high - low, generator=generator)[: cfg.key_pool]
        keys: list[tuple[int, int]] = []
        while len(keys) < cfg.pairs:
            a, b = (int(pool[i]) for i in torch.randint(0, cfg.key_pool, (2,), generator=generator))
            if (a, b) not in keys:
                keys.append((a, b))
        values = torch.randint(low, high, (cfg.pairs, 2), generator=generator).tolist()
        ids: list[int] = []
        target: list[bool] = []
        for (a, b), v in zip(keys, values):
            ids += [a, b, marks[0], *v, marks[1]]
            target += [False] * 6
        for i in torch.randperm(cfg.pairs, generator=generator).tolist():
            ids += [*keys[i], marks[0], *values[i], marks[1]]
            target += [False, False, False, True, True, False]
        rows.append(ids)
        targets.append(target)
    return torch.tensor(rows), torch.tensor(targets)


CopySampler = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # (step, seed) -> copy_batch's output


def copy_sampler(tokenizer: Any, cfg: CopyTaskConfig) -> CopySampler:
    """``copy_batch`` for ``cfg`` with the tokenizer's vocabulary, marks and (``lists``) phrases, built once."""
    vocab, marks = ordinary_tokens(tokenizer), copy_marks(tokenizer)
    phrases = Phrases.of_world(tokenizer) if cfg.kind == "lists" else None
    return lambda step, seed: copy_batch(cfg, vocab, step, seed, marks, phrases)


def copy_loss(model: Any, ids: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on the target positions of a copy batch; its accuracy."""
    ids, target = ids.to(module_device(model)), target.to(module_device(model))
    hidden = model.get_decoder()(input_ids=ids).last_hidden_state
    predict = target[:, 1:]
    logits = model.get_output_embeddings()(hidden[:, :-1][predict])
    labels = ids[:, 1:][predict]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        acc = (logits.argmax(-1) == labels).float().mean().item()
    return loss, {"copy_loss": loss.item(), "copy_acc": acc}


def copy_marks(tokenizer: Any) -> tuple[int, int]:
    """The ids written after a recall key and after its value: " =" and a newline."""
    return tokenizer.encode(" =", add_special_tokens=False)[-1], tokenizer.encode("\n", add_special_tokens=False)[-1]


def ordinary_tokens(tokenizer: Any) -> tuple[int, int]:
    """The id range [low, high) of non-special tokens (special tokens come first in the nano vocabulary)."""
    special = [i for i in tokenizer.all_special_ids if i is not None]
    return (max(special) + 1 if special else 0), len(tokenizer)


def evaluate(model: Any, samples: Sequence[Sample], pad_id: int, batch_tokens: int) -> dict[str, float]:
    if not samples:
        return {}
    model.eval()
    totals = {"loss": 0.0, "token_acc": 0.0, "turn_exact": 0.0, "tokens": 0.0}
    rows = 0
    with torch.no_grad():
        ordered = sorted(samples, key=len)
        group: list[Sample] = []
        groups = []
        for s in ordered:
            if group and (len(group) + 1) * len(s) > batch_tokens:
                groups.append(group)
                group = []
            group.append(s)
        if group:
            groups.append(group)
        for g in groups:
            _, m = masked_loss(model, *collate(g, pad_id))
            totals["loss"] += m["loss"] * m["tokens"]
            totals["token_acc"] += m["token_acc"] * m["tokens"]
            totals["turn_exact"] += m["turn_exact"] * len(g)
            totals["tokens"] += m["tokens"]
            rows += len(g)
    model.train()
    return {
        "dev_loss": totals["loss"] / totals["tokens"],
        "dev_token_acc": totals["token_acc"] / totals["tokens"],
        "dev_turn_exact": totals["turn_exact"] / rows,
    }


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


COPY_STAGE_STEPS = 10_000_000  # stage 0 draws copy batches from here on (even: keeps ``both``'s parity)

ProgressFactory = Callable[[int, int], Any]  # (total, initial) -> a tqdm-like object


def _saved(folder: Path) -> bool:
    """Whether ``folder`` holds a saved model: whole weights, or an adapter."""
    return (folder / "config.json").exists() or has_adapter(folder)


class SFTRun:
    """One supervised training run in ``config.out_dir``: data, model, training, checkpoints."""

    def __init__(self, config: SFTConfig, progress: ProgressFactory | None = None) -> None:
        self.config = config
        self.out = Path(config.out_dir)
        self.progress = progress
        self.history: list[dict[str, float]] = []
        # Stage 0's progress (train.copy_task.pretrain_*): steps done, whether it is over,
        # whether copying formed, and (while it runs) its optimiser and recent accuracies.
        self.copy_state: dict[str, Any] = {"steps": 0, "done": False, "formed": False}
        self.commit = git_commit()  # the code the run starts with (HEAD may move while it trains)

    # -- data -----------------------------------------------------------------------------

    def conversations(self, seeds: Sequence[int], split: str | None = None) -> list[Conversation]:
        from parlswarm.world.factbook import Factbook

        real = Factbook.load()
        data = self.config.data if split is None else self.config.data.model_copy(update={"split": split})
        out: list[Conversation] = []
        for seed in seeds:
            t0 = time.perf_counter()
            out.extend(record_traces(seed, data, real))
            log.info("world seed %d: %d conversations so far (%.1fs)", seed, len(out), time.perf_counter() - t0)
        return out

    def tokenizer_corpus(self, conversations: Sequence[Conversation]) -> Iterator[str]:
        from parlswarm.world.factbook import Factbook
        from parlswarm.world.world import World

        seed = self.config.data.world_seeds[0] if self.config.data.world_seeds else 1
        docs = list(World.load(seed, base=Factbook.load()).docs.values())[: self.config.tokenizer_pages]
        for doc in docs:
            yield doc.text
        # Rendered traces, so that the chat markers, tool-call JSON and notes get good merges.
        from jinja2 import Template

        from parlswarm.models.local import NANO_CHAT_TEMPLATE, chat_dicts

        template = Template(NANO_CHAT_TEMPLATE)
        for conv in conversations[:400]:
            dicts = chat_dicts(conv.messages, conv.tools, self.config.settings.tool_format, "tool", None)
            yield template.render(messages=dicts, add_generation_prompt=False)

    # -- model ----------------------------------------------------------------------------

    def build(self, conversations: Sequence[Conversation]) -> LocalModel:
        """A new nano model (tokenizer trained here) or the ``init`` model, as a LocalModel."""
        cfg = self.config
        if cfg.init is not None:
            if cfg.train.lora is not None and has_adapter(cfg.init):
                saved = json.loads((Path(cfg.init) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
                if (saved.get("r"), saved.get("lora_alpha")) != (cfg.train.lora.r, cfg.train.lora.alpha):
                    raise ValueError(
                        f"init {cfg.init} holds an adapter of r={saved.get('r')}, alpha={saved.get('lora_alpha')}: "
                        "train.lora must match it to go on training it"
                    )
                return self.load(Path(cfg.init))  # go on training init's own adapter
            if has_adapter(cfg.init):
                # Merged and trained whole, it could not be saved when its base is a GGUF file.
                raise ValueError(f"init {cfg.init} is a LoRA adapter: go on training it with train.lora")
            lm = load_local(str(cfg.init))
            lm.settings = self.settings()
            if cfg.train.lora is not None:
                lm.model = add_adapter(lm.model, cfg.train.lora)
            return lm
        arch = NanoConfig.load(cfg.architecture)
        if cfg.vocab_size is not None:
            arch = arch.model_copy(update={"vocab_size": cfg.vocab_size})
        tokenizer = train_tokenizer(self.tokenizer_corpus(conversations), arch.vocab_size, arch.separate_spaces)
        model = build_model(arch, tokenizer, seed=cfg.train.seed)
        return LocalModel(model, tokenizer, name="nano", settings=cfg.settings)

    def base(self) -> str:
        """Under LoRA, the model the adapter applies to: ``init``, or init's own base when init is an adapter."""
        init = str(self.config.init)
        if not has_adapter(init):
            return init
        saved = LocalSettings.model_validate_json((Path(init) / SETTINGS_FILE).read_text(encoding="utf-8"))
        if saved.base is None:
            raise ValueError(f"init {init} holds an adapter but its {SETTINGS_FILE} names no base model")
        return saved.base

    def settings(self) -> LocalSettings:
        """How the trained model is run; an adapter's settings name the model it applies to."""
        cfg = self.config
        if cfg.train.lora is None:
            return cfg.settings
        base = self.base()
        return cfg.settings.model_copy(update={"base": base, "base_digest": weights_digest(base)})

    def load(self, folder: Path) -> LocalModel:
        """A model this run saved (a checkpoint, or the model before step 1), ready to train on."""
        cfg = self.config
        if cfg.train.lora is None:
            lm = LocalModel.from_pretrained(folder, name="nano")
        else:
            lm = load_local(self.base())
            lm.model = load_adapter(lm.model, folder, trainable=True)
        lm.settings = self.settings()
        return lm

    # -- checkpoints ----------------------------------------------------------------------

    def save(self, lm: LocalModel, folder: Path, extra: dict[str, Any] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        lm.model.save_pretrained(folder)
        lm.tokenizer.save_pretrained(folder)
        write_settings(folder, lm.settings)
        if extra is not None:
            (folder / "manifest.json").write_text(json.dumps(extra, indent=2) + "\n", encoding="utf-8")

    def _checkpoint(self, lm: LocalModel, optimizer: torch.optim.Optimizer, step: int, rng: random.Random) -> None:
        folder = self.out / "checkpoint"
        tmp = self.out / "checkpoint.tmp"
        self.save(lm, tmp)
        torch.save(
            {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "rng": rng.getstate(),
                "history": self.history,
                "copy": self.copy_state,
            },
            tmp / "trainer_state.pt",
        )
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        tmp.rename(folder)

    # -- the run --------------------------------------------------------------------------

    def prepare(self) -> tuple[LocalModel, Dataset]:
        """Traces, model and samples; cached in ``out_dir`` so a resumed run reuses them."""
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        data_file = self.out / "data.pt"
        resume = self.out / "checkpoint"
        start = resume if _saved(resume) else self.out / "initial"
        if data_file.exists() and _saved(start):
            # Samples and the model they were encoded for (a checkpoint, or the model before step 1).
            lm = self.load(start)
            blob = torch.load(data_file, weights_only=False)
            return lm, Dataset([Sample(**s) for s in blob["train"]], [Sample(**s) for s in blob["dev"]], blob["stats"])
        t0 = time.perf_counter()
        conversations = self.conversations(cfg.data.world_seeds)
        dev_conversations = (
            self.conversations([cfg.data.dev_world_seed], cfg.data.dev_split) if cfg.data.dev_samples else []
        )
        trace_seconds = time.perf_counter() - t0
        if cfg.init:
            log.info("loading %s", cfg.init)
        else:
            log.info("building the model (and training its tokenizer)")
        # Hashed when the weights are read: a folder such as weights/NAME may hold others by the time the run ships.
        init_digest = weights_digest(str(cfg.init)) if cfg.init else None
        lm = self.build(conversations)
        log.info("%s: %.2f M parameters; encoding samples", lm.name, parameter_count(lm.model) / 1e6)
        rng = random.Random(cfg.train.seed)
        train, stats = draw_samples(lm, conversations, sample_counts(cfg.data), cfg.data.max_tokens, rng)
        if init_digest:
            stats["init_digest"] = init_digest
        if cfg.data.on_policy is not None:
            relabelled, on_policy = self.on_policy_samples(lm, cfg.data.on_policy, rng)
            train += relabelled
            stats["on_policy"] = on_policy
        planned = (
            cfg.data.orchestrator_samples + cfg.data.subagent_samples
            + (cfg.data.delegated_samples or 0) + (cfg.data.answer_samples or 0)
        )
        dev_counts = sample_counts(cfg.data, cfg.data.dev_samples / max(1, planned))
        dev, _ = draw_samples(lm, dev_conversations, dev_counts, cfg.data.max_tokens, rng) if dev_conversations else ([], {})
        kinds: dict[str, int] = {}
        for s in train:
            kinds[s.kind] = kinds.get(s.kind, 0) + 1
        stats.update(
            conversations=len(conversations),
            trace_seconds=round(trace_seconds, 1),
            train_samples=len(train),
            train_tokens=sum(len(s) for s in train),
            trained_tokens=sum(sum(s.mask) for s in train),
            dev_samples=len(dev),
            train_kinds=kinds,
        )
        torch.save(
            {"train": [s.__dict__ for s in train], "dev": [s.__dict__ for s in dev], "stats": stats}, data_file
        )
        self._checkpoint_initial(lm)
        log.info("%d training samples (%d tokens), %d dev samples", len(train), stats["train_tokens"], len(dev))
        return lm, Dataset(train, dev, stats)

    def on_policy_samples(self, lm: LocalModel, cfg: OnPolicyConfig, rng: random.Random) -> tuple[list[Sample], dict[str, Any]]:
        """``cfg.samples`` relabelled turns of the policy's own runs, drawn in proportion to their kinds."""
        from parlswarm.parl.relabel import relabelled_conversations

        policy = LocalModel.from_pretrained(cfg.policy)
        update: dict[str, Any] = {}
        if cfg.max_new_tokens is not None:
            update["max_new_tokens"] = cfg.max_new_tokens
        if cfg.temperature is not None:
            update["temperature"] = cfg.temperature
        policy.sampling = policy.sampling.model_copy(update=update)
        log.info("on-policy data: %s runs in world seeds %s, relabelled by the expert", cfg.policy, cfg.world_seeds)
        conversations, stats = relabelled_conversations(policy, self.config.data)
        pools = _turn_refs(conversations)
        total = sum(len(p) for p in pools.values())
        # Only the kinds the pools hold: an empty "delegated" or "answer" count would make
        # draw_samples split those turns off into a pool drawn zero times.
        counts: dict[SampleKind, int] = {k: round(cfg.samples * len(p) / total) for k, p in pools.items() if p}
        samples, drawn = draw_samples(lm, conversations, counts, self.config.data.max_tokens, rng)
        log.info(
            "on-policy data: %d states (the model's turn was the expert's in %.1f%%, its calls in %.1f%%, its answer "
            "cells in %.1f%%), %d samples",
            stats["states"], 100 * stats["agreement"], 100 * stats["call_agreement"], 100 * stats["cell_agreement"], len(samples),
        )
        return samples, {**stats, "samples": len(samples), "too_long": drawn["too_long"]}

    def _checkpoint_initial(self, lm: LocalModel) -> None:
        # The tokenizer must persist with the data it encoded, even before step 1.
        self.save(lm, self.out / "initial")

    def run(self) -> dict[str, Any]:
        """Train to ``train.steps`` (resuming from ``out_dir/checkpoint`` when present); returns the manifest."""
        cfg = self.config
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        torch.manual_seed(cfg.train.seed)
        lm, data = self.prepare()
        if not data.train:
            raise ValueError("no training samples: check data.world_seeds, data.max_tokens and the sample counts")
        model = lm.model
        model.train()
        trained = trainable(model)
        optimizer = torch.optim.AdamW(trained, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        rng = random.Random(cfg.train.seed)
        step = 0
        state_file = self.out / "checkpoint" / "trainer_state.pt"
        if state_file.exists():
            state = torch.load(state_file, weights_only=False)
            optimizer.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["torch_rng"])
            rng.setstate(state["rng"])
            step = state["step"]
            self.history = state["history"]
            self.copy_state = state.get("copy", self.copy_state)
            # Steps logged after the checkpoint will be trained again: the log restarts from it.
            with (self.out / "log.jsonl").open("w", encoding="utf-8") as f:
                f.writelines(json.dumps(h) + "\n" for h in self.history)
            log.info("resuming at step %d", step)
        stream = batches(data.train, cfg.train.batch_tokens, rng)  # after a resume: from the saved random state
        bar = self.progress(cfg.train.steps, step) if self.progress else None
        log_file = (self.out / "log.jsonl").open("a" if self.history else "w", encoding="utf-8")
        pad = lm.pad_id
        vocab = ordinary_tokens(lm.tokenizer)
        draw_copy = copy_sampler(lm.tokenizer, cfg.train.copy_task)
        t0 = time.perf_counter()

        def out_of_time() -> bool:
            over = cfg.train.max_minutes is not None and time.perf_counter() - t0 > 60 * cfg.train.max_minutes
            if over:
                log.warning("stopping: train.max_minutes (%g) reached", cfg.train.max_minutes)
                self._checkpoint(lm, optimizer, step, rng)
            return over

        try:
            if cfg.train.copy_task.pretrain_steps and not self.copy_state["done"]:
                self._copy_stage(lm, draw_copy, log_file, out_of_time, lambda: self._checkpoint(lm, optimizer, step, rng))
            stage0_left = cfg.train.copy_task.pretrain_steps and not self.copy_state["done"]  # only when time ran out
            while step < cfg.train.steps and not stage0_left:
                if out_of_time():
                    break
                group = next(stream)
                for g in optimizer.param_groups:
                    g["lr"] = lr_at(step, cfg.train)
                ids, attention, target = collate(group, pad)
                inputs = noised(ids, target, cfg.train.input_noise, vocab) if cfg.train.input_noise else None
                loss, metrics = masked_loss(model, ids, attention, target, inputs)
                if cfg.train.copy_task.weight > 0:
                    aux, aux_metrics = copy_loss(model, *draw_copy(step, cfg.train.seed))
                    loss = loss + cfg.train.copy_task.weight * aux
                    metrics.update(aux_metrics)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trained, cfg.train.grad_clip)
                optimizer.step()
                step += 1
                record: dict[str, float] = {"step": step, "lr": lr_at(step - 1, cfg.train), **metrics}
                if step % cfg.train.eval_every == 0 or step == cfg.train.steps:
                    record.update(evaluate(model, data.dev, pad, cfg.train.batch_tokens))
                record["seconds"] = round(time.perf_counter() - t0, 1)
                self.history.append(record)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if bar is not None:
                    shown = {k: f"{v:.3f}" for k, v in record.items() if k in ("loss", "dev_loss", "dev_turn_exact")}
                    bar.set_postfix(shown)
                    bar.update(1)
                if step % cfg.train.save_every == 0 or step == cfg.train.steps:
                    self._checkpoint(lm, optimizer, step, rng)
        finally:
            log_file.close()
            if bar is not None:
                bar.close()
        manifest = self.manifest(lm, data)
        self.save(lm, self.out / "final", manifest)
        return manifest

    def _copy_stage(
        self,
        lm: LocalModel,
        draw_copy: CopySampler,
        log_file: Any,
        out_of_time: Callable[[], bool],
        checkpoint: Callable[[], None],
    ) -> None:
        """Stage 0: copy-task-only steps until copying forms or ``pretrain_steps`` run out.

        Its own optimiser and learning rate (the SFT stage starts fresh after it); batches are
        drawn from their own range of steps, so stage 0 and the mixed-in task never repeat
        each other. Leaves ``copy_state["done"]`` False only when time ran out.
        """
        train = self.config.train
        task = train.copy_task
        state = self.copy_state
        model = lm.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=task.pretrain_lr, weight_decay=train.weight_decay)
        if state.get("optimizer"):
            optimizer.load_state_dict(state["optimizer"])
        recent: dict[str, list[float]] = state.setdefault("recent", {})
        kinds = {"repeat", "recall"} if task.kind == "both" else {task.kind}
        t0 = time.perf_counter()
        while state["steps"] < task.pretrain_steps:
            if out_of_time():
                return
            i = state["steps"]
            drawn = COPY_STAGE_STEPS + i
            lr = task.pretrain_lr * min(1.0, (i + 1) / max(1, train.warmup))
            for g in optimizer.param_groups:
                g["lr"] = lr
            loss, metrics = copy_loss(model, *draw_copy(drawn, train.seed))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
            optimizer.step()
            state["steps"] = i + 1
            kind = task.kind_at(drawn)
            recent[kind] = (recent.get(kind, []) + [metrics["copy_acc"]])[-task.pretrain_window :]
            record: dict[str, Any] = {"copy_step": i + 1, "lr": lr, "copy_kind": kind, **metrics}
            record["seconds"] = round(time.perf_counter() - t0, 1)
            self.history.append(record)
            log_file.write(json.dumps(record) + "\n")
            means = {k: sum(v) / len(v) for k, v in recent.items()}
            if (i + 1) % 50 == 0:
                shown = ", ".join(f"{k} {m:.3f}" for k, m in sorted(means.items()))
                log.info("copy stage %d/%d: accuracy %s (%.0fs)", i + 1, task.pretrain_steps, shown, record["seconds"])
            state["formed"] = task.pretrain_until is not None and all(
                len(recent.get(k, [])) == task.pretrain_window and means[k] >= task.pretrain_until for k in kinds
            )
            if state["formed"]:
                log.info("copying formed at copy step %d: ending stage 0", i + 1)
                break
            if (i + 1) % train.save_every == 0:
                state["optimizer"] = optimizer.state_dict()
                log_file.flush()
                checkpoint()
        state["done"] = True
        state.pop("optimizer", None)
        log_file.flush()
        checkpoint()
        # Kept apart: another SFT stage can start from it (``init``) without repeating stage 0.
        self.save(lm, self.out / "stage0", {k: v for k, v in state.items() if k != "recent"})

    def manifest(self, lm: LocalModel, data: Dataset) -> dict[str, Any]:
        last_eval = next((h for h in reversed(self.history) if "dev_loss" in h), {})
        steps = [h for h in self.history if "step" in h]
        copy = {k: v for k, v in self.copy_state.items() if k in ("steps", "formed")}
        if self.copy_state.get("recent"):
            copy["accuracy"] = {k: round(sum(v) / len(v), 4) for k, v in self.copy_state["recent"].items()}
        lora = self.config.train.lora
        return {
            "model": f"LoRA adapter (r={lora.r}) on {self.base()}" if lora else "parlswarm nano (LlamaForCausalLM)",
            "parameters": parameter_count(lm.model),
            "trained_parameters": sum(p.numel() for p in trainable(lm.model)),
            "config": self.config.model_dump(mode="json"),
            # sha256 of init's weights files when the run read them (see models.local.weights_digest).
            "init_digest": data.stats.get("init_digest"),
            "data": {k: v for k, v in data.stats.items() if k != "init_digest"},
            "git_commit": self.commit,
            "steps": int(steps[-1]["step"]) if steps else 0,
            "copy_stage": copy,
            "final_train_loss": steps[-1]["loss"] if steps else None,
            "dev": last_eval,
        }


__all__ = [
    "Conversation",
    "CopyTaskConfig",
    "DataConfig",
    "NotingExpert",
    "Phrases",
    "RecordingModel",
    "SFTConfig",
    "SFTRun",
    "TrainConfig",
    "copy_loss",
    "copy_sampler",
    "encode_turn",
    "masked_loss",
    "page_notes",
    "record_traces",
]
