"""benchmarks/parl_prefix_probe.py: a tiny run prints its table, and an unreadable call is
marked as such (its raw text starts with the call's own name, which once read as nesting)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")

from nano_support import tiny_policy  # noqa: E402
from script_support import benchmark_module  # noqa: E402

from parlswarm.trace.events import AgentStarted, ToolFinished, ToolStarted  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "parl_prefix_probe.py"


def _module():  # type: ignore[no-untyped-def]
    return benchmark_module("parl_prefix_probe")


def _call(arguments: str) -> ToolStarted:
    return ToolStarted(agent_id="a", step=2, call_id="c", tool="create_subagent", arguments=arguments)


def test_an_unreadable_call_is_marked() -> None:
    label = _module().call_label
    assert label(_call('{"name": "reader", "system_prompt": "Read.", "tools": ["find"]}')) == "create_subagent"
    raw = '{"name": "create_subagent", "arguments": {"name": "reader", "system_prompt": "Read. and the table'
    assert label(_call(raw)) == "create_subagent (unreadable, raw text)"
    assert label(_call('["find"]')) == "create_subagent (unreadable, raw text)"  # JSON, not an object
    broken = ToolStarted(agent_id="a", step=2, call_id="c", tool="assign_\n<tool_call>{", arguments="{")
    assert label(broken) == "assign_ <tool_call>{ (unreadable, raw text)"  # one line in the tally


def test_malformed_calls_counts_the_policys_garbled_calls_only() -> None:
    from types import SimpleNamespace

    def done(agent: str, step: int, error: str | None) -> ToolFinished:
        return ToolFinished(agent_id=agent, step=step, call_id="c", tool="t", ok=error is None, seconds=0.0, error=error)

    events = [
        AgentStarted(agent_id="o", name="orchestrator"),
        AgentStarted(agent_id="s", name="reader", parent_id="o"),
        done("o", 0, "unknown_tool"),  # an expert prefix turn: not the policy's
        done("o", 2, "unknown_tool"), done("o", 2, "bad_json"), done("o", 3, "tool_error"), done("o", 3, None),
        done("s", 3, "bad_arguments"),  # a sub-agent's
    ]
    episode = SimpleNamespace(trace=SimpleNamespace(events=events), prefix_turns=2)
    assert _module().malformed_calls(episode) == (2, 4)  # a tool's own error is not a malformed call


def test_a_tiny_probe_prints_its_table(tmp_path: Path) -> None:
    policy = tiny_policy(tmp_path / "policy")
    config = tmp_path / "parl.yaml"
    config.write_text(yaml.safe_dump({
        "policy": str(policy), "subagent": "expert:find", "world_seeds": [31], "min_rows": 3, "max_rows": 8,
        "max_new_tokens": 16, "temperature": 1.0, "out_dir": str(tmp_path / "run"),
        "budgets": {"max_critical_steps": 6, "max_orchestrator_steps": 4, "max_subagent_steps": 4, "max_tool_calls": 40},
    }))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--policy", str(policy), "--config", str(config), "--tasks", "1", "--group", "2",
         "--show", "1", "--temperature", "1.0", "--temperature", "0.5"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in proc.stdout.splitlines() if line.startswith(f"| {policy} |")]
    assert [r[1] for r in rows] == ["1.0", "0.5"]  # the policy probed at each temperature
    for cells in rows:
        assert cells[2] == "2"  # one task, a group of two episodes
        bad, calls = (int(n) for n in cells[4].split(" of "))
        assert 0 <= bad <= calls
    assert "after" in proc.stdout and "expert turns" in proc.stdout  # an episode shown from the decision point
