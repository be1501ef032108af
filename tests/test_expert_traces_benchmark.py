"""benchmarks/expert_traces.py: the probes' shared arguments, and a recipe they cannot probe stops them by name."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from script_support import benchmark_module

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_a_recipe_the_probe_refuses_stops_it_before_any_trace_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    traces = benchmark_module("expert_traces")
    parser = argparse.ArgumentParser()
    traces.add_trace_arguments(parser, str(CONFIGS / "sft-tiny.yaml"))
    args = parser.parse_args(["--world-seed", "3"])
    assert (args.world_seed, args.split, args.seed) == (3, "drawn", 0)

    def never(*_: object) -> None:
        raise AssertionError("traces drawn for a refused recipe")

    monkeypatch.setattr(traces, "record_traces", never)
    with pytest.raises(SystemExit, match=r"sft-tiny\.yaml: note_style 'labelled' writes no verdict"):
        traces.expert_traces(args, benchmark_module("verdict_probe").writes_no_verdict)
    with pytest.raises(SystemExit, match=r"sft-tiny\.yaml: data\.reader 'pages'"):
        traces.expert_traces(args, benchmark_module("row_probe").notes_no_rows)


def test_the_traces_are_the_recipes_on_the_world_and_split_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    traces = benchmark_module("expert_traces")
    parser = argparse.ArgumentParser()
    traces.add_trace_arguments(parser, str(CONFIGS / "sft-tiny.yaml"), split="dev")
    args = parser.parse_args(["--world-seed", "7"])
    seen = []
    monkeypatch.setattr(traces, "record_traces", lambda seed, data: seen.append((seed, data.split, data.max_rows)) or [])
    assert traces.expert_traces(args) == [] and seen == [(7, "dev", 8)]
