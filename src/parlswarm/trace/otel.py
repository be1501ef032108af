"""OpenTelemetry spans for runs, following the GenAI semantic conventions.

:class:`OTelSpans` is a trace listener: it turns a run's events into spans as they happen,
so the runtime itself never touches OpenTelemetry. Needs the ``otel`` extra
(``pip install 'parlswarm[otel]'``); this module is imported only when asked for.

Span tree of a swarm run::

    invoke_workflow parlswarm                  (the run)
      invoke_agent orchestrator
        chat <model>                           (one per step: model, token usage)
        execute_tool assign_task               (one per tool call)
          invoke_agent researcher              (the sub-agent it launched)
            chat <model>
            execute_tool lookup

Attributes are the ``gen_ai.*`` ones of the conventions (operation name, agent name and id,
request/response model, input/output/cached token usage, tool name and call id) plus a few
``parlswarm.*`` ones (step, critical steps, stop reason, cost). Timestamps come from the
events (``RunStarted.started_at`` + ``t``), so a saved trace exported later keeps its times.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from parlswarm.trace.events import (
    AgentFinished,
    AgentStarted,
    BudgetEvent,
    Event,
    ModelCalled,
    ModelRetried,
    RunFinished,
    RunStarted,
    SubagentCreated,
    ToolFinished,
    ToolStarted,
)

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "OpenTelemetry export needs the otel extra: pip install 'parlswarm[otel]'"
    ) from exc

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

INSTRUMENTATION = "parlswarm"
# GenAI semantic-convention attribute names (opentelemetry-semantic-conventions, gen_ai.*).
OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_ID = "gen_ai.agent.id"
CONVERSATION_ID = "gen_ai.conversation.id"
WORKFLOW_NAME = "gen_ai.workflow.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_TYPE = "gen_ai.tool.type"
ERROR_TYPE = "error.type"


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class OTelSpans:
    """A trace listener that emits one span per run, agent, model call and tool call."""

    def __init__(self, tracer_provider: Any = None, *, workflow_name: str = "parlswarm") -> None:
        provider = tracer_provider or otel_trace.get_tracer_provider()
        self.tracer = provider.get_tracer(INSTRUMENTATION)
        self.workflow_name = workflow_name
        self._epochs: dict[str, float] = {}  # run id -> Unix time of its t = 0
        self._runs: dict[str, Span] = {}
        self._agents: dict[tuple[str, str], Span] = {}
        self._agent_models: dict[tuple[str, str], str] = {}
        self._tools: dict[tuple[str, str, str], Span] = {}

    def _time(self, run_id: str, t: float) -> int:
        epoch = self._epochs.setdefault(run_id, time.time() - t)
        return _ns(epoch + t)

    def _start(
        self, run_id: str, name: str, parent: Span | None, t: float, kind: SpanKind, attributes: dict[str, Any]
    ) -> Span:
        context = otel_trace.set_span_in_context(parent) if parent is not None else None
        start = self._time(run_id, t)
        return self.tracer.start_span(name, context=context, kind=kind, attributes=attributes, start_time=start)

    def __call__(self, event: Event) -> None:
        run = event.run_id
        if isinstance(event, RunStarted):
            self._epochs[run] = event.started_at - event.t
            self._runs[run] = self._start(
                run,
                f"invoke_workflow {self.workflow_name}",
                None,
                event.t,
                SpanKind.INTERNAL,
                {
                    OPERATION: "invoke_workflow",
                    WORKFLOW_NAME: self.workflow_name,
                    CONVERSATION_ID: run,
                    REQUEST_MODEL: event.model,
                    "parlswarm.mode": event.mode,
                    "parlswarm.subagent_model": event.subagent_model,
                },
            )
        elif isinstance(event, AgentStarted):
            parent: Span | None = None
            if event.parent_id is not None:
                if event.parent_call_id is not None:
                    parent = self._tools.get((run, event.parent_id, event.parent_call_id))
                parent = parent or self._agents.get((run, event.parent_id))
            else:
                parent = self._runs.get(run)
            attributes: dict[str, Any] = {
                OPERATION: "invoke_agent",
                AGENT_NAME: event.name,
                AGENT_ID: event.agent_id,
                CONVERSATION_ID: run,
                REQUEST_MODEL: event.model,
                "parlswarm.depth": event.depth,
            }
            if event.parent_id is not None:
                attributes["parlswarm.parent_agent_id"] = event.parent_id
            if event.parent_step is not None:
                attributes["parlswarm.parent_step"] = event.parent_step
            self._agent_models[(run, event.agent_id)] = event.model
            self._agents[(run, event.agent_id)] = self._start(
                run, f"invoke_agent {event.name}", parent, event.t, SpanKind.INTERNAL, attributes
            )
        elif isinstance(event, ModelCalled):
            agent = self._agents.get((run, event.agent_id))
            request_model = self._agent_models.get((run, event.agent_id)) or event.model
            attributes = {
                OPERATION: "chat",
                REQUEST_MODEL: request_model,
                RESPONSE_MODEL: event.model,
                INPUT_TOKENS: event.usage.prompt_tokens,
                OUTPUT_TOKENS: event.usage.completion_tokens,
                CACHED_TOKENS: event.usage.cached_tokens,
                CONVERSATION_ID: run,
                AGENT_ID: event.agent_id,
                "parlswarm.step": event.step,
                "parlswarm.tool_calls": event.tool_calls,
            }
            if event.cost is not None:
                attributes["parlswarm.cost"] = event.cost
            t0 = max(0.0, event.t - event.seconds)
            chat = self._start(run, f"chat {request_model}", agent, t0, SpanKind.CLIENT, attributes)
            chat.end(end_time=self._time(run, event.t))
        elif isinstance(event, ToolStarted):
            agent = self._agents.get((run, event.agent_id))
            self._tools[(run, event.agent_id, event.call_id)] = self._start(
                run,
                f"execute_tool {event.tool}",
                agent,
                event.t,
                SpanKind.INTERNAL,
                {
                    OPERATION: "execute_tool",
                    TOOL_NAME: event.tool,
                    TOOL_CALL_ID: event.call_id,
                    TOOL_TYPE: "function",
                    AGENT_ID: event.agent_id,
                    "parlswarm.step": event.step,
                },
            )
        elif isinstance(event, ToolFinished):
            span = self._tools.pop((run, event.agent_id, event.call_id), None)
            if span is not None:
                if not event.ok:
                    span.set_attribute(ERROR_TYPE, "tool_error")
                    span.set_status(Status(StatusCode.ERROR, event.result[:200]))
                span.end(end_time=self._time(run, event.t))
        elif isinstance(event, SubagentCreated):
            agent = self._agents.get((run, event.agent_id))
            if agent is not None:
                agent.add_event(
                    "parlswarm.subagent_created",
                    {"gen_ai.agent.name": event.name, "parlswarm.tools": event.tools},
                    timestamp=self._time(run, event.t),
                )
        elif isinstance(event, BudgetEvent):
            agent = self._agents.get((run, event.agent_id)) or self._runs.get(run)
            if agent is not None:
                agent.add_event(
                    f"parlswarm.budget.{event.action}",
                    {"parlswarm.budget": event.budget, "parlswarm.detail": event.detail},
                    timestamp=self._time(run, event.t),
                )
        elif isinstance(event, ModelRetried):
            agent = self._agents.get((run, event.agent_id))
            if agent is not None:
                agent.add_event(
                    "parlswarm.model_retry",
                    {
                        "parlswarm.step": event.step,
                        "parlswarm.attempt": event.attempt,
                        ERROR_TYPE: event.reason,
                        "parlswarm.delay": event.delay,
                    },
                    timestamp=self._time(run, event.t),
                )
        elif isinstance(event, AgentFinished):
            span = self._agents.pop((run, event.agent_id), None)
            if span is None:
                return
            span.set_attributes(
                {
                    INPUT_TOKENS: event.usage.prompt_tokens,
                    OUTPUT_TOKENS: event.usage.completion_tokens,
                    CACHED_TOKENS: event.usage.cached_tokens,
                    "parlswarm.steps": event.steps,
                    "parlswarm.tool_calls": event.tool_calls,
                    "parlswarm.complete": event.complete,
                    "parlswarm.stop_reason": event.stop_reason,
                }
            )
            if event.stop_reason == "error":
                span.set_attribute(ERROR_TYPE, "agent_error")
                span.set_status(Status(StatusCode.ERROR, (event.error or "")[:200]))
            span.end(end_time=self._time(run, event.t))
        elif isinstance(event, RunFinished):
            self.close(run, event.t, event.summary)

    def close(self, run_id: str, t: float | None = None, summary: dict[str, Any] | None = None) -> None:
        """End what is still open of ``run_id`` (all of it after a crash or cancellation)."""
        end = self._time(run_id, t) if t is not None else None
        for tool_key in [k for k in self._tools if k[0] == run_id]:
            self._tools.pop(tool_key).end(end_time=end)
        for agent_key in [k for k in self._agents if k[0] == run_id]:
            self._agents.pop(agent_key).end(end_time=end)
        span = self._runs.pop(run_id, None)
        if span is not None:
            if summary:
                for key in ("steps", "critical_steps", "subagents", "tool_calls"):
                    if key in summary:
                        span.set_attribute(f"parlswarm.{key}", summary[key])
                if "prompt_tokens" in summary:
                    span.set_attribute(INPUT_TOKENS, summary["prompt_tokens"])
                if "completion_tokens" in summary:
                    span.set_attribute(OUTPUT_TOKENS, summary["completion_tokens"])
                if summary.get("cost") is not None:
                    span.set_attribute("parlswarm.cost", summary["cost"])
            span.end(end_time=end)


def export_events(events: Iterable[Event], tracer_provider: Any = None) -> None:
    """Emit the spans of recorded events (a saved trace, say)."""
    spans = OTelSpans(tracer_provider)
    run_ids: list[str] = []
    for event in events:
        if event.run_id not in run_ids:
            run_ids.append(event.run_id)
        spans(event)
    for run_id in run_ids:
        spans.close(run_id)


def otlp_tracer_provider(service_name: str = "parlswarm", exporter: SpanExporter | None = None) -> TracerProvider:
    """A tracer provider exporting through OTLP/HTTP in batches.

    The endpoint and headers come from the standard environment variables
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``,
    ``OTEL_EXPORTER_OTLP_HEADERS``...); the default is http://localhost:4318. Call
    ``shutdown()`` on it when the run is over so that the last spans are sent.
    """
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over the default name.
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


__all__ = ["OTelSpans", "export_events", "otlp_tracer_provider"]
