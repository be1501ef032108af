"""What the synthetic chat tasks of supervised training share (``train.tool_word_task``,
``train.next_place_task``, ``train.label_task``): the nano chat markers they are written in,
made-up words for their free text, and their batches of trained spans."""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any

import torch

# The chat markers a nano model's turns are rendered with (parlswarm.models.nano's chat template).
MARKERS = ("<|assistant|>", "<|tool|>", "<|end|>")


def marker_ids(tokenizer: Any, task: str) -> list[int]:
    """The token id of each of :data:`MARKERS` in ``tokenizer``; a tokenizer without them as single tokens
    is refused, naming ``train.TASK``."""
    ids = []
    for marker in MARKERS:
        encoded = tokenizer.encode(marker, add_special_tokens=False)
        if len(encoded) != 1:
            raise ValueError(f"train.{task} needs the nano chat marker {marker} as one token; this tokenizer has none")
        ids.append(encoded[0])
    return ids


class MadeUpWords:
    """Random lowercase words for the free text of the synthetic chat tasks, drawn from ``rng``."""

    def __init__(self, rng: random.Random, filler: int) -> None:
        self.rng = rng
        self.filler = filler

    def word(self) -> str:
        return "".join(self.rng.choice(string.ascii_lowercase) for _ in range(self.rng.randint(3, 9)))

    def words(self, least: int = 0) -> str:
        """``least`` to ``filler`` words (at least ``least``)."""
        return " ".join(self.word() for _ in range(self.rng.randint(least, max(least, self.filler))))


def spans_batch(
    tokenizer: Any, texts: Sequence[tuple[str, list[tuple[int, int]]]], pad: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts and the character spans whose tokens are trained, tokenized with offsets (so a trained
    token is exactly the tokenizer's own, merges across pieces included) and padded as one batch."""
    rows: list[list[int]] = []
    targets: list[list[bool]] = []
    for text, spans in texts:
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        rows.append(list(encoded["input_ids"]))
        targets.append([any(a < e and s < b for s, e in spans) for a, b in encoded["offset_mapping"]])
    return padded(rows, targets, pad)


def padded(rows: Sequence[list[int]], targets: Sequence[list[bool]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of token ids and their trained marks as one batch, padded on the right with ``pad``
    (untrained); shared by the synthetic chat tasks."""
    width = max(len(r) for r in rows)
    batch = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (r, t) in enumerate(zip(rows, targets)):
        batch[i, : len(r)] = torch.tensor(r)
        mask[i, : len(t)] = torch.tensor(t)
    return batch, mask


__all__ = ["MARKERS", "MadeUpWords", "marker_ids", "padded", "spans_batch"]
