"""benchmarks/row_probe.py: finds the expert's noted rows, tells Elevation rows apart, and scores cell by cell."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytest.importorskip("bm25s")

from script_support import benchmark_module  # noqa: E402

from parlswarm.parl.sft_config import DataConfig  # noqa: E402
from parlswarm.parl.traces import record_traces  # noqa: E402
from parlswarm.types import content_text  # noqa: E402
from parlswarm.world.tasks import parse_query  # noqa: E402


def test_rows_are_the_expert_notes_and_cells_are_scored_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = benchmark_module("row_probe")
    data = DataConfig(split="drawn", drawn_tasks=40, max_rows=10, reader="find", note_style="matched")
    states = probe.row_states(record_traces(5, data), 60, random.Random(0))
    assert states and {True, False} == {elevation for _, _, elevation in states}
    for conv, turn, elevation in states:
        task = parse_query(content_text(conv.messages[1].content))
        assert task is not None and elevation == any(f.path[1] == "Elevation" for f in task.columns)
        reply = content_text([m for m in conv.messages if m.role == "assistant"][turn].content)
        row = probe.ROW.search(reply)
        assert row is not None and row.group(1)[2:-2] in {name for name, _ in task.places or []}  # a place of the sub-task
        assert len(row.group(2).strip(" |").split(" | ")) == len(task.columns)

    class Model:  # renders and encodes as characters; never run: argmax_matches is replaced
        def render(self, messages: Any, tools: Any) -> str:
            return "prompt"

        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

    def digits_wrong(lm: Any, prefix: list[int], continuation: list[int]) -> list[bool]:
        return [not chr(t).isdigit() for t in continuation]  # a model that gets every digit wrong

    monkeypatch.setattr(probe, "argmax_matches", digits_wrong)
    monkeypatch.setattr(probe, "likeliest_token", lambda lm, prefix: -1)  # no line's token: "neither"
    report = probe.probe(Model(), states)
    cells = [c for conv, turn, _ in states for c in probe.ROW.search(
        content_text([m for m in conv.messages if m.role == "assistant"][turn].content)
    ).group(2).strip(" |").split(" | ")]  # type: ignore[union-attr]
    assert sum(k["rows"] for k in report.values()) == len(states)
    assert sum(k["cells"] for k in report.values()) == len(cells)
    assert sum(k["cells_right"] for k in report.values()) == sum(not any(ch.isdigit() for ch in c) for c in cells)
    assert 0 < sum(k["cells_right"] for k in report.values()) < len(cells)


def test_elevation_cells_are_told_by_the_line_their_first_differing_token_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    probe = benchmark_module("row_probe")
    data = DataConfig(split="drawn", drawn_tasks=40, max_rows=10, reader="find", note_style="matched")
    states = [s for s in probe.row_states(record_traces(6, data), 200, random.Random(0)) if s[2]]  # a Lowest point among them

    class Model:  # renders the messages' text and encodes as characters
        def render(self, messages: Any, tools: Any) -> str:
            return "\n".join(content_text(m.content) for m in messages)

        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

    def says_the_lowest_point(lm: Any, prefix: list[int]) -> int:
        """A model that always writes the latest lowest point's name, whatever the column."""
        text = "".join(chr(t) for t in prefix)
        name = " " + re.findall(r"^lowest point: (.+?)(?: -?[\d,.]+ m)?$", text, re.M)[-1]
        written = max(k for k in range(len(name)) if text.endswith(name[:k]))
        return ord(name[written])

    monkeypatch.setattr(probe, "argmax_matches", lambda lm, prefix, continuation: [True] * len(continuation))
    monkeypatch.setattr(probe, "likeliest_token", says_the_lowest_point)
    lines = probe.probe(Model(), states)["elevation"]["lines"]
    columns = [f.label for conv, _, _ in states for f in parse_query(content_text(conv.messages[1].content)).columns]  # type: ignore[union-attr]
    # every Highest point cell starts another line's name, every Lowest point cell its own, a mean elevation neither
    assert lines == {
        "Highest point": {"named": 0, "other": columns.count("Highest point"), "neither": 0},
        "Lowest point": {"named": columns.count("Lowest point"), "other": 0, "neither": 0},
        "Mean elevation (m)": {"named": 0, "other": 0, "neither": columns.count("Mean elevation (m)")},
    }
    assert columns.count("Highest point") > 0 and columns.count("Lowest point") > 0
