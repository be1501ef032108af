"""benchmarks/verdict_probe.py: finds the expert's verdicts and scores a model's choice (and relation) at each."""

from __future__ import annotations

import random
from typing import Any

import pytest

pytest.importorskip("bm25s")

from script_support import benchmark_module  # noqa: E402

from parlswarm.parl.sft_config import DataConfig  # noqa: E402
from parlswarm.parl.traces import record_traces  # noqa: E402


def test_states_are_the_expert_verdicts_and_a_model_that_always_keeps_is_right_on_the_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = benchmark_module("verdict_probe")
    data = DataConfig(split="drawn", drawn_tasks=24, max_rows=10, reader="find", note_style="matched")
    states = probe.verdict_states(record_traces(5, data), 30, random.Random(0))
    verdicts = [v for _, _, v in states]
    assert {"kept", "left out"} == set(verdicts)
    for conv, turn, verdict in states:  # the verdict is the one the expert's turn writes after its comparison
        reply = [m for m in conv.messages if m.role == "assistant"][turn]
        assert ", wanted " in reply.content and f": {verdict}" in reply.content

    class Model:  # renders and encodes as characters; never run: log_likelihood is replaced
        def render(self, messages: Any, tools: Any) -> str:
            return "prompt"

        def encode(self, text: str) -> list[int]:
            return [ord(c) for c in text]

    def keeps(lm: Any, prefix: list[int], continuation: list[int]) -> float:
        return 0.0 if "".join(map(chr, continuation)) in (" kept", " above") else -1.0

    monkeypatch.setattr(probe, "log_likelihood", keeps)
    report = probe.probe(Model(), states)
    kept = verdicts.count("kept")
    assert report["states"] == len(states) and report["said_kept"] == len(states)
    assert report["right"] == kept and report["right_when_kept"] == f"{kept} of {kept}"
    assert report["right_when_left_out"] == f"0 of {len(states) - kept}"
    relations = [probe.VERDICT.search(reply.content).group(1) for reply in (  # type: ignore[union-attr]
        [m for m in conv.messages if m.role == "assistant"][turn] for conv, turn, _ in states
    )]
    assert "below" in relations and report["relations_right"] == relations.count("above")  # it always says above
