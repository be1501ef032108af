"""An auxiliary comparing task for supervised training (``train.compare_task``): synthetic
``matched`` note lines that train a small model to decide a filter's verdict (see
:class:`CompareTaskConfig`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.parl.notes import aligned_numbers

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
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    batch: int = Field(16, ge=1)  # sequences per step
    lines: int = Field(8, ge=1)  # verdict lines per sequence
    digits: int = Field(6, ge=1)  # most digits of a whole part
    equal_share: float = Field(0.05, ge=0.0, le=1.0)  # lines whose value equals its threshold


@dataclass(frozen=True)
class VerdictLine:
    """One synthetic line's parts: what is written before the decision, and the decision."""

    head: str  # "Palau (ps): Coastline (km) = 1885 vs 0400:"
    relation: str  # "above"
    wanted: str  # "above"

    @property
    def verdict(self) -> str:
        return "kept" if self.relation == self.wanted else "left out"


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


def verdict_line(cfg: CompareTaskConfig, names: list[tuple[str, str]], labels: list[str], generator: torch.Generator) -> VerdictLine:
    """A random ``matched`` verdict line: a place, a label, two aligned numbers, a wanted relation."""
    pick = lambda n: int(torch.randint(0, n, (1,), generator=generator))  # noqa: E731
    name, code = names[pick(len(names))]
    value, threshold = draw_numbers(cfg, generator)
    a, b = float(value), float(threshold)
    relation = "above" if a > b else "below" if a < b else "equal"
    wanted = RELATIONS[pick(3)] if pick(10) == 0 else ("above", "below")[pick(2)]
    mine, theirs = aligned_numbers(value, threshold)
    return VerdictLine(f"{name} ({code}): {labels[pick(len(labels))]} = {mine} vs {theirs}:", relation, wanted)


def compare_batch(
    cfg: CompareTaskConfig, tokenizer: Any, names: list[tuple[str, str]], labels: list[str], step: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and the mask of trained positions: the first token of each relation and of each
    verdict (the tokens that decide; the rest of a line follows from them or cannot be known).

    Drawn from (seed, step), so a resumed run draws the same. Sequences are padded at the end
    with newlines, which are never targets (a causal model's earlier positions do not see them).
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + step + 7)
    encode = lambda t: tokenizer.encode(t, add_special_tokens=False)  # noqa: E731
    rows: list[list[int]] = []
    targets: list[list[bool]] = []
    for _ in range(cfg.batch):
        ids: list[int] = []
        target: list[bool] = []
        for _ in range(cfg.lines):
            line = verdict_line(cfg, names, labels, generator)
            for piece, decides in (
                (line.head, False),
                (f" {line.relation}", True),
                (f", wanted {line.wanted}:", False),
                (f" {line.verdict}\n", True),
            ):
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


def compare_sampler(tokenizer: Any, cfg: CompareTaskConfig) -> CompareSampler:
    """``compare_batch`` for ``cfg`` with the world's place names and column labels, loaded once."""
    from parlswarm.world.factbook import Factbook
    from parlswarm.world.fields import FIELDS

    names = sorted((e.name, e.code) for e in Factbook.load())
    labels = sorted({f.label for f in FIELDS})
    return lambda step, seed: compare_batch(cfg, tokenizer, names, labels, step, seed)
