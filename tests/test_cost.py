"""Prices, cost per agent rolled up to the run, cost and token budgets, budget warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

from parlswarm import Budgets, Swarm, tool
from parlswarm.budget import Ledger
from parlswarm.models import ScriptedModel, tool_reply
from parlswarm.pricing import ModelPrice, Prices
from parlswarm.testing.scripted_runs import fanout_swarm
from parlswarm.trace.events import BudgetEvent, ModelCalled
from parlswarm.trace.report import build_report
from parlswarm.types import Usage

PRICES = Prices.parse("scripted-orchestrator=3/0.3/15;scripted-subagent=0.6/0.15/2.5")


def test_price_of_usage_counts_cached_input_at_its_own_price() -> None:
    price = ModelPrice(input=2.0, cached_input=0.5, output=8.0)
    usage = Usage(prompt_tokens=1_000_000, cached_tokens=400_000, completion_tokens=250_000)
    # 600k fresh input x $2 + 400k cached x $0.5 + 250k output x $8, per million
    assert price.cost(usage) == pytest.approx(1.2 + 0.2 + 2.0)
    assert ModelPrice(input=2.0, output=8.0).cost(usage) == pytest.approx(2.0 + 2.0)


def test_prices_parse_patterns_and_files(tmp_path: Path) -> None:
    prices = Prices.parse("gpt-4o-mini=0.15/0.6; gpt-4o*=2.5/1.25/10")
    assert prices.price("gpt-4o-mini") == ModelPrice(input=0.15, output=0.6)  # exact before pattern
    assert prices.price("gpt-4o-2024-08-06") == ModelPrice(input=2.5, cached_input=1.25, output=10)
    assert prices.price("kimi-k2.5") is None
    assert prices.price("unknown", "gpt-4o-mini").input == 0.15  # first priced name wins
    path = tmp_path / "prices.yaml"
    path.write_text("currency: EUR\nmodels:\n  kimi-k2.5: {input: 0.6, cached_input: 0.15, output: 2.5}\n")
    loaded = Prices.from_option(str(path))
    assert loaded.currency == "EUR" and loaded.price("kimi-k2.5").cached_input == 0.15
    bare = tmp_path / "bare.json"
    bare.write_text('{"m": {"input": 1, "output": 2}}')
    assert Prices.load(bare).price("m") == ModelPrice(input=1, output=2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("m=1", "is not MODEL=INPUT/OUTPUT"), ("m=a/b", "prices must be numbers"), ("=1/2", "is not MODEL=")],
)
def test_bad_inline_prices_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Prices.parse(spec)


def test_bad_price_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("models:\n  m: {input: -1, output: 2}\n")
    with pytest.raises(ValueError, match=r"p.yaml: models.m.input: .*greater than or equal to 0"):
        Prices.load(path)
    with pytest.raises(FileNotFoundError, match="price file not found"):
        Prices.load(tmp_path / "missing.yaml")


async def test_cost_per_agent_rolls_up_to_the_run() -> None:
    result = await fanout_swarm(["a", "b", "c", "d"], [1, 4, 2, 3], prices=PRICES).run("t")
    calls = [e for e in result.trace.events if isinstance(e, ModelCalled)]
    starts = {e.agent_id: e for e in result.trace.events if e.kind == "agent_started"}
    for call in calls:  # each model call is priced by its agent's model
        expected = PRICES.price(starts[call.agent_id].model).cost(call.usage)
        assert call.cost == pytest.approx(expected)
    data = build_report(result.trace.events)
    per_agent = {lane.agent_id: lane.cost for lane in data.lanes}
    assert len(per_agent) == 5
    assert sum(per_agent.values()) == pytest.approx(result.summary.cost)
    assert result.summary.cost == pytest.approx(sum(c.cost for c in calls))
    root = data.lanes[0]
    assert root.subtree_cost == pytest.approx(result.summary.cost)
    assert root.subtree_usage.total_tokens == result.summary.prompt_tokens + result.summary.completion_tokens
    assert "cost " in result.summary.line()
    # Prices given to the report afterwards give the same figures as prices given to the run.
    unpriced = await fanout_swarm(["a", "b", "c", "d"], [1, 4, 2, 3]).run("t")
    assert unpriced.summary.cost is None
    later = build_report(unpriced.trace.events, PRICES)
    assert later.summary.cost == pytest.approx(result.summary.cost)


@tool
async def lookup(key: str) -> str:
    """Look up a key.

    Args:
        key: The key.
    """
    return f"value of {key}"


def looping_model() -> ScriptedModel:
    return ScriptedModel(lambda messages: tool_reply("lookup", {"key": str(len(messages))}), name="looper")


async def test_cost_budget_stops_new_model_calls_once_spent() -> None:
    prices = Prices.parse("looper=1000/4000")  # expensive, so a few calls spend the budget
    budgets = Budgets(max_cost=0.5)
    result = await Swarm(looping_model(), tools=[lookup], mode="single", budgets=budgets, prices=prices).run("x")
    assert not result.complete and result.result.stop_reason == "budget"
    assert "cost budget (0.5) used up" in result.answer
    costs = [e.cost for e in result.trace.events if isinstance(e, ModelCalled)]
    assert sum(costs) >= 0.5 and sum(costs[:-1]) < 0.5  # the last call started while under budget
    kinds = [(e.budget, e.action) for e in result.trace.events if isinstance(e, BudgetEvent)]
    assert ("max_cost", "warning") in kinds and kinds[-1] == ("max_cost", "stopped")
    assert kinds.index(("max_cost", "warning")) < kinds.index(("max_cost", "stopped"))


def test_cost_budget_needs_a_price_for_every_model() -> None:
    with pytest.raises(ValueError, match="needs a price for model 'looper'"):
        Swarm(looping_model(), budgets=Budgets(max_cost=1.0))
    with pytest.raises(ValueError, match="needs a price for model 'sub'"):
        Swarm(looping_model(), subagent_model=ScriptedModel(["x"], name="sub"), budgets=Budgets(max_cost=1.0),
              prices=Prices.parse("looper=1/1"))


def test_ledger_refuses_sub_agents_once_tokens_or_cost_are_spent() -> None:
    ledger = Ledger(Budgets(max_tokens=100), None)
    assert ledger.take_subagent() is None
    ledger.add_usage(Usage(prompt_tokens=90, completion_tokens=10), "m")
    refused = ledger.take_subagent()
    assert refused is not None and refused[0] == "max_tokens" and "token budget (100) used up" in refused[1]
    assert ledger.subagents == 1
    priced = Ledger(Budgets(max_cost=0.01), Prices.parse("m=10000/10000"))
    assert priced.add_usage(Usage(prompt_tokens=1, completion_tokens=0), "m") == pytest.approx(0.01)
    assert priced.model_call_refusal() == ("max_cost", "cost budget (0.01) used up")


def test_ledger_warns_once_per_budget_at_80_percent() -> None:
    ledger = Ledger(Budgets(max_tool_calls=10, max_tokens=1000))
    for _ in range(7):
        ledger.take_tool_call()
    assert ledger.warnings() == []
    ledger.take_tool_call()
    assert ledger.warnings() == [("max_tool_calls", "8 of 10 used (80%)")]
    ledger.take_tool_call()
    ledger.add_usage(Usage(prompt_tokens=850), "m")
    assert ledger.warnings() == [("max_tokens", "850 of 1000 used (85%)")]
    assert ledger.warnings() == []


async def test_run_emits_one_warning_before_refusals() -> None:
    swarm = fanout_swarm([f"i{k}" for k in range(5)], [3] * 5, budgets=Budgets(max_tool_calls=12))
    result = await swarm.run("t")
    budget = [(e.budget, e.action) for e in result.trace.events if isinstance(e, BudgetEvent)]
    assert budget.count(("max_tool_calls", "warning")) == 1
    assert budget.index(("max_tool_calls", "warning")) < budget.index(("max_tool_calls", "refused"))
    assert result.summary.tool_calls == 12
