"""An auxiliary copying task for supervised training (``train.copy_task``): synthetic batches
that train a small model to copy by content (see :class:`CopyTaskConfig`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.models.local import module_device


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


def copy_loss(model: Any, ids: torch.Tensor, target: torch.Tensor, name: str = "copy") -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy on the target positions of a copy batch (or any auxiliary batch: ``name``
    prefixes the metrics); its accuracy."""
    ids, target = ids.to(module_device(model)), target.to(module_device(model))
    hidden = model.get_decoder()(input_ids=ids).last_hidden_state
    predict = target[:, 1:]
    logits = model.get_output_embeddings()(hidden[:, :-1][predict])
    labels = ids[:, 1:][predict]
    loss = torch.nn.functional.cross_entropy(logits.float(), labels)
    with torch.no_grad():
        acc = (logits.argmax(-1) == labels).float().mean().item()
    return loss, {f"{name}_loss": loss.item(), f"{name}_acc": acc}


def copy_marks(tokenizer: Any) -> tuple[int, int]:
    """The ids written after a recall key and after its value: " =" and a newline."""
    return tokenizer.encode(" =", add_special_tokens=False)[-1], tokenizer.encode("\n", add_special_tokens=False)[-1]


def ordinary_tokens(tokenizer: Any) -> tuple[int, int]:
    """The id range [low, high) of non-special tokens (special tokens come first in the nano vocabulary)."""
    special = [i for i in tokenizer.all_special_ids if i is not None]
    return (max(special) + 1 if special else 0), len(tokenizer)
