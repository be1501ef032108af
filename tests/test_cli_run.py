"""`parlswarm run` end to end in a subprocess: answers, summary line, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from parlswarm.testing.stub_server import StubServer
from parlswarm.trace import Trace


def parlswarm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parlswarm", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


def two_assignments(tmp_path: Path, answer: str) -> tuple[Path, Path]:
    """Scripted orchestrator (one sub-agent, two tasks assigned in one step, then ``answer``) and sub-agent files."""
    script = tmp_path / "script.yaml"
    script.write_text(yaml.safe_dump([
        {"tool_calls": [{"name": "create_subagent", "arguments": {"name": "w", "system_prompt": "work"}}]},
        {"tool_calls": [{"name": "assign_task", "arguments": {"agent": "w", "prompt": "a"}},
                        {"name": "assign_task", "arguments": {"agent": "w", "prompt": "b"}}]},
        answer,
    ]))
    sub = tmp_path / "sub.yaml"
    sub.write_text(yaml.safe_dump(["sub result"]))
    return script, sub


def test_run_prints_answer_and_summary_and_writes_trace(tmp_path: Path) -> None:
    script, sub = two_assignments(tmp_path, "both done")
    trace = tmp_path / "out" / "trace.jsonl"
    proc = parlswarm("run", "do a and b", "--model", f"scripted:{script}", "--subagent-model", f"scripted:{sub}",
                     "--trace", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "both done"
    assert "steps 5 · critical steps 4 · sub-agents 2 · tool calls 3" in proc.stderr
    assert Trace.load_jsonl(trace).events[-1].kind == "run_finished"


def test_per_step_tool_call_cap_reaches_the_run(tmp_path: Path) -> None:
    script, sub = two_assignments(tmp_path, "one done")
    proc = parlswarm("run", "do a and b", "--model", f"scripted:{script}", "--subagent-model", f"scripted:{sub}",
                     "--max-tool-calls-per-step", "1", "--no-journal")
    assert proc.returncode == 0, proc.stderr
    assert "sub-agents 1 · tool calls 2" in proc.stderr  # the second assign_task was refused, not run


def test_unknown_model_is_one_clear_line() -> None:
    proc = parlswarm("run", "x", "--model", "gpt-nonsense")
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("error: unknown model 'gpt-nonsense'; known forms:")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_missing_key_names_the_variable() -> None:
    proc = parlswarm("run", "x", "--model", "kimi-k2.5", env={"MOONSHOT_API_KEY": "", "KIMI_API_KEY": ""})
    assert proc.returncode != 0
    assert proc.stderr.strip() == "error: model 'kimi-k2.5': no API key; set MOONSHOT_API_KEY or KIMI_API_KEY"


def test_unreachable_endpoint_is_one_clear_line() -> None:
    proc = parlswarm("run", "x", "--model", "m", "--base-url", "http://127.0.0.1:9/v1", "--retries", "0")
    assert proc.returncode != 0
    assert "cannot reach endpoint http://127.0.0.1:9/v1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_mode_and_missing_script_file(tmp_path: Path) -> None:
    proc = parlswarm("run", "x", "--model", "scripted:" + str(tmp_path / "none.yaml"))
    assert proc.returncode != 0 and "scripted model file not found" in proc.stderr
    (tmp_path / "s.yaml").write_text("- hi\n")
    proc = parlswarm("run", "x", "--model", f"scripted:{tmp_path / 's.yaml'}", "--mode", "crowd")
    assert proc.returncode != 0 and "--mode must be swarm or single" in proc.stderr


def test_fake_key_never_reaches_output(tmp_path: Path) -> None:
    key = "sk-fake-do-not-print-4242"
    with StubServer(lambda body: "hello", api_key=key) as server:
        trace = tmp_path / "t.jsonl"
        proc = parlswarm("run", "x", "--model", "moonshot:kimi-k2.5", "--base-url", server.base_url,
                         "--trace", str(trace), env={"MOONSHOT_API_KEY": key})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "hello"
    for text in (proc.stdout, proc.stderr, trace.read_text()):
        assert key not in text
