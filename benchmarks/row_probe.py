"""Teacher-forced look-up rows: does a model read a place's row right from the ``find`` results above it?

In the ``find`` reader's notes a look-up writes the place's row after reading its entries:
``| Christmas Island | 106.1 | Pacific Ocean | Kyiv |``. For the expert's own sub-agent turns of
one world (the config's recipe), up to each row's ``| Name |``, this script checks whether the
model's likeliest next token is the expert's at every token of the rest of the row (the row
right) and at every token of each cell (cells right). Rows with a column read from the
``Elevation`` entry (highest point, lowest point, mean elevation: lines of one entry) are
counted apart: there the right line of the entry has to be chosen. For each such cell it also
reports which line the model's likeliest first token starts: the line the column names
(``highest point:`` for ``Highest point``), another line of the entry (read as the column reads
its own), or neither, by column. Stop 68 found the sixth verified round starting the lowest
point's name in 13 of 47 ``Highest point`` cells (the highest point's in 27).

    python benchmarks/row_probe.py --model runs/sft-nano-starts/final [--model ...] [--config configs/sft-nano-matched.yaml] [--world-seed 900] [--states 80]
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Sequence
from typing import Any

import torch
from expert_traces import add_trace_arguments, expert_traces, probed_models

from parlswarm.models.local import LocalModel
from parlswarm.parl.sft_config import SFTConfig
from parlswarm.parl.traces import Conversation
from parlswarm.types import content_text
from parlswarm.world.tasks import parse_query

ROW = re.compile(r"^(\| (?!Country \|)[^|\n]+ \|)( [^\n]*\|)$", re.M)  # "| Name |", then the cells
ELEVATION = "Elevation"


def row_states(conversations: Sequence[Conversation], n: int, rng: random.Random) -> list[tuple[Conversation, int, bool]]:
    """Up to ``n`` (conversation, turn, whether a column is read from Elevation) of sub-agent turns that note a row."""
    found = []
    for conv in conversations:
        if conv.kind != "subagent":
            continue
        task = parse_query(next((content_text(m.content) for m in conv.messages if m.role == "user"), ""))
        if task is None:
            continue
        elevation = any(f.path[1] == ELEVATION for f in task.columns)
        replies = [m for m in conv.messages if m.role == "assistant"]
        for turn, message in enumerate(replies):
            if getattr(message, "tool_calls", None) and ROW.search(content_text(message.content)):
                found.append((conv, turn, elevation))
    return rng.sample(found, min(n, len(found)))


def argmax_matches(lm: LocalModel, prefix: list[int], continuation: list[int]) -> list[bool]:
    """For each token of ``continuation``: is it the model's likeliest after the tokens before it?"""
    ids = torch.tensor([prefix + continuation])
    with torch.no_grad():
        logits = lm.model(ids).logits[0]
    said = logits[len(prefix) - 1 : -1].argmax(-1).tolist()
    return [a == b for a, b in zip(said, continuation)]


def likeliest_token(lm: LocalModel, prefix: list[int]) -> int:
    """The model's likeliest token after ``prefix``."""
    with torch.no_grad():
        return int(lm.model(torch.tensor([prefix])).logits[0, -1].argmax())


def entry_lines(messages: Sequence[Any], section: str) -> dict[str, str]:
    """The ``label: text`` lines of the latest tool result's ``## section`` entry."""
    for message in reversed(messages):
        if message.role != "tool":
            continue
        found = re.search(rf"^## {re.escape(section)}\n((?:[^#\n][^\n]*\n?)*)", content_text(message.content), re.M)
        if found is not None:
            return dict(line.split(": ", 1) for line in found.group(1).splitlines() if ": " in line)
    return {}


def line_choice(lm: LocalModel, done: str, field: Any, lines: dict[str, str]) -> str | None:
    """Which line of the entry the model's likeliest token starts at the first token where the lines'
    cells differ, after ``done``: ``named`` (the line ``field``'s column names), ``other`` (another line,
    read as the column reads its own) or ``neither``; None where the lines read as one cell."""
    start = lm.encode(done)
    tokens = {}
    for label, text in lines.items():
        value = field.parse(text)
        if value is not None:
            tokens[label] = lm.encode(done + f" {field.cell(value)}")[len(start) :]
    named = tokens.get(field.path[-1])
    if named is None or all(t == named for t in tokens.values()):
        return None
    at = next(k for k in range(len(named) + 1) if any(t[: k + 1] != named[: k + 1] for t in tokens.values()))
    said = likeliest_token(lm, start + named[:at])
    if at < len(named) and said == named[at]:
        return "named"
    return "other" if any(t[:at] == named[:at] and len(t) > at and t[at] == said for t in tokens.values()) else "neither"


def probe(lm: LocalModel, states: Sequence[tuple[Conversation, int, bool]]) -> dict[str, Any]:
    counts: dict[str, Any] = {kind: {"rows": 0, "right": 0, "cells": 0, "cells_right": 0} for kind in ("elevation", "other")}
    lines: dict[str, dict[str, int]] = {}  # by column: the line the model's cell starts
    counts["elevation"]["lines"] = lines
    for conv, turn, elevation in states:
        at = [i for i, m in enumerate(conv.messages) if m.role == "assistant"][turn]
        text = content_text(conv.messages[at].content)
        match = ROW.search(text)
        assert match is not None
        before = lm.render(conv.messages[:at], conv.tools) + text[: match.end(1)]
        cells = match.group(2).strip(" |").split(" | ")
        task = parse_query(next(content_text(m.content) for m in conv.messages if m.role == "user"))
        assert task is not None
        entry = entry_lines(conv.messages[:at], ELEVATION) if elevation else {}
        right_cells = 0
        done = before
        for field, cell in zip(task.columns, cells, strict=True):  # each cell with its separator, scored in the row's context
            if field.path[1] == ELEVATION and len(field.path) == 3:
                choice = line_choice(lm, done, field, entry) if len(entry) > 1 else None
                if choice is not None:
                    column = lines.setdefault(field.label, {"named": 0, "other": 0, "neither": 0})
                    column[choice] += 1
            piece = f" {cell} |"
            start = lm.encode(done)
            continuation = lm.encode(done + piece)[len(start) :]
            right_cells += all(argmax_matches(lm, start, continuation))
            done += piece
        kind = counts["elevation" if elevation else "other"]
        kind["rows"] += 1
        kind["right"] += right_cells == len(cells)
        kind["cells"] += len(cells)
        kind["cells_right"] += right_cells
    return counts


def notes_no_rows(cfg: SFTConfig) -> str | None:
    if cfg.data.reader == "find":
        return None
    return f"data.reader {cfg.data.reader!r}: rows are noted by the find reader"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="a save_pretrained folder (repeat to compare)")
    add_trace_arguments(parser, "configs/sft-nano-matched.yaml")
    parser.add_argument("--states", type=int, default=80)
    args = parser.parse_args()

    conversations = expert_traces(args, notes_no_rows)
    states = row_states(conversations, args.states, random.Random(args.seed))
    if not states:
        raise SystemExit(f"world {args.world_seed} ({args.split}): no sub-agent turn notes a row")
    for folder, lm in probed_models(args.model):
        report = probe(lm, states)
        lines = report["elevation"]["lines"]
        print(
            f"{folder}: "
            + "; ".join(
                f"{kind} rows right {c['right']} of {c['rows']} (cells {c['cells_right']} of {c['cells']})"
                for kind, c in report.items()
            )
            + "".join(
                f"; {label} cells start their line {c['named']} of {sum(c.values())} (another line {c['other']}, neither {c['neither']})"
                for label, c in sorted(lines.items())
            )
        )


if __name__ == "__main__":
    main()
