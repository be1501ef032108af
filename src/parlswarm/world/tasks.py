"""Table-filling tasks from structured specs, written in WideSearch's own format.

A spec names a region, the columns (field ids), an optional numeric filter and the key
column::

    {"region": "europe", "columns": ["capital", "population"],
     "filter": {"field": "median_age", "op": "above", "value": 40}, "key": "country"}

Its rows are the region's places that pass the filter and have a value for every column
(the task text says so). The English text comes in several phrasings; the tail that fixes
the answer format is always the same. Specs are generated deterministically from the real
Factbook and split into train / dev / test by a stable hash, stratified by row count; the
same task has the same id in every world seed, its gold table is that world's.

Files: ``tasks.jsonl`` with one WideSearch line per task (``instance_id``, ``query``,
``evaluation`` as a JSON string, ``language``) plus our ``spec``, and
``gold/<instance_id>.csv``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from parlswarm.scoring.tasks import Evaluation, norm_column
from parlswarm.world.factbook import REGION_NAMES, Entity, Factbook
from parlswarm.world.fields import FIELDS, FIELDS_BY_ID, field_by_label, field_by_noun, format_number, get_field
from parlswarm.world.fields import Field as WorldField

TASKS_VERSION = "1"
Split = Literal["train", "dev", "test"]
SPLITS: tuple[Split, ...] = ("train", "dev", "test")
KEY_LABEL = "Country"
TASK_REGIONS = tuple(r for r in REGION_NAMES if r != "antarctica")  # 4 places with few facts
VARIANTS_PER_REGION = 12
ROW_BUCKETS = (3, 10, 20, 40)  # stratify splits by these row-count floors


class RowFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    op: Literal["above", "below", "exactly"]
    value: float

    @field_validator("field")
    @classmethod
    def _known(cls, v: str) -> str:
        get_field(v)
        return v

    def keeps(self, value: float) -> bool:
        if self.op == "above":
            return value > self.value
        if self.op == "below":
            return value < self.value
        return value == self.value


class TaskSpec(BaseModel):
    """What a task asks, independent of its wording."""

    model_config = ConfigDict(extra="forbid")

    region: str
    columns: list[str] = Field(min_length=1)
    filter: RowFilter | None = None
    key: Literal["country"] = "country"
    phrasing: int = Field(0, ge=0)
    world_seed: int = Field(0, ge=0)

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        if v not in REGION_NAMES:
            raise ValueError(f"unknown region '{v}'; known regions: {', '.join(REGION_NAMES)}")
        return v

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: list[str]) -> list[str]:
        for field_id in v:
            get_field(field_id)
        if len(set(v)) != len(v):
            raise ValueError("columns must not repeat a field")
        return v

    @model_validator(mode="after")
    def _filter_numeric(self) -> TaskSpec:
        if self.filter is not None and get_field(self.filter.field).type != "number":
            raise ValueError(f"filter field '{self.filter.field}' is not a number")
        return self

    @property
    def fields(self) -> list[WorldField]:
        return [FIELDS_BY_ID[c] for c in self.columns]

    def digest(self) -> str:
        """Identity of the question: region, columns and filter (not wording or world)."""
        core = self.model_dump(include={"region", "columns", "filter", "key"})
        return hashlib.sha256(json.dumps(core, sort_keys=True).encode()).hexdigest()


def header(spec: TaskSpec) -> list[str]:
    return [KEY_LABEL] + [f.label for f in spec.fields]


# --- rows ---------------------------------------------------------------------------------


def gold_rows(factbook: Factbook, spec: TaskSpec) -> list[list[str]]:
    """The gold table's rows (cells as text), in the region index's order."""
    rows = []
    flt = spec.filter
    flt_field = get_field(flt.field) if flt else None
    for entity in factbook.members(spec.region):
        if flt is not None and flt_field is not None:
            v = flt_field.parse(entity.value(flt_field.path))
            if not isinstance(v, float) or not flt.keeps(v):
                continue
        values = [f.parse(entity.value(f.path)) for f in spec.fields]
        if any(v is None for v in values):
            continue
        rows.append([entity.name] + [f.cell(v) for f, v in zip(spec.fields, values)])  # type: ignore[arg-type]
    return rows


# --- text ---------------------------------------------------------------------------------

_OPENINGS = (
    "List every country and territory that the World Factbook files under {region}{filter}, with its {nouns}.",
    "I need a table of the places in the World Factbook's {region} region{filter}: for each one give the {nouns}.",
    "Compile the {nouns} of all {region} entries of the CIA World Factbook{filter}.",
    "For each country or territory in {region} (as the World Factbook groups them){filter}, find its {nouns}.",
)
PHRASINGS = len(_OPENINGS)


def _number_words(value: float) -> str:
    text = format_number(value)
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-')):,}"
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def filter_condition(flt: RowFilter) -> str:
    """The filter's test as the task writes it, ``below 400 km``: the ``condition`` of the world's ``check`` tool."""
    unit = get_field(flt.field).unit or ""
    amount = _number_words(flt.value)
    if unit.startswith("%"):
        amount += unit  # "50% of total population"
    elif unit:
        amount += f" {unit}"
    return f"{flt.op} {amount}"


def filter_clause(flt: RowFilter) -> str:
    return f"whose {get_field(flt.field).noun} is {filter_condition(flt)}"


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def format_instructions(spec_header: Sequence[str]) -> str:
    """The fixed tail of every task and sub-task text: what the answer must look like."""
    return (
        "Leave out any place for which the Factbook gives no value for one of these columns. "
        f"Reply with one Markdown table with exactly these columns, in this order: {' | '.join(spec_header)}. "
        "Name each place as the Factbook's region index pages do. Write numbers as plain digits as given on "
        "the page, without thousands separators, units or % signs (e.g. population in people, area in sq km, "
        "\"1.2 million\" as 1200000), and dates as YYYY-MM-DD."
    )


def render_query(spec: TaskSpec) -> str:
    opening = _OPENINGS[spec.phrasing % PHRASINGS].format(
        region=REGION_NAMES[spec.region],
        filter=f" {filter_clause(spec.filter)}" if spec.filter else "",
        nouns=_join([f.noun for f in spec.fields]),
    )
    return f"{opening} {format_instructions(header(spec))}"


# --- WideSearch format --------------------------------------------------------------------


def evaluation(spec: TaskSpec) -> Evaluation:
    """WideSearch's ``evaluation`` object: required and key columns, per-column scoring."""
    key = norm_column(KEY_LABEL)
    pipeline: dict[str, object] = {key: {"preprocess": ["norm_str"], "metric": ["exact_match"]}}
    for f in spec.fields:
        pipeline[norm_column(f.label)] = f.eval_pipeline()
    return Evaluation.model_validate({"required": [norm_column(h) for h in header(spec)], "unique_columns": [key], "eval_pipeline": pipeline})


@dataclass
class WorldTask:
    instance_id: str
    split: Split
    spec: TaskSpec
    rows: list[list[str]]

    @property
    def query(self) -> str:
        return render_query(self.spec)

    def line(self) -> dict[str, object]:
        """The task as one WideSearch ``.jsonl`` line."""
        return {
            "instance_id": self.instance_id,
            "query": self.query,
            "evaluation": evaluation(self.spec).to_json_string(),
            "language": "en",
            "spec": self.spec.model_dump(),
        }


# --- generation ---------------------------------------------------------------------------


def _nice(value: float) -> float:
    """Two significant figures: 12,345,678 → 12,000,000; 0.4567 → 0.46."""
    if value == 0:
        return 0.0
    magnitude = 10 ** (len(str(int(abs(value)))) - 2) if abs(value) >= 10 else 0.01 if abs(value) < 1 else 0.1
    return round(round(value / magnitude) * magnitude, 6)


def _sections_ok(columns: Sequence[str]) -> bool:
    # A wide task reads more than one page per row: columns span two sections or more.
    return len({FIELDS_BY_ID[c].section for c in columns}) >= 2


def _column_pool(factbook: Factbook, region: str) -> tuple[list[str], list[float]]:
    """The fields a question about ``region`` may ask, and their draw weights."""
    members = factbook.members(region)
    # Fields most places of the region have are drawn more often: wider tables.
    coverage = {f.id: sum(f.parse(e.value(f.path)) is not None for e in members) / len(members) for f in FIELDS}
    pool = [f.id for f in FIELDS if coverage[f.id] >= 0.5]
    return pool, [coverage[c] ** 4 for c in pool]


# A filter is drawn only for regions of this many places, on a field that this many of them have.
FILTER_MIN_PLACES = 12
FILTER_MIN_VALUES = 8


def filter_values(members: Sequence[Entity], field: WorldField) -> list[float]:
    """The values of ``field`` that ``members`` have, sorted: what a filter's threshold is drawn from."""
    return sorted(v for e in members if isinstance(v := field.parse(e.value(field.path)), float))


def filter_cut(values: Sequence[float], rng: random.Random) -> float:
    """A filter's threshold as a task draws it: a round number between the 30th and 70th
    percentile of the region's ``values``, so the filter keeps some places and leaves out others."""
    return _nice(values[int(rng.uniform(0.3, 0.7) * len(values))])


def _draw_spec(rng: random.Random, factbook: Factbook, region: str, pool: tuple[list[str], list[float]]) -> TaskSpec | None:
    """One attempt at a spec for ``region``: None when the draw fails a rule (then draw again)."""
    members = factbook.members(region)
    fields, weights = pool
    n = rng.choice((2, 3, 3, 4, 4, 5))
    columns: list[str] = []
    while len(columns) < n:
        c = rng.choices(fields, weights)[0]
        if c not in columns:
            columns.append(c)
    if not _sections_ok(columns):
        return None
    flt = None
    if len(members) >= FILTER_MIN_PLACES and rng.random() < 0.35:
        f = rng.choice([f for f in FIELDS if f.type == "number"])
        values = filter_values(members, f)
        if len(values) < FILTER_MIN_VALUES:
            return None
        cut = filter_cut(values, rng)  # before the operator: the pool's draws keep their order
        flt = RowFilter(field=f.id, op=rng.choice(("above", "below")), value=cut)
    spec = TaskSpec(region=region, columns=columns, filter=flt, phrasing=rng.randrange(PHRASINGS))
    return spec if len(gold_rows(factbook, spec)) >= 3 else None


def generate_specs(factbook: Factbook) -> list[TaskSpec]:
    """The deterministic pool of task specs (from the real Factbook: world seed 0)."""
    rng = random.Random(f"parlswarm-world-tasks-v{TASKS_VERSION}")
    specs: dict[str, TaskSpec] = {}
    for region in TASK_REGIONS:
        pool = _column_pool(factbook, region)
        for _ in range(VARIANTS_PER_REGION):
            for _attempt in range(40):
                spec = _draw_spec(rng, factbook, region, pool)
                if spec is not None and spec.digest() not in specs:
                    specs[spec.digest()] = spec
                    break
    return list(specs.values())


def _bucket(rows: int) -> int:
    return sum(rows >= floor for floor in ROW_BUCKETS)


def split_specs(factbook: Factbook, specs: Iterable[TaskSpec]) -> dict[Split, list[TaskSpec]]:
    """Train / dev / test, 3:1:1 within each row-count bucket, ordered by a stable hash."""
    buckets: dict[int, list[TaskSpec]] = {}
    for spec in specs:
        buckets.setdefault(_bucket(len(gold_rows(factbook, spec))), []).append(spec)
    out: dict[Split, list[TaskSpec]] = {s: [] for s in SPLITS}
    for _, members in sorted(buckets.items()):
        for i, spec in enumerate(sorted(members, key=TaskSpec.digest)):
            out["train" if i % 5 < 3 else "dev" if i % 5 == 3 else "test"].append(spec)
    return out


def make_tasks(split: Split | Literal["all"], world: Factbook, real: Factbook | None = None, world_seed: int = 0) -> list[WorldTask]:
    """The tasks of a split with gold rows from ``world`` (specs always come from ``real``)."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"unknown split '{split}'; known: {', '.join(SPLITS)}, all")
    real = real or world
    splits = split_specs(real, generate_specs(real))
    chosen = SPLITS if split == "all" else (split,)
    tasks = []
    for name in chosen:
        ordered = sorted(splits[name], key=lambda s: (TASK_REGIONS.index(s.region), s.digest()))
        for n, spec in enumerate(ordered, 1):
            spec = spec.model_copy(update={"world_seed": world_seed})
            tasks.append(WorldTask(f"world_{name}_{n:03d}", name, spec, gold_rows(world, spec)))
    return tasks


def drawn_tasks(world: Factbook, real: Factbook | None = None, world_seed: int = 0, count: int = 74) -> list[WorldTask]:
    """``count`` training tasks drawn afresh for ``world_seed``, never a dev or test question.

    The split's train tasks are the same few dozen questions in every world, so a model
    trained on them alone can learn their column lists by heart instead of reading them off
    the task text; drawn tasks ask new combinations in every world, from the same
    distribution as the split (regions in turn, the same column, filter and wording draws).
    Ids are ``world_drawn_<seed>_<n>``.
    """
    real = real or world
    splits = split_specs(real, generate_specs(real))
    held_out = {spec.digest() for name in ("dev", "test") for spec in splits[name]}
    rng = random.Random(f"parlswarm-world-drawn-tasks-v{TASKS_VERSION}-{world_seed}")
    pools = {region: _column_pool(real, region) for region in TASK_REGIONS}
    seen: set[str] = set()
    tasks: list[WorldTask] = []
    attempts = 0
    while len(tasks) < count:
        attempts += 1
        if attempts > 100 * count:
            raise RuntimeError(f"could draw only {len(tasks)} of {count} new tasks for world seed {world_seed}")
        region = TASK_REGIONS[len(tasks) % len(TASK_REGIONS)]
        spec = _draw_spec(rng, real, region, pools[region])
        if spec is None or spec.digest() in held_out or spec.digest() in seen:
            continue
        seen.add(spec.digest())
        spec = spec.model_copy(update={"world_seed": world_seed})
        tasks.append(WorldTask(f"world_drawn_{world_seed}_{len(tasks) + 1:03d}", "train", spec, gold_rows(world, spec)))
    return tasks


def write_tasks(tasks: Sequence[WorldTask], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``tasks.jsonl`` and ``gold/<id>.csv`` under ``out_dir``; returns both paths."""
    out = Path(out_dir)
    gold = out / "gold"
    gold.mkdir(parents=True, exist_ok=True)
    tasks_file = out / "tasks.jsonl"
    with tasks_file.open("w", encoding="utf-8") as f:
        for task in tasks:
            f.write(json.dumps(task.line(), ensure_ascii=False) + "\n")
    for task in tasks:
        with (gold / f"{task.instance_id}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(header(task.spec))
            writer.writerows(task.rows)
    return tasks_file, gold


# --- reading task text back (the scripted expert understands this language) ---------------

_COLUMNS = re.compile(r"in this order: ([^\n]+?)\.(?:\s|$)")
_FILTER = re.compile(r"whose (.+?) is (above|below|exactly) (-?[\d,]+(?:\.\d+)?)")
_PLACE = re.compile(r"^- (.+) \(([a-z]{2})\)$", re.M)


class ParsedTask(BaseModel):
    """What a reader takes from a task text written in this module's language."""

    region: str | None
    columns: list[WorldField]
    header: list[str]
    filter: RowFilter | None
    places: list[tuple[str, str]] | None  # (name, code) when the text lists them

    @property
    def filter_field(self) -> WorldField | None:
        return get_field(self.filter.field) if self.filter is not None else None

    @property
    def fields_to_read(self) -> list[WorldField]:
        """Every field a reader needs for a place: the filter's first, then the columns."""
        first = self.filter_field
        return ([first] if first is not None else []) + list(self.columns)

    def passes_filter(self, value: Any) -> bool:
        """Whether a place whose filter field reads ``value`` is kept (always, without a filter)."""
        return self.filter is None or (isinstance(value, float) and self.filter.keeps(value))


def parse_query(text: str) -> ParsedTask | None:
    """Region, columns, filter (and an explicit list of places) of a task text; None if not ours."""
    m = _COLUMNS.search(text)
    if m is None:
        return None
    labels = [c.strip() for c in m.group(1).split("|")]
    fields = [field_by_label(label) for label in labels[1:]]
    if not labels or any(f is None for f in fields):
        return None
    flt = None
    fm = _FILTER.search(text)
    if fm is not None:
        ff = field_by_noun(fm.group(1))
        if ff is None:
            return None
        flt = RowFilter(field=ff.id, op=fm.group(2), value=float(fm.group(3).replace(",", "")))  # type: ignore[arg-type]
    places = [(p.group(1), p.group(2)) for p in _PLACE.finditer(text)] or None
    region = None
    opening = text[: m.start()]
    for rid, name in sorted(REGION_NAMES.items(), key=lambda kv: -len(kv[1])):
        if name in opening:
            region = rid
            break
    if region is None and places is None:
        return None
    return ParsedTask(region=region, columns=fields, header=labels, filter=flt, places=places)  # type: ignore[arg-type]
