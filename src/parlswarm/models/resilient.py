"""Model calls that survive a flaky endpoint: retries, backoff, ``Retry-After``, timeouts.

A swarm makes hundreds of model calls a run, so rate limits, 5xx answers, hung requests and
reset connections are certain. :class:`ResilientModel` wraps any :class:`Model` and retries
the calls that failed for a passing reason (:class:`TransientModelError`) with exponential
backoff and jitter, waiting at least what a ``Retry-After`` header asks. Errors that a retry
cannot mend (:class:`FatalModelError`: bad key, unknown model, malformed request) end the
call at once.

Each call has its own time limit. Retries are counted against the run's ``max_retries``
budget and each one is a :class:`~parlswarm.trace.events.ModelRetried` event in the trace:
the agent loop tells the wrapper who is calling through :data:`CALL_SCOPE`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from parlswarm.budget import Ledger
from parlswarm.models.base import Model, ModelError, call_model
from parlswarm.trace.events import BudgetEvent, ModelRetried
from parlswarm.trace.recorder import Trace
from parlswarm.types import Message, ModelResponse, ToolChoice, ToolSpec

log = logging.getLogger(__name__)


class TransientModelError(ModelError):
    """A call that failed for a passing reason (429, 5xx, timeout, reset, garbled body): retry it.

    ``reason`` is one of ``rate_limit``, ``server_error``, ``timeout``, ``connection``,
    ``bad_response``; ``retry_after`` is the wait in seconds the endpoint asked for, if any.
    """

    def __init__(self, message: str, *, reason: str = "server_error", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


class FatalModelError(ModelError):
    """A call that no retry can mend: authentication, unknown model, a request the endpoint rejects."""


@dataclass(frozen=True)
class RetryPolicy:
    """How a :class:`ResilientModel` retries.

    The n-th retry waits ``min(max_delay, base_delay * 2**n)`` scaled by a random factor in
    [0.5, 1] (jitter, so that concurrent sub-agents do not retry in lockstep), or what the
    endpoint's ``Retry-After`` asks plus up to 10 % jitter, whichever is longer. A
    ``Retry-After`` above ``max_retry_after`` ends the call instead.
    """

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0
    timeout: float | None = 600.0  # seconds per attempt; None: no limit

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, not {self.max_retries}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be >= 0")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"model call timeout must be > 0 seconds, not {self.timeout:g}")

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        backoff = min(self.max_delay, self.base_delay * 2**retry)
        wait = backoff * rng.uniform(0.5, 1.0)
        if retry_after is not None:
            wait = max(wait, retry_after * rng.uniform(1.0, 1.1))
        return wait


@dataclass
class CallScope:
    """Who makes the current model call: the agent loop sets it before each call."""

    trace: Trace
    ledger: Ledger
    agent_id: str
    step: int


CALL_SCOPE: ContextVar[CallScope | None] = ContextVar("parlswarm_call_scope", default=None)


class ResilientModel:
    """Any :class:`Model`, with retries, a per-call timeout and a per-run retry cap."""

    def __init__(self, inner: Model, policy: RetryPolicy | None = None, *, seed: int | None = None) -> None:
        self.inner = inner
        self.policy = policy or RetryPolicy()
        self.name = inner.name
        self._rng = random.Random(seed)
        # The wrapped backend must not retry on its own as well (retries would multiply).
        own_retries_off = getattr(inner, "use_own_retries", None)
        if callable(own_retries_off):
            own_retries_off()

    def __repr__(self) -> str:
        return f"ResilientModel({self.inner!r}, {self.policy})"

    def __getattr__(self, attr: str) -> Any:
        # Backend attributes (base_url, model, ...) read through the wrapper.
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    async def _attempt(self, messages: Sequence[Message], tools: Sequence[ToolSpec], tool_choice: ToolChoice) -> ModelResponse:
        timeout = self.policy.timeout
        try:
            async with asyncio.timeout(timeout):
                return await call_model(self.inner, messages, tools, tool_choice)
        except TimeoutError:
            raise TransientModelError(
                f"model '{self.name}': no answer within {timeout:g}s", reason="timeout"
            ) from None
        except ConnectionError as exc:  # backends that do not wrap their socket errors
            raise TransientModelError(
                f"model '{self.name}': connection failed: {type(exc).__name__}: {exc}", reason="connection"
            ) from None

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        scope = CALL_SCOPE.get()
        retries = 0
        while True:
            try:
                return await self._attempt(messages, tools, tool_choice)
            except TransientModelError as exc:
                error = exc
            if retries >= self.policy.max_retries:
                raise TransientModelError(
                    f"{error} (gave up after {retries} retries)", reason=error.reason, retry_after=error.retry_after
                ) from None
            if error.retry_after is not None and error.retry_after > self.policy.max_retry_after:
                raise TransientModelError(
                    f"{error} (the endpoint asks to wait {error.retry_after:g}s, more than the "
                    f"{self.policy.max_retry_after:g}s allowed)",
                    reason=error.reason,
                    retry_after=error.retry_after,
                ) from None
            if scope is not None:
                refusal = scope.ledger.take_retry()
                if refusal is not None:
                    scope.trace.emit(
                        BudgetEvent(agent_id=scope.agent_id, budget="max_retries", action="refused", detail=refusal)
                    )
                    raise TransientModelError(f"{error} (not retried: {refusal})", reason=error.reason) from None
            wait = self.policy.delay(retries, error.retry_after, self._rng)
            retries += 1
            log.info("retry %d of a call to %s in %.2fs: %s", retries, self.name, wait, error)
            if scope is not None:
                scope.trace.emit(
                    ModelRetried(
                        agent_id=scope.agent_id,
                        step=scope.step,
                        attempt=retries,
                        reason=error.reason,
                        error=str(error),
                        delay=wait,
                    )
                )
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


__all__ = [
    "CALL_SCOPE",
    "CallScope",
    "FatalModelError",
    "ResilientModel",
    "RetryPolicy",
    "TransientModelError",
]
