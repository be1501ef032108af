"""PARL rewards and schedules against hand-computed values."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from parlswarm import Swarm, tool
from parlswarm.models import ScriptedModel, calls_reply, tool_reply
from parlswarm.parl.rewards import EpisodeStats, RewardConfig, Schedule, episode_stats, reward
from parlswarm.types import Message


@pytest.mark.parametrize(
    "schedule, e, expected",
    [
        (Schedule(kind="constant", start=0.3), 0.7, 0.3),
        (Schedule(kind="linear", start=0.1, end=0.0), 0.25, 0.075),
        (Schedule(kind="linear", start=0.3, end=0.0, anneal=0.5), 0.25, 0.15),
        (Schedule(kind="linear", start=0.3, end=0.0, anneal=0.5), 0.8, 0.0),
        (Schedule(kind="cosine", start=0.2, end=0.0), 0.5, 0.1),  # 0.2 * (1 + cos(pi/2)) / 2
        (Schedule(kind="cosine", start=0.2, end=0.0), 0.0, 0.2),
        (Schedule(kind="cosine", start=0.2, end=0.0, anneal=0.5), 0.25, 0.1),
        (Schedule(kind="step", start=0.5, end=0.1, anneal=0.4), 0.39, 0.5),
        (Schedule(kind="step", start=0.5, end=0.1, anneal=0.4), 0.4, 0.1),
        (Schedule(kind="linear", start=0.1, end=0.0), 1.7, 0.0),  # progress is clamped
    ],
)
def test_schedules(schedule: Schedule, e: float, expected: float) -> None:
    assert schedule(e) == pytest.approx(expected)


def stats(**kw: float | int | bool) -> EpisodeStats:
    base = dict(subagents_created=1, subagents_assigned=4, subagents_finished=3, orchestrator_steps=3,
                parallel_steps=1, critical_steps=8, total_steps=20, tool_calls=15, answered=True,
                item_f1=0.6, success=False)
    base.update(kw)
    return EpisodeStats(**base)  # type: ignore[arg-type]


def test_report_form_by_hand() -> None:
    cfg = RewardConfig(form="report", parallel_cap=10,
                       lambda1=Schedule(kind="linear", start=0.3, end=0.0, anneal=0.5),
                       lambda2=Schedule(kind="linear", start=0.2, end=0.0, anneal=0.5))
    r = reward(stats(), cfg, progress=0.25)
    # r_parallel = 4/10, r_finish = 3/4, λ1 = 0.15, λ2 = 0.1: 0.15*0.4 + 0.1*0.75 + 0.6 = 0.735
    assert (r.r_parallel, r.r_finish, r.r_perf) == (0.4, 0.75, 0.6)
    assert r.total == pytest.approx(0.735)
    # Annealed away: only performance is left.
    assert reward(stats(), cfg, progress=0.9).total == pytest.approx(0.6)
    # The cap: 25 sub-agents earn no more than 10.
    assert reward(stats(subagents_assigned=25, subagents_finished=25), cfg, 0.0).r_parallel == 1.0


def test_capping_at_rows_pays_no_width_beyond_one_subagent_per_row() -> None:
    cfg = RewardConfig(parallel_cap=8, parallel_cap_rows=True)
    # 6 rows, cap 8: the cap becomes 6; 4 sub-agents earn 4/6, 6 earn 1, 9 no more than 6.
    assert reward(stats(), cfg, 0.0, rows=6).r_parallel == pytest.approx(4 / 6)
    assert reward(stats(subagents_assigned=6), cfg, 0.0, rows=6).r_parallel == 1.0
    nine = reward(stats(subagents_assigned=9, subagents_finished=9), cfg, 0.0, rows=6)
    # λ1(0) = 0.3, λ2(0) = 0.2: 0.3*1 + 0.2*1 + 0.6 = 1.1 (uncapped by rows: 0.3*8/8 the same, 9 > 8)
    assert nine.r_parallel == 1.0 and nine.total == pytest.approx(1.1)
    # More rows than the cap: parallel_cap still rules (4 of 8).
    assert reward(stats(), cfg, 0.0, rows=12).r_parallel == 0.5
    # Off (the default), the rows change nothing: 4/8.
    assert reward(stats(), RewardConfig(parallel_cap=8), 0.0, rows=2).r_parallel == 0.5


def test_capping_at_rows_without_rows_is_refused() -> None:
    cfg = RewardConfig(parallel_cap_rows=True)
    with pytest.raises(ValueError, match="parallel_cap_rows.*rows >= 1, not None"):
        reward(stats(), cfg, 0.0)
    with pytest.raises(ValueError, match="not 0"):
        reward(stats(), cfg, 0.0, rows=0)


def test_no_subagents_earn_no_auxiliary_reward() -> None:
    r = reward(stats(subagents_assigned=0, subagents_finished=0, subagents_created=0), RewardConfig(), 0.0)
    assert r.r_parallel == 0.0 and r.r_finish == 0.0 and r.total == pytest.approx(0.6)


def test_counting_created_subagents_gives_partial_credit() -> None:
    created_only = stats(subagents_created=3, subagents_assigned=0, subagents_finished=0)
    assert reward(created_only, RewardConfig(parallel_cap=6), 0.0).r_parallel == 0.0  # default: only started ones
    r = reward(created_only, RewardConfig(parallel_cap=6, parallel_counts="created"), 0.0)
    # r_parallel = 3/6, r_finish = 0 (none assigned), λ1(0) = 0.3: 0.3*0.5 + 0.6 = 0.75
    assert r.r_parallel == 0.5 and r.r_finish == 0.0 and r.total == pytest.approx(0.75)


def test_blog_form_by_hand() -> None:
    cfg = RewardConfig(form="blog", lambda_aux=Schedule(kind="linear", start=0.1, end=0.0), perf="item_f1")
    r = reward(stats(), cfg, progress=0.5)
    # λ_aux = 0.05: 0.05*0.4 + 0.95*(1*0.6) = 0.59
    assert r.lambda_aux == pytest.approx(0.05) and r.total == pytest.approx(0.59)
    # An episode that ran out of budget gets only the auxiliary part.
    assert reward(stats(answered=False), cfg, 0.5).total == pytest.approx(0.02)
    cfg_success = RewardConfig(form="blog", perf="success")
    assert reward(stats(success=True), cfg_success, 1.0).total == pytest.approx(1.0)


@tool
def lookup(key: str) -> str:
    """Look up."""
    return key


async def test_episode_stats_from_a_real_trace() -> None:
    def orch(messages: Sequence[Message]):
        turn = sum(1 for m in messages if m.role == "assistant")
        if turn == 0:
            return tool_reply("create_subagent", {"name": "w", "system_prompt": "w"})
        if turn == 1:
            return calls_reply([("assign_task", {"agent": "w", "prompt": p}) for p in ("a", "b", "fail")])
        if turn == 2:
            return tool_reply("assign_task", {"agent": "w", "prompt": "c"})
        return "answer"

    def sub(messages: Sequence[Message]):
        task = messages[1].content
        if task == "fail":
            raise RuntimeError("boom")
        turn = sum(1 for m in messages if m.role == "assistant")
        return tool_reply("lookup", {"key": str(task)}) if turn == 0 else f"got {task}"

    result = await Swarm(ScriptedModel(orch), subagent_model=ScriptedModel(sub), tools=[lookup]).run("t")
    s = episode_stats(result.trace.events, item_f1=0.5, success=False)
    assert (s.subagents_created, s.subagents_assigned, s.subagents_finished) == (1, 4, 3)
    assert (s.orchestrator_steps, s.parallel_steps) == (4, 1)
    assert s.parallel_share == 0.25
    assert s.critical_steps == 1 + (1 + 2) + (1 + 2) + 1 == result.summary.critical_steps
    assert s.total_steps == result.summary.steps and s.answered
