"""The run-wide budget ledger: one place that says yes or no to spending.

Everything runs on one asyncio event loop, so a check and its increment, with no ``await``
between them, cannot interleave with another agent's: counters never pass their limits,
whatever the concurrency.
"""

from __future__ import annotations

import asyncio
import time

from parlswarm.pricing import Prices
from parlswarm.types import Budgets, Usage

WARN_AT = 0.8  # share of a budget at which the run is warned, once per budget


class Ledger:
    """Counters of one run against its :class:`Budgets`."""

    def __init__(self, budgets: Budgets, prices: Prices | None = None) -> None:
        self.budgets = budgets
        self.prices = prices
        self.tool_calls = 0
        self.subagents = 0
        self.retries = 0
        self.usage = Usage()
        self.cost = 0.0  # counted only for priced models; require_prices guards max_cost
        self._warned: set[str] = set()
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

    def take_subagent(self) -> tuple[str, str] | None:
        """Count one sub-agent launch; or return (the budget that refuses it, why)."""
        limit = self.budgets.max_subagents
        if self.subagents >= limit:
            return "max_subagents", (
                f"refused: the run's sub-agent budget ({limit}) is used up; "
                "no more sub-agents can be started, work with the results you have"
            )
        spent = self.model_call_refusal()
        if spent is not None:  # a sub-agent that cannot make a single model call is no use
            budget, reason = spent
            return budget, f"refused: the run's {reason}; no more sub-agents can be started, work with the results you have"
        self.subagents += 1
        return None

    def model_call_refusal(self) -> tuple[str, str] | None:
        """(budget, reason) when no further model call may start, else None."""
        limit = self.budgets.max_tokens
        if limit is not None and self.usage.total_tokens >= limit:
            return "max_tokens", f"token budget ({limit}) used up"
        max_cost = self.budgets.max_cost
        if max_cost is not None and self.cost >= max_cost:
            return "max_cost", f"cost budget ({max_cost:g}) used up"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "max_seconds", f"wall-clock budget ({self.budgets.max_seconds:g}s) used up"
        return None

    def take_retry(self) -> str | None:
        """Count one retry of a failed model call; or return why it is refused."""
        limit = self.budgets.max_retries
        if limit is not None and self.retries >= limit:
            return f"the run's retry budget ({limit}) is used up"
        self.retries += 1
        return None

    def seconds_left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def add_usage(self, usage: Usage, *models: str) -> float | None:
        """Count ``usage`` of a call to the first priced of ``models``; returns its cost when priced."""
        self.usage = self.usage + usage
        cost = self.prices.cost(usage, *models) if self.prices is not None else None
        if cost is not None:
            self.cost += cost
        return cost

    def warnings(self) -> list[tuple[str, str]]:
        """(budget, detail) for each budget that has newly passed WARN_AT of its limit."""
        b = self.budgets
        levels: list[tuple[str, float, float | None]] = [
            ("max_tool_calls", self.tool_calls, b.max_tool_calls),
            ("max_subagents", self.subagents, b.max_subagents or None),
            ("max_tokens", self.usage.total_tokens, b.max_tokens),
            ("max_cost", self.cost, b.max_cost),
            ("max_seconds", time.monotonic() - self.started, b.max_seconds),
        ]
        found = []
        for budget, used, limit in levels:
            if limit is not None and budget not in self._warned and used >= WARN_AT * limit:
                self._warned.add(budget)
                found.append((budget, f"{used:g} of {limit:g} used ({used / limit:.0%})"))
        return found
