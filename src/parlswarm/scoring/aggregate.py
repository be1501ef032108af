"""Aggregation over trials and tasks, as WideSearch's ``calc_summary_results``.

For each task and metric: Avg@N (mean over the task's N trials), Max@N (best trial) and
Min@N (worst trial); then each of these is averaged over tasks. Max@N of ``success`` is
Pass@N (a task passes when one of its trials succeeds).

A trial whose ``success`` is undecided (None: unscored llm_judge cells) is left out of that
task's success values; a task with no decided trial is left out of the success aggregate.
``tasks`` on each aggregate says how many tasks counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from statistics import fmean

from pydantic import BaseModel, Field

from parlswarm.scoring.score import METRIC_NAMES, TaskScore


class MetricAggregate(BaseModel):
    avg: float | None = None  # Avg@N
    max: float | None = None  # Max@N (Pass@N for success)
    min: float | None = None  # Min@N
    tasks: int = 0


class TaskAggregate(BaseModel):
    """One task's trials, per metric."""

    instance_id: str
    trials: int
    metrics: dict[str, MetricAggregate]
    errors: list[str] = Field(default_factory=list)
    unscored_cells: int = 0


class Summary(BaseModel):
    trials: int  # N: the most trials any task has
    tasks: int
    metrics: dict[str, MetricAggregate]
    per_task: list[TaskAggregate]
    unscored_cells: int = 0
    undecided_trials: int = 0

    def at(self, metric: str, kind: str = "avg") -> float | None:
        value: float | None = getattr(self.metrics[metric], kind)
        return value


def _over(values: list[float]) -> MetricAggregate:
    if not values:
        return MetricAggregate()
    return MetricAggregate(avg=fmean(values), max=max(values), min=min(values), tasks=1)


def summarize(scores: Iterable[TaskScore]) -> Summary:
    """Avg@N, Max@N and Min@N of every metric over the tasks in ``scores`` (any trial order)."""
    by_task: dict[str, list[TaskScore]] = {}
    for s in scores:
        by_task.setdefault(s.instance_id, []).append(s)
    per_task = []
    for instance_id, trials in by_task.items():
        trials.sort(key=lambda s: s.trial)
        metrics = {}
        for name in METRIC_NAMES:
            values = [v for s in trials if (v := s.metric(name)) is not None]
            metrics[name] = _over(values)
        per_task.append(
            TaskAggregate(
                instance_id=instance_id,
                trials=len(trials),
                metrics=metrics,
                errors=[f"trial {s.trial}: {s.error}" for s in trials if s.error],
                unscored_cells=sum(s.unscored_cells for s in trials),
            )
        )
    overall = {}
    for name in METRIC_NAMES:
        counted = [t.metrics[name] for t in per_task if t.metrics[name].tasks]
        if not counted:
            overall[name] = MetricAggregate()
            continue
        overall[name] = MetricAggregate(
            avg=fmean(m.avg for m in counted if m.avg is not None),
            max=fmean(m.max for m in counted if m.max is not None),
            min=fmean(m.min for m in counted if m.min is not None),
            tasks=len(counted),
        )
    all_scores = [s for trials in by_task.values() for s in trials]
    return Summary(
        trials=max((t.trials for t in per_task), default=0),
        tasks=len(per_task),
        metrics=overall,
        per_task=per_task,
        unscored_cells=sum(s.unscored_cells for s in all_scores),
        undecided_trials=sum(1 for s in all_scores if s.success is None),
    )


__all__ = ["MetricAggregate", "Summary", "TaskAggregate", "summarize"]
