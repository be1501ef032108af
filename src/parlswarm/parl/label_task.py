"""An auxiliary task for supervised training (``train.label_task``): synthetic look-up rows whose
cells copy the value of the line that the column's label names, among lines of the same form
(see :class:`LabelTaskConfig`)."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from parlswarm.parl.synthetic_chat import MARKERS, MadeUpWords, marker_ids, spans_batch


class LabelTaskConfig(BaseModel):
    """Synthetic conversations mixed into every step (off at weight 0).

    A ``find "Elevation"`` result holds ``highest point: NAME 426 m`` and ``lowest point: NAME 0 m``;
    the ``Highest point`` cell copies the first name. The nano rounds wrote the wrong one in most
    look-up rows with that column (stop 68: teacher-forced on expert traces, the sixth round chose
    the highest point's name 27 times and the lowest's 13; builtin 15 and 25): lines of the same
    form that differ in one word of their label, and a prior over names, decide instead of the
    label. Here each sequence is a one-place look-up in the nano chat markers: a header of 1 to
    ``columns`` made-up columns, a ``find`` per column and its result, a section of 1 to ``lines``
    labelled lines (labels mostly sharing their last word, values made-up names, half of them
    followed by an elevation the cell drops), then the row; loss on the cells' values only. The
    column names its line by the label with a capital letter, sometimes with a unit after it, as
    the world's columns do; nothing else tells the lines apart. Measured (stop 69, the tenth
    round; ``benchmarks/label_task_probe.py``): the copying was learnt (0.99 of the tokens after a
    cell's first), the choice was not (the cell's first token right 0.44 of the time, about chance;
    alone, from the sixth round's weights, one column of two lines, it stayed at chance for 2,075
    steps at lr 1e-3, and for 350 with the column written exactly as the line's label), and the
    made-up letters of the values came back as letter soup in single mode's cells (``.mmmm…``).
    With ``form: restated`` the turn writes each cell after its line's label instead (``highest
    point: NAME``), so the choice is a recall by the label just written: from the same weights it
    went from 0.28 to 0.94 in 300 steps, the row form from 0.25 to 0.30 (stop 69; the probe's
    ``--form``). The expert's ``cells`` notes (stop 70) write real look-ups' cells that way; in
    their rounds the model wrote the first label right and hardly ever a later one.
    """

    model_config = ConfigDict(extra="forbid")

    weight: float = Field(0.0, ge=0.0)  # its loss is added with this weight; 0 turns it off
    batch: int = Field(16, ge=1)
    columns: int = Field(4, ge=1)  # a row holds 1 to this many cells, drawn evenly
    lines: int = Field(3, ge=2)  # a section holds 2 to this many labelled lines (1 a tenth of the time)
    filler: int = Field(6, ge=0)  # at most this many made-up words in each free text
    # row: the look-up's row (| Place | value | ... |), the column's label only in the header above;
    # restated: each cell as "label: value" on its own line, the label (untrained) just before the value
    form: Literal["row", "restated"] = "row"


LabelSampler = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # (step, seed) -> ids, target


def label_sampler(tokenizer: Any, cfg: LabelTaskConfig) -> LabelSampler:
    """Batches of ``cfg``'s conversations in ``tokenizer``'s tokens, drawn from (seed, step) so a resumed
    run draws the same; a tokenizer without the nano chat markers (each one token) is refused."""
    pad = marker_ids(tokenizer, "label_task")[2]  # <|end|>
    assistant, tool, end = MARKERS  # the text is built as a string, then tokenized with offsets

    def draw(step: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = random.Random(seed * 1_000_033 + step)

        made_up = MadeUpWords(rng, cfg.filler)
        word, words = made_up.word, made_up.words

        def name() -> str:
            capital = rng.random() < 0.7  # proper names, and a few like "unnamed location"
            return " ".join(word().capitalize() if capital else word() for _ in range(rng.randint(1, 3)))

        def section() -> tuple[str, list[tuple[str, str]]]:
            """A made-up section: its title and its lines as (label, value)."""
            count = 1 if rng.random() < 0.1 else rng.randint(2, cfg.lines)
            noun = word()
            shared = rng.random() < 0.75  # "highest point" / "lowest point": one word tells them apart
            labels: list[str] = []
            while len(labels) < count:
                label = f"{word()} {noun}" if shared else word()
                if label not in labels:
                    labels.append(label)
            return word().capitalize(), [(label, name()) for label in labels]

        def conversation() -> tuple[str, list[tuple[int, int]]]:
            """The text and the character spans whose tokens are trained."""
            code = rng.choice(string.ascii_lowercase) + rng.choice(string.ascii_lowercase)
            place = name()
            sections = [section() for _ in range(rng.randint(1, cfg.columns))]
            chosen = [rng.choice(lines) for _, lines in sections]
            columns = [label[0].upper() + label[1:] + (f" ({word()[:3]})" if rng.random() < 0.3 else "") for label, _ in chosen]
            header = "| Country | " + " | ".join(columns) + " |"
            calls = "\n".join(
                f'<tool_call>{{"name": "find", "arguments": {{"doc_id": "{code}", "text": "{title}"}}}}</tool_call>'
                for title, _ in sections
            )
            text = f"<|system|>{words(1)}<|end|><|user|>{words(1)}:\n- {place} ({code})\n\n{words(1)}: Country | "
            text += " | ".join(columns) + f". {words(1)}{end}{assistant}{header}\n{calls}{end}"
            for title, lines in sections:
                body = "\n".join(
                    f"{label}: {value}" + (f" {rng.randint(0, 8999):,} m" if rng.random() < 0.5 else "") for label, value in lines
                )
                text += f'{tool}[find "{title}" in {code} ({place}) · 1 entry]\n## {title}\n{body}{end}'
            spans: list[tuple[int, int]] = []
            if cfg.form == "row":
                text += f"{assistant}| {place} |"
                for _, value in chosen:
                    text += " "
                    spans.append((len(text), len(text) + len(value)))
                    text += f"{value} |"
                text += f"\n{end}"
            else:  # restated: each cell on its own line after the label of the line it copies
                text += assistant
                for label, value in chosen:
                    text += f"{label}: "
                    spans.append((len(text), len(text) + len(value)))
                    text += f"{value}\n"
                text += end
            return text, spans

        return spans_batch(tokenizer, [conversation() for _ in range(cfg.batch)], pad)

    return draw


__all__ = ["LabelSampler", "LabelTaskConfig", "label_sampler"]
