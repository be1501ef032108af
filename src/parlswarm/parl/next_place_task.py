"""An auxiliary task for supervised training (``train.next_place_task``): synthetic look-ups whose
turn after a verdict goes on to the next place of the task's list, or answers after the last one
(see :class:`NextPlaceTaskConfig`)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from parlswarm.parl.synthetic_chat import MARKERS, MadeUpWords, marker_ids, spans_batch
from parlswarm.world.expert import SUBAGENT_PROMPT, SUBTASK_OPENING


class NextPlaceTaskConfig(BaseModel):
    """Synthetic conversations mixed into every step (off at weight 0).

    After a verdict (``Czechia (ez): yes: kept``) a look-up either reads the next place of its
    list or, after the last place, answers. The sixth verified round answered a one-place
    look-up for Albania with p 0.999 and for Czechia with p 0.065 in the same context with only
    the place swapped: it had learnt from the names which places are seldom last in the expert's
    lists, not to look at the list (teacher-forced on expert traces it was right every time,
    since there names and lists agree). Here every place is a made-up name and code, so only
    the list tells. With ``lists: task`` (the seventh round's) each sequence is a sub-agent's
    task listing 1 to ``places`` places in the user turn, and every place gets a noted row, a check
    answered ``yes`` or ``no`` and its verdict line, after which the turn either calls ``find`` in
    the next listed place (loss on ``<tool_call>`` and the next place's code) or, after the last
    place, starts the answer (loss on its blank line). With ``lists: task_or_note`` (the eighth
    round's) the list stands in the user turn or, half the time, in an assistant ``Places:`` note
    as a single-mode run writes it, and a sequence holds the verdicts of up to ``turns``
    consecutive places (ending at the list's last place half of the time). Measured (stop 68): the
    first was learnt in ~200 steps on lists of 1-3 places and ended the sub-agents' loops, but
    single mode, whose list is a note, then answered early; the second was not learnt on lists of
    up to 10 places (accuracy ~0.62) and single mode answered earlier still.
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    batch: int = Field(16, ge=1)
    # task: the list in the user turn, a verdict for every place from the first (learnt on short lists);
    # task_or_note: in the user turn or a Places note, half each, up to `turns` consecutive verdicts
    lists: Literal["task", "task_or_note"] = "task"
    places: int = Field(3, ge=1)  # a list holds 1 to this many places, drawn evenly
    turns: int = Field(3, ge=1)  # task_or_note: at most this many verdicts a sequence
    # made_up: made-up words around the list; subagent (with lists: task): the sub-agent's system prompt
    # and the expert's sub-task opening, so that what is learnt is tied to a sub-agent's look-up
    phrasing: Literal["made_up", "subagent"] = "made_up"
    filler: int = Field(6, ge=0)  # at most this many made-up words in each free text

    @model_validator(mode="after")
    def _phrasing_needs_task_lists(self) -> NextPlaceTaskConfig:
        if self.phrasing == "subagent" and self.lists != "task":
            raise ValueError("next_place_task.phrasing 'subagent' needs lists: task (a sub-agent's task holds its list)")
        return self


NextPlaceSampler = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # (step, seed) -> ids, target


def next_place_sampler(tokenizer: Any, cfg: NextPlaceTaskConfig) -> NextPlaceSampler:
    """Batches of ``cfg``'s conversations in ``tokenizer``'s tokens, drawn from (seed, step) so a resumed
    run draws the same; a tokenizer without the nano chat markers (each one token) is refused."""
    pad = marker_ids(tokenizer, "next_place_task")[2]  # <|end|>
    assistant, tool, end = MARKERS  # the text is built as a string, then tokenized

    def draw(step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(seed * 1_000_033 + step)

        made_up = MadeUpWords(rng, cfg.filler)
        word, words = made_up.word, made_up.words

        def conversation() -> tuple[str, list[tuple[int, int]]]:
            """The text and the character spans whose tokens are trained."""
            count = rng.randint(1, cfg.places)
            codes = rng.sample([a + b for a in string.ascii_lowercase for b in string.ascii_lowercase], count)
            names = [" ".join(word().capitalize() for _ in range(rng.randint(1, 3))) for _ in codes]
            listed = "".join(f"- {n} ({c})\n" for n, c in zip(names, codes))
            if cfg.lists == "task" and cfg.phrasing == "subagent":
                start, stop = 0, count
                opening = SUBTASK_OPENING.format(code=codes[0])
                text = (
                    f"<|system|>{SUBAGENT_PROMPT}<|end|><|user|>{opening}\n{listed}\nKeep only those {words(1)}. {words(1)}{end}"
                )
            elif cfg.lists == "task":  # every place from the first, the list in the user turn
                start, stop = 0, count
                text = f"<|system|>{words(1)}<|end|><|user|>{words(1)}:\n{listed}\n{words(1)}{end}"
            else:
                stop = count if rng.random() < 0.5 else rng.randint(1, count)  # the verdicts end before place `stop`
                start = max(0, stop - rng.randint(1, cfg.turns))
                read = f'<tool_call>{{"name": "find", "arguments": {{"doc_id": "{codes[start]}", "text": "{words(1)}"}}}}</tool_call>'
                if rng.random() < 0.5:  # a sub-agent's task
                    text = f"<|system|>{words(1)}<|end|><|user|>{words(1)}:\n{listed}\n{words(1)}{end}"
                    text += f"{assistant}{words()}\n{read}{end}{tool}{words(1)}{end}"
                else:  # a single-mode run's note of the region's places
                    text = f"<|system|>{words(1)}<|end|><|user|>{words(1)}{end}"
                    text += f"{assistant}Places:\n{listed}{read}{end}{tool}{words(1)}{end}"
            spans: list[tuple[int, int]] = []
            for k in range(start, stop):
                name, code = names[k], codes[k]
                verdict = rng.choice(["yes", "no"])
                text += f"{assistant}| {name} | {words(1)} |\n{name} ({code}): {words(1)}?{end}{tool}{verdict}: {words()}{end}"
                text += f"{assistant}{name} ({code}): {verdict}: {'kept' if verdict == 'yes' else 'left out'}\n"
                if k + 1 < count:
                    nxt = codes[k + 1]
                    spans.append((len(text), len(text) + len("<tool_call>")))
                    text += '<tool_call>{"name": "find", "arguments": {"doc_id": "'
                    spans.append((len(text), len(text) + len(nxt)))
                    text += f'{nxt}", "text": "{words(1)}"}}}}</tool_call>{end}{tool}{words(1)}{end}'
                else:
                    spans.append((len(text), len(text) + 1))
                    text += f"\nHere is the table{end}"
            return text, spans

        return spans_batch(tokenizer, [conversation() for _ in range(cfg.batch)], pad)

    return draw


__all__ = ["NextPlaceSampler", "NextPlaceTaskConfig", "next_place_sampler"]
