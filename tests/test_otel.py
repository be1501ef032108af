"""OpenTelemetry: the span tree of a run matches the run (GenAI semantic conventions)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from parlswarm import RunResult, Swarm  # noqa: E402
from parlswarm.pricing import Prices  # noqa: E402
from parlswarm.testing.scripted_runs import fanout_swarm  # noqa: E402
from parlswarm.trace.events import AgentStarted, ModelCalled  # noqa: E402
from parlswarm.trace.otel import OTelSpans, export_events  # noqa: E402
from parlswarm.trace.recorder import Trace  # noqa: E402

N = 30
LENGTHS = [1 + i % 4 for i in range(N)]


def memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture(scope="module")
def traced() -> tuple[RunResult, list[ReadableSpan]]:
    provider, exporter = memory_provider()
    trace = Trace()
    trace.subscribe(OTelSpans(provider))
    prices = Prices.parse("scripted-*=1/2")
    swarm = fanout_swarm([f"item {i}" for i in range(N)], LENGTHS, prices=prices)
    result = asyncio.run(swarm.run("Find facts about 30 items.", trace=trace))
    return result, list(exporter.get_finished_spans())


def op(span: ReadableSpan) -> str:
    return str(span.attributes["gen_ai.operation.name"])


def test_span_counts_match_the_run(traced: tuple[RunResult, list[ReadableSpan]]) -> None:
    result, spans = traced
    counts = Counter(op(s) for s in spans)
    assert counts == {
        "invoke_workflow": 1,
        "invoke_agent": N + 1,
        "chat": result.summary.steps,
        "execute_tool": result.summary.tool_calls,
    }
    assert all(s.end_time is not None and s.end_time >= s.start_time for s in spans)
    assert len({s.context.trace_id for s in spans}) == 1


def test_parents_follow_the_agent_tree(traced: tuple[RunResult, list[ReadableSpan]]) -> None:
    result, spans = traced
    by_id = {s.context.span_id: s for s in spans}

    def parent(span: ReadableSpan) -> ReadableSpan | None:
        return by_id[span.parent.span_id] if span.parent is not None else None

    (root,) = [s for s in spans if op(s) == "invoke_workflow"]
    assert root.parent is None and root.name == "invoke_workflow parlswarm"
    assert root.attributes["gen_ai.conversation.id"] == result.run_id
    agents = {s.attributes["gen_ai.agent.id"]: s for s in spans if op(s) == "invoke_agent"}
    orchestrator = agents["orchestrator"]
    assert parent(orchestrator) is root
    starts = {e.agent_id: e for e in result.trace.events if isinstance(e, AgentStarted)}
    for agent_id, span in agents.items():
        if agent_id == "orchestrator":
            continue
        launcher = parent(span)  # the orchestrator's assign_task call that spawned it
        assert launcher is not None and op(launcher) == "execute_tool"
        assert launcher.attributes["gen_ai.tool.name"] == "assign_task"
        assert launcher.attributes["gen_ai.tool.call.id"] == starts[agent_id].parent_call_id
        assert parent(launcher) is orchestrator
        assert launcher.start_time <= span.start_time and span.end_time <= launcher.end_time
    assert len({parent(s).context.span_id for s in agents.values() if s is not orchestrator}) == N
    for span in spans:
        if op(span) in ("chat", "execute_tool"):
            owner = parent(span)
            assert owner is not None and op(owner) == "invoke_agent"
            assert owner.attributes["gen_ai.agent.id"] == span.attributes["gen_ai.agent.id"]


def test_model_name_and_token_usage_attributes(traced: tuple[RunResult, list[ReadableSpan]]) -> None:
    result, spans = traced
    calls = {(e.agent_id, e.step): e for e in result.trace.events if isinstance(e, ModelCalled)}
    chats = [s for s in spans if op(s) == "chat"]
    assert len(chats) == len(calls)
    for span in chats:
        call = calls[(span.attributes["gen_ai.agent.id"], span.attributes["parlswarm.step"])]
        expected_model = "scripted-orchestrator" if call.agent_id == "orchestrator" else "scripted-subagent"
        assert span.name == f"chat {expected_model}"
        assert span.attributes["gen_ai.request.model"] == expected_model
        assert span.attributes["gen_ai.response.model"] == call.model
        assert span.attributes["gen_ai.usage.input_tokens"] == call.usage.prompt_tokens
        assert span.attributes["gen_ai.usage.output_tokens"] == call.usage.completion_tokens
        assert span.attributes["parlswarm.cost"] == pytest.approx(call.cost)
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats) == result.summary.prompt_tokens
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats) == result.summary.completion_tokens
    agent_spans = [s for s in spans if op(s) == "invoke_agent"]
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in agent_spans) == result.summary.prompt_tokens
    (root,) = [s for s in spans if op(s) == "invoke_workflow"]
    assert root.attributes["parlswarm.critical_steps"] == result.summary.critical_steps
    assert root.attributes["gen_ai.usage.output_tokens"] == result.summary.completion_tokens
    warnings = [e for s in agent_spans for e in s.events if e.name == "parlswarm.budget.warning"]
    assert [e.attributes["parlswarm.budget"] for e in warnings] == ["max_subagents"]


async def test_spawn_swarm_children_share_their_launching_call_and_saved_traces_export_the_same_tree(
    tmp_path: Path,
) -> None:
    from parlswarm.models import ScriptedModel, tool_reply

    orchestrator = ScriptedModel([
        tool_reply("spawn_swarm", {"agents": [{"role": f"r{i}", "task": f"task {i}"} for i in range(4)]}),
        "merged",
    ])
    result = await Swarm(orchestrator, subagent_model=ScriptedModel(["one message"], name="sub")).run("t")
    provider, exporter = memory_provider()
    export_events(Trace.load_jsonl(result.trace.save_jsonl(tmp_path / "t.jsonl")).events, provider)
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    subs = [s for s in spans if op(s) == "invoke_agent" and s.attributes["gen_ai.agent.id"] != "orchestrator"]
    assert len(subs) == 4
    launchers = {by_id[s.parent.span_id].name for s in subs}
    assert launchers == {"execute_tool spawn_swarm"}
    assert len({s.parent.span_id for s in subs}) == 1
    assert {s.attributes["gen_ai.request.model"] for s in subs} == {"sub"}
    # Times come from the trace, anchored at the run's start.
    root = next(s for s in spans if op(s) == "invoke_workflow")
    started = next(e for e in result.trace.events if e.kind == "run_started")
    assert abs(root.start_time / 1e9 - started.started_at) < 1e-3


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Collector.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_otel_exports_through_otlp_to_the_endpoint_in_the_environment(tmp_path: Path, collector: str) -> None:
    script = tmp_path / "orch.yaml"
    script.write_text(yaml.safe_dump([
        {"tool_calls": [{"name": "create_subagent", "arguments": {"name": "w", "system_prompt": "work"}}]},
        {"tool_calls": [{"name": "assign_task", "arguments": {"agent": "w", "prompt": "a"}},
                        {"name": "assign_task", "arguments": {"agent": "w", "prompt": "b"}}]},
        "both done",
    ]))
    sub = tmp_path / "sub.yaml"
    sub.write_text(yaml.safe_dump(["sub result"]))
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": collector}
    env.pop("OTEL_SERVICE_NAME", None)
    proc = subprocess.run(
        [sys.executable, "-m", "parlswarm", "run", "do a and b", "--model", f"scripted:{script}",
         "--subagent-model", f"scripted:{sub}", "--otel", "-q"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "both done"
    assert Collector.received and all(path == "/v1/traces" for path, _ in Collector.received)
    spans = []
    for _, body in Collector.received:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}["service.name"]
            assert service == "parlswarm"
            for scope in resource_spans.scope_spans:
                spans.extend(scope.spans)
    names = Counter(s.name for s in spans)
    # run + orchestrator + 2 sub-agents; 3 + 2 model turns; create + 2 assign tool calls
    assert names == {
        "invoke_workflow parlswarm": 1,
        "invoke_agent orchestrator": 1,
        "invoke_agent w": 2,
        "chat scripted:orch.yaml": 3,
        "chat scripted:sub.yaml": 2,
        "execute_tool create_subagent": 1,
        "execute_tool assign_task": 2,
    }


async def test_retries_are_events_of_the_agent_span() -> None:
    from parlswarm.models import ScriptedModel
    from parlswarm.models.resilient import ResilientModel, RetryPolicy, TransientModelError

    class FlakyOnce:
        name = "flaky"

        def __init__(self) -> None:
            self.inner, self.failed = ScriptedModel(["done"], name="flaky"), False

        async def complete(self, messages, tools):  # type: ignore[no-untyped-def]
            if not self.failed:
                self.failed = True
                raise TransientModelError("429 slow down", reason="rate_limit")
            return await self.inner.complete(messages, tools)

    provider, exporter = memory_provider()
    trace = Trace()
    trace.subscribe(OTelSpans(provider))
    await Swarm(ResilientModel(FlakyOnce(), RetryPolicy(base_delay=0.0), seed=1), mode="single").run("t", trace=trace)
    (agent,) = [s for s in exporter.get_finished_spans() if op(s) == "invoke_agent"]
    (retry,) = [e for e in agent.events if e.name == "parlswarm.model_retry"]
    assert retry.attributes["error.type"] == "rate_limit" and retry.attributes["parlswarm.attempt"] == 1
