"""An auxiliary comparing task for supervised training (``train.compare_task``): synthetic
``matched`` note lines that train a small model to decide a filter's verdict (see
:class:`CompareTaskConfig`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.parl.notes import COMPARED_STYLES, aligned_numbers, relation_of
from parlswarm.world.counterfactual import counterfactual
from parlswarm.world.factbook import Factbook
from parlswarm.world.fields import FIELDS
from parlswarm.world.fields import Field as WorldField
from parlswarm.world.tasks import FILTER_MIN_PLACES, FILTER_MIN_VALUES, filter_cut, filter_values

RELATIONS = ("above", "below", "equal")


class CompareTaskConfig(BaseModel):
    """Synthetic verdict lines mixed into every step (off at weight 0).

    In ``matched`` notes a look-up decides a place with ``Palau (ps): Coastline (km) = 1885 vs
    0400: above, wanted above: kept``: the relation of two numbers written digit under digit,
    then whether it is the relation the task wants. Those few tokens decide a row, but they
    are a sliver of an agent turn's targets: after 900 steps of the matched round the nano
    model got 21 of 31 verdicts and 20 of 30 relations of its own training turns right,
    teacher-forced (docs/local-model.md, "Verdicts"). Here every line of a sequence
    is such a decision, with random numbers (whole parts of 1 to ``digits`` digits, up to two
    decimals, some negative, some sharing leading digits with the threshold, some equal), the
    world's place names and column labels, and a random wanted relation; the loss is on the
    first token of the relation and of the verdict only, so ``compare_acc`` is the share of
    decisions right.

    Random numbers mostly differ in their first digit or their length; a task's threshold lies
    between the 30th and 70th percentile of its region's values, so the lines a look-up writes
    compare close numbers (``87 vs 91``), which the nano model, free-running, got wrong after
    2,300 steps at 0.95 ``compare_acc`` (docs/local-model.md, "Verdicts, long"). ``numbers:
    world`` draws those: a threshold as a task draws it, and the value of a place of the same
    region in one of the run's training worlds. In ``compared`` notes (no wanted relation
    written) only the relation is a target: the verdict rests on the task's operator, which
    the line does not hold.
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    batch: int = Field(16, ge=1)  # sequences per step
    lines: int = Field(8, ge=1)  # verdict lines per sequence
    digits: int = Field(6, ge=1)  # most digits of a whole part
    equal_share: float = Field(0.05, ge=0.0, le=1.0)  # lines whose value equals its threshold
    # "random": the numbers above; "world": a filter a task could set (a region's number field and a
    # threshold drawn as the task pool draws it) against a place of that region in a training world.
    numbers: Literal["random", "world"] = "random"
    worlds: int = Field(4, ge=1)  # "world": the first this many of data.world_seeds give the places' values


@dataclass(frozen=True)
class Compared:
    """What one line compares: a place, a column label, its value, a threshold (plain digits, as
    a note copies them) and the relation the task keeps."""

    name: str
    code: str
    label: str
    value: str
    threshold: str
    wanted: str


@dataclass(frozen=True)
class VerdictLine:
    """One synthetic line's parts: what is written before the decision, and the decision."""

    head: str  # "Palau (ps): Coastline (km) = 1885 vs 0400:"
    relation: str  # "above"
    wanted: str  # "above"

    @property
    def verdict(self) -> str:
        return "kept" if self.relation == self.wanted else "left out"

    @classmethod
    def of(cls, c: Compared) -> VerdictLine:
        mine, theirs = aligned_numbers(c.value, c.threshold)
        relation = relation_of(float(c.value), float(c.threshold))
        return cls(f"{c.name} ({c.code}): {c.label} = {mine} vs {theirs}:", relation, c.wanted)


def draw_numbers(cfg: CompareTaskConfig, generator: torch.Generator) -> tuple[str, str]:
    """A value and a threshold as a note writes them (plain digits), often sharing leading digits."""

    def rand(n: int) -> int:
        return int(torch.randint(0, n, (1,), generator=generator))

    def number() -> str:
        whole = str(rand(10 ** (1 + rand(cfg.digits))))
        decimals = rand(3)
        frac = "".join(str(rand(10)) for _ in range(decimals))
        return ("-" if rand(10) == 0 else "") + whole + (f".{frac}" if frac else "")

    value = number()
    if torch.rand(1, generator=generator).item() < cfg.equal_share:
        return value, value
    if rand(3) == 0 and len(value) > 1:  # the same leading digits: the first digit that differs is further in
        keep = 1 + rand(len(value) - 1)
        threshold = "".join(c if i < keep or not c.isdigit() else str(rand(10)) for i, c in enumerate(value))
    else:
        threshold = number()
    return value, _plain(threshold)


def _plain(number: str) -> str:
    """``number`` without the leading zeros of its whole part (as a page writes it)."""
    sign = "-" if number.startswith("-") else ""
    whole, dot, frac = number.lstrip("-").partition(".")
    return sign + (whole.lstrip("0") or "0") + dot + frac


Draw = Callable[[torch.Generator], Compared]  # one line's numbers and names from a step's generator


def random_draw(cfg: CompareTaskConfig, names: list[tuple[str, str]], labels: list[str]) -> Draw:
    """``numbers: random``: random numbers, a random place and label, mostly a wanted above or below."""

    def draw(generator: torch.Generator) -> Compared:
        pick = lambda n: int(torch.randint(0, n, (1,), generator=generator))  # noqa: E731
        name, code = names[pick(len(names))]
        value, threshold = draw_numbers(cfg, generator)
        wanted = RELATIONS[pick(3)] if pick(10) == 0 else ("above", "below")[pick(2)]
        return Compared(name, code, labels[pick(len(labels))], value, threshold, wanted)

    return draw


@dataclass(frozen=True)
class RegionFilter:
    """A filter a task could set on one region: its field, the real values its threshold is
    drawn from, and the region's places with their values in the training worlds."""

    field: WorldField
    values: list[float]  # sorted, from the real Factbook (the task pool's world)
    places: list[tuple[str, str, str]]  # (name, code, cell) in each training world


def region_filters(real: Factbook, worlds: list[Factbook]) -> list[RegionFilter]:
    """Every (region, number field) on which the task pool may draw a filter."""
    filters = []
    for region in sorted(real.regions):
        members = real.members(region)
        if len(members) < FILTER_MIN_PLACES:
            continue
        for f in (f for f in FIELDS if f.type == "number"):
            values = filter_values(members, f)
            if len(values) < FILTER_MIN_VALUES:
                continue
            places = [
                (e.name, e.code, f.cell(v))
                for world in worlds
                for e in world.members(region)
                if isinstance(v := f.parse(e.value(f.path)), float)
            ]
            filters.append(RegionFilter(f, values, places))
    return filters


def world_draw(filters: list[RegionFilter]) -> Draw:
    """``numbers: world``: a region filter, a threshold drawn as a task draws it, a place's value."""

    def draw(generator: torch.Generator) -> Compared:
        rng = random.Random(int(torch.randint(0, 2**62, (1,), generator=generator)))
        flt = rng.choice(filters)
        name, code, cell = rng.choice(flt.places)
        threshold = flt.field.cell(filter_cut(flt.values, rng))
        return Compared(name, code, flt.field.label, cell, threshold, rng.choice(("above", "below")))

    return draw


def compare_batch(
    cfg: CompareTaskConfig, tokenizer: Any, draw: Draw, step: int, seed: int, style: str = "matched"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and the mask of trained positions: the first token of each relation and, in
    ``matched`` lines, of each verdict (the tokens that decide; the rest of a line follows from
    them or cannot be known). ``style``: the run's note style, ``matched`` or ``compared``.

    Drawn from (seed, step), so a resumed run draws the same. Sequences are padded at the end
    with newlines, which are never targets (a causal model's earlier positions do not see them).
    """
    if style not in COMPARED_STYLES:
        raise ValueError(f"the compare task writes {' or '.join(COMPARED_STYLES)} lines, not {style!r}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step + 7)
    encode = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    rows: list[list[int]] = []
    targets: list[list[bool]] = []
    for _ in range(cfg.batch):
        ids: list[int] = []
        target: list[bool] = []
        for _ in range(cfg.lines):
            line = VerdictLine.of(draw(generator))
            pieces = [(line.head, False), (f" {line.relation}", True)]
            if style == "matched":
                pieces += [(f", wanted {line.wanted}:", False), (f" {line.verdict}\n", True)]
            else:
                pieces += [(f": {line.verdict}\n", False)]
            for piece, decides in pieces:
                tokens = encode(piece)
                word = next(i for i, t in enumerate(tokens) if tokenizer.decode([t]).strip()) if decides else -1
                ids += tokens
                target += [i == word for i in range(len(tokens))]
        rows.append(ids)
        targets.append(target)
    newline = encode("\n")[-1]
    width = max(len(r) for r in rows)
    return (
        torch.tensor([r + [newline] * (width - len(r)) for r in rows]),
        torch.tensor([t + [False] * (width - len(t)) for t in targets]),
    )


CompareSampler = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # (step, seed) -> compare_batch's output


def compare_sampler(
    tokenizer: Any, cfg: CompareTaskConfig, style: str = "matched", world_seeds: Sequence[int] = ()
) -> CompareSampler:
    """``compare_batch`` for ``cfg``, its lines drawn from the world once: the place names and
    column labels (``numbers: random``) or the region filters on the first ``cfg.worlds`` of
    ``world_seeds`` (``numbers: world``)."""
    real = Factbook.load()
    if cfg.numbers == "world":
        seeds = list(world_seeds)[: cfg.worlds]
        if not seeds:
            raise ValueError("train.compare_task numbers: world needs data.world_seeds to draw the places' values from")
        draw = world_draw(region_filters(real, [counterfactual(real, s) for s in seeds]))
    else:
        names = sorted((e.name, e.code) for e in real)
        draw = random_draw(cfg, names, sorted({f.label for f in FIELDS}))
    return lambda step, seed: compare_batch(cfg, tokenizer, draw, step, seed, style)
