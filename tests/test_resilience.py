"""Model calls under faults: retries, backoff, Retry-After, timeouts, per-run cap; the fault suite."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Sequence

import openai
import pytest

from parlswarm import Budgets, Swarm
from parlswarm.agent import Agent, RunContext
from parlswarm.models import ModelOptions, ScriptedModel, load_model
from parlswarm.models.base import ModelError
from parlswarm.models.openai_compat import SELF_HOSTED, OpenAICompatModel, retry_after_seconds
from parlswarm.models.resilient import (
    CALL_SCOPE,
    CallScope,
    FatalModelError,
    ResilientModel,
    RetryPolicy,
    TransientModelError,
)
from parlswarm.testing import fault_workload
from parlswarm.testing.responders import echo
from parlswarm.testing.stub_server import Faults, StubServer, _error
from parlswarm.tools import tool
from parlswarm.trace.events import BudgetEvent, ModelRetried, ToolFinished
from parlswarm.trace.recorder import Trace
from parlswarm.types import AssistantMessage, Message, ModelResponse, ToolSpec


class Flaky:
    """A model that fails with the given errors, in order, then answers."""

    def __init__(self, errors: Sequence[Exception], hang: float = 0.0) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.hang = hang
        self.name = "flaky"

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> ModelResponse:
        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
            if isinstance(error, TimeoutError):
                await asyncio.sleep(self.hang)
            else:
                raise error
        return ModelResponse(message=AssistantMessage(content="ok"))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the backoff waits instead of waiting them."""
    waited: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, *args: object) -> None:
        waited.append(delay)
        await real_sleep(0)

    monkeypatch.setattr("parlswarm.models.resilient.asyncio.sleep", fake_sleep)
    return waited


def scope(budgets: Budgets | None = None) -> tuple[RunContext, CallScope]:
    run = RunContext.new(budgets or Budgets())
    s = CallScope(run.trace, run.ledger, "agent-1", 3)
    CALL_SCOPE.set(s)
    return run, s


async def test_transient_errors_are_retried_with_events_and_counted(sleeps: list[float]) -> None:
    run, _ = scope()
    inner = Flaky([TransientModelError("boom 500"), TransientModelError("slow down", reason="rate_limit")])
    model = ResilientModel(inner, RetryPolicy(max_retries=3, base_delay=0.1), seed=1)
    response = await model.complete([], [])
    assert response.message.content == "ok" and inner.calls == 3
    retries = [e for e in run.trace.events if isinstance(e, ModelRetried)]
    assert [(r.agent_id, r.step, r.attempt, r.reason) for r in retries] == [
        ("agent-1", 3, 1, "server_error"),
        ("agent-1", 3, 2, "rate_limit"),
    ]
    assert run.ledger.retries == 2
    # exponential backoff with jitter in [0.5, 1] of 0.1 * 2**n
    assert 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2
    assert [r.delay for r in retries] == sleeps


async def test_fatal_errors_are_not_retried(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([FatalModelError("model 'x': authentication failed")])
    with pytest.raises(FatalModelError, match="authentication failed"):
        await ResilientModel(inner, RetryPolicy(max_retries=5)).complete([], [])
    assert inner.calls == 1 and sleeps == []


async def test_plain_model_errors_are_not_retried(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([ModelError("script has no reply")])
    with pytest.raises(ModelError):
        await ResilientModel(inner).complete([], [])
    assert inner.calls == 1


async def test_gives_up_after_max_retries(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([TransientModelError("502 bad gateway")] * 10)
    with pytest.raises(TransientModelError, match="gave up after 2 retries"):
        await ResilientModel(inner, RetryPolicy(max_retries=2, base_delay=0.01)).complete([], [])
    assert inner.calls == 3 and len(sleeps) == 2


async def test_retry_after_is_honoured(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([TransientModelError("429", reason="rate_limit", retry_after=2.5)])
    await ResilientModel(inner, RetryPolicy(base_delay=0.01), seed=3).complete([], [])
    assert 2.5 <= sleeps[0] <= 2.75


async def test_retry_after_beyond_the_maximum_ends_the_call(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([TransientModelError("429", reason="rate_limit", retry_after=3600)])
    with pytest.raises(TransientModelError, match="asks to wait 3600s"):
        await ResilientModel(inner, RetryPolicy(max_retry_after=60)).complete([], [])
    assert sleeps == []


async def test_per_call_timeout_makes_a_hung_call_a_retry() -> None:
    run, _ = scope()
    inner = Flaky([TimeoutError()], hang=10.0)
    t0 = time.perf_counter()
    response = await ResilientModel(inner, RetryPolicy(timeout=0.1, base_delay=0.01)).complete([], [])
    assert response.message.content == "ok"
    assert time.perf_counter() - t0 < 2.0
    (retry,) = [e for e in run.trace.events if isinstance(e, ModelRetried)]
    assert retry.reason == "timeout" and "no answer within 0.1s" in retry.error


async def test_connection_errors_of_any_backend_are_transient(sleeps: list[float]) -> None:
    scope()
    inner = Flaky([ConnectionResetError("reset by peer")])
    assert (await ResilientModel(inner).complete([], [])).message.content == "ok"
    assert inner.calls == 2


async def test_per_run_retry_cap(sleeps: list[float]) -> None:
    run, _ = scope(Budgets(max_retries=2))
    model = ResilientModel(Flaky([TransientModelError("500")] * 10), RetryPolicy(max_retries=8))
    with pytest.raises(TransientModelError, match="retry budget \\(2\\) is used up"):
        await model.complete([], [])
    assert run.ledger.retries == 2
    refused = [e for e in run.trace.events if isinstance(e, BudgetEvent)]
    assert [(e.budget, e.action) for e in refused] == [("max_retries", "refused")]


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    for retry, ceiling in enumerate([1, 2, 4, 8, 8, 8]):
        waits = [policy.delay(retry, None, rng) for _ in range(50)]
        assert min(waits) >= ceiling / 2 and max(waits) <= ceiling
        assert len(set(waits)) > 1  # jitter


def test_invalid_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        RetryPolicy(timeout=0)


def test_retry_after_header_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds({"retry-after": future}) <= 31  # type: ignore[operator]
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# -- the real HTTP path: the openai SDK's errors sorted into transient and fatal ---------------


@pytest.mark.parametrize(
    ("fault", "reason", "retry_after"),
    [
        ("error_500", "server_error", None),
        ("rate_limit_429", "rate_limit", 3.0),
        ("timeout", "timeout", None),
        ("truncated", "connection", None),
        ("malformed_json", "bad_response", None),
    ],
)
async def test_endpoint_faults_are_transient(fault: str, reason: str, retry_after: float | None) -> None:
    faults = Faults(**{fault: 1.0}, retry_after=3, hang=5)  # type: ignore[arg-type]
    with StubServer(echo, faults=faults) as server:
        model = OpenAICompatModel("m", base_url=server.base_url, preset=SELF_HOSTED, max_retries=0, timeout=0.3)
        with pytest.raises(TransientModelError) as caught:
            await model.complete([], [])
        await model.aclose()
    assert caught.value.reason == reason
    assert caught.value.retry_after == retry_after
    assert server.app.stats.faults == {fault: 1}


@pytest.mark.parametrize(("status", "match"), [(404, "not found"), (400, "HTTP 400"), (422, "HTTP 422")])
async def test_not_found_and_bad_requests_are_fatal(status: int, match: str) -> None:
    calls = []
    with StubServer(echo) as server:
        async def refuse(method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
            calls.append(path)
            return _error(status, "the endpoint refuses this request")

        server.app.handle = refuse  # type: ignore[method-assign]
        model = OpenAICompatModel("m", base_url=server.base_url, preset=SELF_HOSTED, max_retries=0)
        with pytest.raises(FatalModelError, match=match):
            await ResilientModel(model).complete([], [])
        await model.aclose()
    assert len(calls) == 1  # not retried


async def test_authentication_failure_is_fatal() -> None:
    with StubServer(echo, api_key="sk-right-0000000000") as server:
        model = OpenAICompatModel("m", base_url=server.base_url, preset=SELF_HOSTED, api_key="sk-wrong-0000000000")
        with pytest.raises(FatalModelError, match="authentication failed"):
            await ResilientModel(model).complete([], [])
        await model.aclose()
    assert server.app.stats.requests == 1


async def test_wrapping_turns_the_sdk_retries_off() -> None:
    inner = OpenAICompatModel("m", base_url="http://127.0.0.1:9/v1", preset=SELF_HOSTED, max_retries=2)
    wrapped = ResilientModel(inner)
    assert inner.max_retries == 0 and inner._client.max_retries == 0
    assert wrapped.base_url == "http://127.0.0.1:9/v1"  # backend attributes read through
    loaded = load_model("some-model", ModelOptions(base_url="http://127.0.0.1:9/v1", max_retries=4, timeout=5))
    assert isinstance(loaded, ResilientModel)
    assert loaded.policy.max_retries == 4 and loaded.policy.timeout == 5
    assert loaded.inner._client.max_retries == 0  # type: ignore[attr-defined]
    await wrapped.aclose()
    await loaded.aclose()  # type: ignore[attr-defined]


async def test_stub_fault_rates_follow_the_seeded_rng() -> None:
    faults = Faults(error_500=0.3, rate_limit_429=0.2, retry_after=0, seed=7)
    with StubServer(echo, faults=faults) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        outcomes = Counter()
        for _ in range(200):
            try:
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
                outcomes["ok"] += 1
            except openai.APIStatusError as exc:
                outcomes[exc.status_code] += 1
        await client.close()
    assert 35 <= outcomes[500] <= 85 and 20 <= outcomes[429] <= 60
    assert server.app.stats.faults == {"error_500": outcomes[500], "rate_limit_429": outcomes[429]}
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(timeout=1.5)
    with pytest.raises(ValueError, match="add up"):
        Faults(error_500=0.6, timeout=0.6)


async def test_slow_streams_arrive_whole_and_a_total_timeout_still_holds() -> None:
    faults = Faults(slow=1.0, slow_seconds=0.4)
    with StubServer(echo, faults=faults) as server:
        model = OpenAICompatModel("m", base_url=server.base_url, preset=SELF_HOSTED, max_retries=0)
        t0 = time.perf_counter()
        response = await model.complete([], [])
        assert response.message.content == "echo: " and time.perf_counter() - t0 >= 0.3
        # each chunk arrives well inside the SDK's read timeout; the per-call limit is on the whole
        hurried = ResilientModel(model, RetryPolicy(timeout=0.15, max_retries=0))
        with pytest.raises(TransientModelError, match="no answer within 0.15s"):
            await hurried.complete([], [])
        await model.aclose()


# -- malformed tool calls become tool errors, counted in the trace ------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_malformed_tool_calls_are_tool_errors_with_a_kind() -> None:
    script = [
        {"tool_calls": [
            {"name": "add", "arguments": '{"a": 1, "b": '},  # truncated JSON
            {"name": "add", "arguments": {"a": "one", "b": 2}},  # breaks the schema
            {"name": "subtract", "arguments": {"a": 1}},  # no such tool
            {"name": "add", "arguments": {"a": 1, "b": 2}},
        ]},
        "done",
    ]
    trace = Trace()
    result = await Agent("solo", ScriptedModel(script), tools=[add]).run("go", trace=trace)
    assert result.content == "done"
    finished = [e for e in trace.events if isinstance(e, ToolFinished)]
    assert [(e.ok, e.error) for e in finished] == [
        (False, "bad_json"), (False, "bad_arguments"), (False, "unknown_tool"), (True, None)
    ]
    assert "not valid JSON" in finished[0].result and "'a'" in finished[1].result


# -- acceptance: the fault suite -----------------------------------------------------------------

SUITE_FAULTS = dict(error_500=0.10, timeout=0.05, bad_tool_args=0.05, hang=3.0)


async def _workload_run(base_url: str, n: int, k: int) -> tuple[str, list[object]]:
    options = ModelOptions(base_url=base_url, timeout=0.4, retry_base_delay=0.01, max_retries=8)
    model = load_model(f"faults-{n}x{k}", options)
    budgets = Budgets(max_tool_calls=4 * n * k, max_subagents=4 * n, max_subagent_steps=4 * k)
    swarm = Swarm(model, tools=fault_workload.toolset(), budgets=budgets)
    result = await swarm.run("look up every item")
    await model.aclose()  # type: ignore[attr-defined]
    return result.answer, result.trace.events


async def test_fault_suite_every_run_ends_with_the_fault_free_answer() -> None:
    n, k, seeds = 5, 4, range(8)
    with StubServer(fault_workload.responder) as clean:
        reference, _ = await _workload_run(clean.base_url, n, k)
    assert reference == fault_workload.expected_answer(n, k)
    answers, kinds = [], Counter()
    for seed in seeds:
        with StubServer(fault_workload.responder, faults=Faults(**SUITE_FAULTS, seed=seed)) as server:  # type: ignore[arg-type]
            answer, events = await _workload_run(server.base_url, n, k)
            kinds.update(server.app.stats.faults)
        answers.append(answer)
        kinds["retries"] += sum(isinstance(e, ModelRetried) for e in events)
        kinds["bad_json_tool_errors"] += sum(isinstance(e, ToolFinished) and e.error == "bad_json" for e in events)
    assert answers == [reference] * len(seeds)
    # the faults did happen, and each kind was absorbed where it should be
    assert kinds["error_500"] > 0 and kinds["timeout"] > 0 and kinds["bad_tool_args"] > 0
    # (a busy machine can make a healthy call miss its 0.4 s limit: more retries, never fewer)
    assert kinds["retries"] >= kinds["error_500"] + kinds["timeout"]
    assert 0 < kinds["bad_json_tool_errors"] <= kinds["bad_tool_args"]
