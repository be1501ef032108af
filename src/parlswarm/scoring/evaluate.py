"""Score a whole set of responses: task file + gold folder + responses → report.

Every task of the task file is scored for trials 0..N-1 (N from ``trials``, else the most
trials any task has among the responses). A trial without a response scores 0, as in
WideSearch, and says so; ``skip_missing`` leaves such tasks out instead. A task whose gold
table is missing or unreadable is reported and left out; the others are still scored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from parlswarm.models.base import Model
from parlswarm.scoring.aggregate import Summary, summarize
from parlswarm.scoring.judge import Judge
from parlswarm.scoring.responses import Response, ResponseSet, load_responses
from parlswarm.scoring.score import TaskScore, ascore_response, zero_score
from parlswarm.scoring.tasks import GoldTable, InputError, WideSearchTask, gold_path, load_gold, load_tasks_report

log = logging.getLogger(__name__)


class EvalReport(BaseModel):
    """Everything ``parlswarm eval`` found: scores, their summary and every input problem."""

    tasks_file: str
    gold_dir: str
    responses: str
    trials: int
    judge: str | None = None
    summary: Summary
    scores: list[TaskScore]
    errors: list[InputError] = Field(default_factory=list)
    unknown_responses: list[str] = Field(default_factory=list)  # instance ids not in the task file
    skipped_tasks: list[str] = Field(default_factory=list)  # tasks left out (no gold, or no response with skip_missing)


async def aevaluate(
    tasks: list[WideSearchTask],
    gold_dir: str | Path,
    responses: ResponseSet,
    *,
    trials: int | None = None,
    judge: Judge | Model | None = None,
    skip_missing: bool = False,
    errors: list[InputError] | None = None,
    tasks_file: str = "",
    concurrency: int = 8,
    progress: Callable[[TaskScore], None] | None = None,
) -> EvalReport:
    """Score ``responses`` for ``tasks`` (see the module's docstring)."""
    judge_ = judge if judge is None or isinstance(judge, Judge) else Judge(judge)
    errors = list(errors or []) + list(responses.errors)
    by_task = responses.by_task()
    known = {t.instance_id for t in tasks}
    unknown = sorted(i for i in by_task if i not in known)
    n = trials if trials is not None else max((max(t) + 1 for t in by_task.values()), default=1)
    if n < 1:
        raise ValueError(f"trials must be at least 1, not {n}")
    skipped: list[str] = []
    for instance_id, got in by_task.items():
        beyond = sorted(t for t in got if t >= n)
        if instance_id in known and beyond:
            errors.append(
                InputError(
                    file=responses.path,
                    instance_id=instance_id,
                    message=f"response(s) for trial(s) {beyond} are beyond --trials {n} and are not scored",
                )
            )

    jobs: list[tuple[WideSearchTask, GoldTable, int, Response | None]] = []
    for task in tasks:
        got = by_task.get(task.instance_id, {})
        if skip_missing and not got:
            skipped.append(task.instance_id)
            continue
        try:
            gold = load_gold(gold_dir, task.instance_id)
        except (FileNotFoundError, ValueError) as exc:
            errors.append(InputError(file=str(gold_path(gold_dir, task.instance_id)), instance_id=task.instance_id, message=str(exc)))
            skipped.append(task.instance_id)
            continue
        for trial in range(n):
            jobs.append((task, gold, trial, got.get(trial)))

    limit = asyncio.Semaphore(max(1, concurrency))
    bad_gold: set[str] = set()

    async def run(task: WideSearchTask, gold: GoldTable, trial: int, response: Response | None) -> TaskScore | None:
        if response is None:
            score = zero_score(task, trial, gold_rows=len(gold.rows))
        else:
            async with limit:
                try:
                    score = await ascore_response(task, gold, response.response, judge_, trial=trial)
                    score.source = response.source
                except ValueError as exc:  # the task's gold does not fit the task
                    if task.instance_id not in bad_gold:
                        bad_gold.add(task.instance_id)
                        errors.append(InputError(file=gold.path or "", instance_id=task.instance_id, message=str(exc)))
                    return None
        if progress is not None:
            progress(score)
        return score

    results = await asyncio.gather(*(run(*job) for job in jobs))
    # A task whose gold does not fit is left out whole, not scored 0 for some trials.
    scores = [s for s in results if s is not None and s.instance_id not in bad_gold]
    skipped += sorted(bad_gold)
    return EvalReport(
        tasks_file=tasks_file,
        gold_dir=str(gold_dir),
        responses=responses.path,
        trials=n,
        judge=judge_.name if judge_ else None,
        summary=summarize(scores),
        scores=scores,
        errors=errors,
        unknown_responses=unknown,
        skipped_tasks=skipped,
    )


async def aevaluate_files(
    tasks_file: str | Path,
    gold_dir: str | Path,
    responses: str | Path,
    *,
    trials: int | None = None,
    judge: Judge | Model | None = None,
    skip_missing: bool = False,
    progress: Callable[[TaskScore], None] | None = None,
) -> EvalReport:
    """:func:`aevaluate` from paths. Raises ``FileNotFoundError`` when a path is missing."""
    gold_dir = Path(gold_dir)
    if not gold_dir.is_dir():
        raise FileNotFoundError(f"gold folder not found: {gold_dir}")
    report = load_tasks_report(tasks_file)
    response_set = load_responses(responses)
    return await aevaluate(
        report.tasks,
        gold_dir,
        response_set,
        trials=trials,
        judge=judge,
        skip_missing=skip_missing,
        errors=report.errors,
        tasks_file=str(tasks_file),
        progress=progress,
    )


def evaluate_files(
    tasks_file: str | Path,
    gold_dir: str | Path,
    responses: str | Path,
    *,
    trials: int | None = None,
    judge: Judge | Model | None = None,
    skip_missing: bool = False,
) -> EvalReport:
    """Synchronous :func:`aevaluate_files`."""
    return asyncio.run(
        aevaluate_files(tasks_file, gold_dir, responses, trials=trials, judge=judge, skip_missing=skip_missing)
    )


__all__ = ["EvalReport", "aevaluate", "aevaluate_files", "evaluate_files"]
