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

from parlswarm.trace.events import ToolStarted  # noqa: E402

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
         "--show", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = next(line for line in proc.stdout.splitlines() if line.startswith(f"| {policy} |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2"  # one task, a group of two episodes
    assert "after" in proc.stdout and "expert turns" in proc.stdout  # an episode shown from the decision point
