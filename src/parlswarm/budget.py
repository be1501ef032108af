"""The run-wide budget ledger: one place that says yes or no to spending.

Everything runs on one asyncio event loop, so a check and its increment, with no ``await``
between them, cannot interleave with another agent's: counters never pass their limits,
whatever the concurrency.
"""

from __future__ import annotations

import asyncio
import time

from parlswarm.types import Budgets, Usage


class Ledger:
    """Counters of one run against its :class:`Budgets`."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets
        self.tool_calls = 0
        self.subagents = 0
        self.usage = Usage()
        self.started = time.monotonic()
        self.deadline = self.started + budgets.max_seconds if budgets.max_seconds else None
        self.concurrency = asyncio.Semaphore(budgets.max_concurrent_subagents)

    def take_tool_call(self) -> str | None:
        """Count one tool call; or return why it is refused."""
        limit = self.budgets.max_tool_calls
        if limit is not None and self.tool_calls >= limit:
            return (
                f"refused: the run's tool-call budget ({limit}) is used up; "
                "no more tools can be called, answer with what you have"
            )
        self.tool_calls += 1
        return None

    def take_subagent(self) -> str | None:
        """Count one sub-agent launch; or return why it is refused."""
        limit = self.budgets.max_subagents
        if self.subagents >= limit:
            return (
                f"refused: the run's sub-agent budget ({limit}) is used up; "
                "no more sub-agents can be started, work with the results you have"
            )
        self.subagents += 1
        return None

    def model_call_refusal(self) -> tuple[str, str] | None:
        """(budget, reason) when no further model call may start, else None."""
        limit = self.budgets.max_tokens
        if limit is not None and self.usage.total_tokens >= limit:
            return "max_tokens", f"token budget ({limit}) used up"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "max_seconds", f"wall-clock budget ({self.budgets.max_seconds:g}s) used up"
        return None

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def add_usage(self, usage: Usage) -> None:
        self.usage = self.usage + usage
