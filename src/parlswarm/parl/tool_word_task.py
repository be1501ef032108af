"""An auxiliary task for supervised training (``train.tool_word_task``): synthetic turns whose
verdict word copies the first word of the latest tool result (see :class:`ToolWordTaskConfig`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.parl.copy_task import ordinary_tokens
from parlswarm.parl.synthetic_chat import marker_ids, padded


class ToolWordTaskConfig(BaseModel):
    """Synthetic conversations mixed into every step (off at weight 0).

    A verified note's verdict (``Name (code): no: left out``) copies the first word of the
    ``check`` result just above it. Three rounds on real turns never learnt that copy: with the
    check's word swapped in the input, the model's p(yes) moved by 0.007 — it judged from the
    value and the condition it had noted, as its earlier rounds had taught it, and the one
    verdict token of a turn (even weighted 20 times) did not build a circuit that reads the
    tool. Here every sequence is ``turns`` turns of random tokens: an assistant turn
    ``NAME (CODE): WORD: ...`` whose WORD is the previous tool result's first word, then a tool
    result ``yes: ...`` or ``no: ...`` drawn at random; loss on the copied words only. Earlier
    results with the other word sit in the same sequence, so only the latest one answers.
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    batch: int = Field(16, ge=1)
    turns: int = Field(6, ge=1)  # words copied a sequence (one tool result before each)
    filler: int = Field(12, ge=0)  # at most this many random tokens in each turn's text and each result


ToolWordSampler = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # (step, seed) -> ids, target


def tool_word_sampler(tokenizer: Any, cfg: ToolWordTaskConfig) -> ToolWordSampler:
    """Batches of ``cfg``'s conversations in ``tokenizer``'s tokens, drawn from (seed, step) so a resumed
    run draws the same; a tokenizer without the nano chat markers is refused."""
    assistant, tool, end = marker_ids(tokenizer, "tool_word_task")

    def piece(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False)

    words = [piece("yes"), piece("no")]
    open_code, close_code, colon, space = piece(" ("), piece("): "), piece(":"), piece(" ")
    low, high = ordinary_tokens(tokenizer)

    def draw(step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed * 1_000_033 + step)

        def rand(lo: int, hi: int) -> list[int]:  # between lo and hi random ordinary tokens
            n = int(torch.randint(lo, hi + 1, (1,), generator=generator))
            return torch.randint(low, high, (n,), generator=generator).tolist()

        def conversation() -> tuple[list[int], list[bool]]:
            ids: list[int] = []
            target: list[bool] = []
            latest: list[int] | None = None
            for _ in range(cfg.turns + 1):
                parts = [([assistant, *rand(1, 4), *open_code, *rand(1, 1), *close_code], False)]
                if latest is not None:
                    parts += [(latest, True), (colon, False)]
                latest = words[int(torch.randint(0, 2, (1,), generator=generator))]
                parts += [([*space, *rand(0, cfg.filler), end, tool, *latest, *colon, *space, *rand(0, cfg.filler), end], False)]
                for tokens, trained in parts:
                    ids += tokens
                    target += [trained] * len(tokens)
            return ids, target

        rows, targets = zip(*(conversation() for _ in range(cfg.batch)))
        return padded(rows, targets, end)

    return draw


__all__ = ["ToolWordSampler", "ToolWordTaskConfig", "tool_word_sampler"]
