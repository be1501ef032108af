"""Score one response against one task's gold table, as WideSearch's ``evaluate_single_query``.

The pipeline, step by step (docs/scoring.md has the full account and every difference):

1. Find the markdown table in the response (:func:`extract_table`); none → everything 0.
2. Match column names: normalised names that equal a required column match; then
   names equal once punctuation, case and accents are ignored (one-to-one only); then,
   with a judge, the judge maps the rest. Any required column still missing, or any
   response column left over, fails the task with every metric 0, as in WideSearch.
3. Read the missing-value tokens pandas reads as missing ("", "N/A", "nan"...) as empty.
4. Align key values of key columns whose metric is ``exact_match`` or ``llm_judge``: a
   response key equal to a gold key after the column's preprocessing needs nothing; else
   one equal once punctuation, case and accents are ignored (one-to-one) is aligned; else,
   with a judge, the judge aligns the rest. Without a judge, the rest are reported.
5. Preprocess every column (``norm_str``, ``extract_number``, ``norm_date``), both tables.
6. Drop rows whose key repeats an earlier row's key, both tables.
7. Join gold and response rows on the key columns. Key cells score 1; every other cell
   scores the minimum over its column's metrics. ``llm_judge`` cells whose text equals the
   gold's (ignoring case) score 1; the others are graded by the judge, or stay *unscored*.
8. Row score = minimum over its cells. Unscored cells leave the sums and denominators:
   ``tp_item`` = sum of scored cells; ``P_item = tp_item / (response_rows·C − U)``,
   ``R_item = tp_item / (gold_rows·C − U)`` with C columns and U unscored cells. A row whose
   scored cells are all 1 but which has an unscored cell is *undecided* and leaves the row
   sums and both row denominators likewise. F1 = 2PR/(P+R).
9. Success = 1 when the two tables are equal after preprocessing, or when all six of
   P/R/F1 by row and by item are 1 and nothing is undecided; None when everything scored
   is right but undecided rows remain; else 0.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field, computed_field

from parlswarm.models.base import Model
from parlswarm.scoring.judge import Judge, JudgeError
from parlswarm.scoring.metrics import JUDGE_METRIC, METRICS, PREPROCESSORS, canonical_cell, exact_match
from parlswarm.scoring.table import TableError, extract_table
from parlswarm.scoring.tasks import ColumnPipeline, GoldTable, WideSearchTask

log = logging.getLogger(__name__)

T = TypeVar("T")


class Alignment(BaseModel):
    """A response column name or key value taken to mean a gold one, and what decided it."""

    column: str | None = None  # the key column, for key values; None for column names
    response: str
    gold: str
    by: Literal["loose", "judge"]


class CellResult(BaseModel):
    """One compared cell (after preprocessing)."""

    key: list[str]
    column: str
    response: str
    gold: str
    score: float | None


class TaskScore(BaseModel):
    """The score of one response to one task (one trial)."""

    instance_id: str
    trial: int = 0
    success: float | None = 0.0
    row_precision: float = 0.0
    row_recall: float = 0.0
    row_f1: float = 0.0
    item_precision: float = 0.0
    item_recall: float = 0.0
    item_f1: float = 0.0
    # Counts, after duplicate keys are dropped.
    gold_rows: int = 0
    response_rows: int = 0
    matched_rows: int = 0
    columns: int = 0
    unscored_cells: int = 0
    undecided_rows: int = 0
    # What was matched, and what could not be.
    column_alignments: list[Alignment] = Field(default_factory=list)
    missing_columns: list[str] = Field(default_factory=list)
    unexpected_columns: list[str] = Field(default_factory=list)
    key_alignments: list[Alignment] = Field(default_factory=list)
    missing_keys: list[list[str]] = Field(default_factory=list)  # gold rows with no response row
    extra_keys: list[list[str]] = Field(default_factory=list)  # response rows with no gold row
    duplicate_response_keys: int = 0
    wrong_cells: list[CellResult] = Field(default_factory=list)
    unscored: list[CellResult] = Field(default_factory=list)
    judge: str | None = None
    error: str | None = None  # why the response could not be compared at all
    error_kind: Literal["no_response", "no_table", "bad_table", "columns"] | None = None
    notes: list[str] = Field(default_factory=list)
    source: str = ""  # where the response came from (file, line), when known

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fully_scored(self) -> bool:
        """True when no cell was left unscored (every llm_judge cell was decided)."""
        return self.unscored_cells == 0

    def metric(self, name: str) -> float | None:
        value: float | None = getattr(self, name)
        return value


METRIC_NAMES = ("success", "row_precision", "row_recall", "row_f1", "item_precision", "item_recall", "item_f1")


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 1e-9 else 0.0


def _loose(text: str) -> str:
    """Text with case, accents, spaces, punctuation and markdown marks ignored."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum())


def _loose_pairs(response: Sequence[str], gold: Sequence[str]) -> dict[str, str]:
    """Pairs equal under :func:`_loose`, where the loose form names exactly one on each side."""
    by_resp: dict[str, list[str]] = {}
    by_gold: dict[str, list[str]] = {}
    for r in response:
        by_resp.setdefault(_loose(r), []).append(r)
    for g in gold:
        by_gold.setdefault(_loose(g), []).append(g)
    return {
        rs[0]: by_gold[k][0]
        for k, rs in by_resp.items()
        if k and len(rs) == 1 and len(by_gold.get(k, [])) == 1
    }


def _loose_lookup(response: Sequence[str], gold: Sequence[str]) -> dict[str, str]:
    """Each response value whose loose form names exactly one gold value, mapped to it."""
    by_gold: dict[str, list[str]] = {}
    for g in gold:
        by_gold.setdefault(_loose(g), []).append(g)
    return {r: by_gold[_loose(r)][0] for r in response if _loose(r) and len(by_gold.get(_loose(r), [])) == 1}


def _preprocess(value: str, pipeline: ColumnPipeline, language: str) -> str:
    for name in pipeline.preprocess:
        value = PREPROCESSORS[name](value, language)
    return value


def _dedupe(rows: list[list[str]], key_idx: list[int]) -> tuple[list[list[str]], int]:
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in rows:
        key = tuple(row[i] for i in key_idx)
        if key in seen:
            continue
        seen.add(key)
        kept.append(row)
    return kept, len(rows) - len(kept)


def _as_judge(judge: Judge | Model | None) -> Judge | None:
    if judge is None or isinstance(judge, Judge):
        return judge
    return Judge(judge)


async def ascore_response(
    task: WideSearchTask,
    gold: GoldTable,
    response_text: str,
    judge: Judge | Model | None = None,
    *,
    trial: int = 0,
) -> TaskScore:
    """Score ``response_text`` for ``task`` against ``gold`` (see the module's docstring).

    ``judge`` (a :class:`Judge` or any :class:`Model`) does WideSearch's LLM steps; without
    one, they are reported instead of guessed. Raises ``ValueError`` when the gold table
    lacks a required column: that is the task's fault, not the response's.
    """
    judge_ = _as_judge(judge)
    ev = task.evaluation
    required, keys = ev.required, ev.unique_columns
    language = task.language
    score = TaskScore(instance_id=task.instance_id, trial=trial, columns=len(required), judge=judge_.name if judge_ else None)

    absent = [c for c in required if c not in gold.columns]
    if absent:
        where = gold.path or f"gold table of {task.instance_id}"
        raise ValueError(
            f"{where} (task {task.instance_id}) lacks required column(s) {absent}; its columns are {gold.columns}"
        )
    gold_idx = [gold.columns.index(c) for c in required]
    gold_rows = [[canonical_cell(row[i]) for i in gold_idx] for row in gold.rows]
    score.gold_rows = len(gold_rows)

    # 1. the table
    try:
        table = extract_table(response_text)
    except TableError as exc:
        score.error, score.error_kind = f"the response's table cannot be read: {exc}", "bad_table"
        return score
    if table is None:
        score.error, score.error_kind = "no markdown table in the response", "no_table"
        return score

    # 2. column names
    names = list(table.columns)
    for i, name in enumerate(names):  # a repeated name is another column, as pandas reads it
        repeats = names[:i].count(name)
        if repeats:
            names[i] = f"{name}.{repeats}"
    unexpected = [n for n in names if n not in required]
    missing = [c for c in required if c not in names]
    renames: dict[str, str] = {}
    if unexpected and missing:
        for resp_name, gold_name in _loose_pairs(unexpected, missing).items():
            renames[resp_name] = gold_name
            score.column_alignments.append(Alignment(response=resp_name, gold=gold_name, by="loose"))
        rest_resp = [n for n in unexpected if n not in renames]
        rest_gold = [c for c in missing if c not in renames.values()]
        if judge_ is not None and rest_resp and rest_gold:
            try:
                mapped = await judge_.align(rest_resp, rest_gold, what=f"column names of {task.instance_id}")
            except JudgeError as exc:
                score.notes.append(str(exc))
                mapped = {}
            for resp_name, gold_name in mapped.items():
                renames[resp_name] = gold_name
                score.column_alignments.append(Alignment(response=resp_name, gold=gold_name, by="judge"))
    names = [renames.get(n, n) for n in names]
    score.unexpected_columns = [n for n in names if n not in required]
    score.missing_columns = [c for c in required if c not in names]
    if score.unexpected_columns or score.missing_columns:
        parts = []
        if score.missing_columns:
            parts.append(f"missing {score.missing_columns}")
        if score.unexpected_columns:
            parts.append(f"unexpected {score.unexpected_columns}")
        hint = "" if judge_ is not None else " (no judge to map column names)"
        score.error = f"the table's columns are not the required ones: {'; '.join(parts)}{hint}"
        score.error_kind = "columns"
        return score
    resp_idx = [names.index(c) for c in required]
    resp_rows = [[canonical_cell(row[i]) for i in resp_idx] for row in table.rows]

    # 4. key alignment, before preprocessing as in WideSearch (the judge sees raw values)
    pipelines = {c: ev.pipeline(c) for c in required}
    for k in keys:
        if not ({"exact_match", JUDGE_METRIC} & set(pipelines[k].metric)):
            continue
        col = required.index(k)

        def prep(v: str, k: str = k) -> str:
            return _preprocess(v, pipelines[k], language)

        gold_values = list(dict.fromkeys(r[col] for r in gold_rows))
        resp_values = list(dict.fromkeys(r[col] for r in resp_rows))
        gold_prepped = {prep(v) for v in gold_values}
        # A value of one key column may repeat across rows (several rows per season), so
        # a response value is aligned against every gold value, used or not.
        lone_resp = [v for v in resp_values if prep(v) not in gold_prepped]
        key_map = _loose_lookup(lone_resp, gold_values)
        for r, g in key_map.items():
            score.key_alignments.append(Alignment(column=k, response=r, gold=g, by="loose"))
        rest_resp = [v for v in lone_resp if v not in key_map]
        if judge_ is not None and rest_resp:
            try:
                mapped = await judge_.align(
                    rest_resp, gold_values, what=f"key column {k} of {task.instance_id}", one_to_one=False
                )
            except JudgeError as exc:
                score.notes.append(str(exc))
                mapped = {}
            for r, g in mapped.items():
                key_map[r] = g
                score.key_alignments.append(Alignment(column=k, response=r, gold=g, by="judge"))
        for row in resp_rows:
            row[col] = key_map.get(row[col], row[col])

    # 5. preprocessing
    for col, c in enumerate(required):
        if pipelines[c].preprocess:
            for rows in (gold_rows, resp_rows):
                for row in rows:
                    row[col] = _preprocess(row[col], pipelines[c], language)

    # 6. duplicate keys
    key_idx = [required.index(k) for k in keys]
    gold_rows, gold_dupes = _dedupe(gold_rows, key_idx)
    resp_rows, score.duplicate_response_keys = _dedupe(resp_rows, key_idx)
    if gold_dupes:
        score.notes.append(f"the gold table repeats {gold_dupes} key(s); only the first row of each counts")
    if score.duplicate_response_keys:
        score.notes.append(f"the response repeats {score.duplicate_response_keys} key(s); only the first row of each counts")
    score.gold_rows, score.response_rows = len(gold_rows), len(resp_rows)
    tables_equal = sorted(gold_rows) == sorted(resp_rows)

    # 7. join and cell metrics
    def key_of(row: list[str]) -> tuple[str, ...]:
        return tuple(row[i] for i in key_idx)

    gold_by_key = {key_of(row): row for row in gold_rows}
    resp_keys = {key_of(row) for row in resp_rows}
    pairs = [(gold_by_key[key_of(row)], row) for row in resp_rows if key_of(row) in gold_by_key]
    score.matched_rows = len(pairs)
    score.missing_keys = [list(k) for k in gold_by_key if k not in resp_keys]
    score.extra_keys = [list(key_of(row)) for row in resp_rows if key_of(row) not in gold_by_key]

    cells: list[list[float | None]] = [[1.0] * len(required) for _ in pairs]
    to_judge: dict[int, list[int]] = {}  # column -> rows whose cell awaits the judge
    for col, c in enumerate(required):
        if c in keys:
            continue
        pipeline = pipelines[c]
        for i, (gold_row, resp_row) in enumerate(pairs):
            value = 1.0
            for name in pipeline.metric:
                fn = METRICS[name]
                if fn is not None:
                    value = min(value, fn(resp_row[col], gold_row[col], pipeline.criterion, language))
            cells[i][col] = value
            if JUDGE_METRIC in pipeline.metric and value > 0 and not exact_match(resp_row[col], gold_row[col]):
                to_judge.setdefault(col, []).append(i)
                cells[i][col] = None

    if judge_ is not None and to_judge:

        async def grade(col: int, rows: list[int]) -> None:
            c = required[col]
            criterion = pipelines[c].criterion
            try:
                grades = await judge_.grade(
                    [(pairs[i][1][col], pairs[i][0][col]) for i in rows],
                    str(criterion) if criterion is not None else None,
                    what=f"column {c} of {task.instance_id}",
                )
            except JudgeError as exc:
                score.notes.append(str(exc))
                return
            ungraded = 0
            for i, grade_ in zip(rows, grades, strict=True):
                if grade_ is None:
                    ungraded += 1
                else:
                    cells[i][col] = grade_
            if ungraded:
                score.notes.append(f"judge {judge_.name} gave no 0/1 score for {ungraded} cell(s) of column {c}")

        await asyncio.gather(*(grade(col, rows) for col, rows in to_judge.items()))

    # 8. rows, items, P/R/F1
    tp_row = tp_item = 0.0
    for i, (gold_row, resp_row) in enumerate(pairs):
        scored = [v for v in cells[i] if v is not None]
        key = list(key_of(resp_row))
        for col, v in enumerate(cells[i]):
            if v is None or v < 1.0:
                cell = CellResult(key=key, column=required[col], response=resp_row[col], gold=gold_row[col], score=v)
                (score.unscored if v is None else score.wrong_cells).append(cell)
        tp_item += sum(scored)
        row_score = min(scored) if scored else 1.0
        if row_score > 0 and len(scored) < len(required):
            score.undecided_rows += 1
        else:
            tp_row += row_score
    score.unscored_cells = len(score.unscored)
    n_cols = len(required)
    pred_items = score.response_rows * n_cols - score.unscored_cells
    gold_items = score.gold_rows * n_cols - score.unscored_cells
    pred_rows = score.response_rows - score.undecided_rows
    gold_rows_n = score.gold_rows - score.undecided_rows
    score.row_precision = tp_row / pred_rows if pred_rows > 0 else 0.0
    score.row_recall = tp_row / gold_rows_n if gold_rows_n > 0 else 0.0
    score.item_precision = tp_item / pred_items if pred_items > 0 else 0.0
    score.item_recall = tp_item / gold_items if gold_items > 0 else 0.0
    score.row_f1 = _f1(score.row_precision, score.row_recall)
    score.item_f1 = _f1(score.item_precision, score.item_recall)

    # 9. success
    all_one = all(
        getattr(score, m) == 1.0
        for m in ("row_precision", "row_recall", "row_f1", "item_precision", "item_recall", "item_f1")
    )
    if tables_equal or (all_one and score.undecided_rows == 0):
        score.success = 1.0
    elif all_one or (score.undecided_rows and not score.wrong_cells and not score.missing_keys and not score.extra_keys):
        score.success = None
    else:
        score.success = 0.0
    if score.unscored_cells:
        why = "no judge was given" if judge_ is None else f"judge {judge_.name} did not grade them"
        score.notes.append(
            f"{score.unscored_cells} llm_judge cell(s) unscored ({why}); they are left out of the item and row counts"
        )
    return score


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    # Without a judge nothing in ascore_response suspends, so it runs to the end on its
    # first step; this lets the synchronous entry point work inside a running event loop.
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("scoring without a judge suspended unexpectedly")


def score_response(
    task: WideSearchTask,
    gold: GoldTable,
    response_text: str,
    judge: Judge | Model | None = None,
    *,
    trial: int = 0,
) -> TaskScore:
    """Synchronous :func:`ascore_response`. With a judge, call it outside an event loop
    (or ``await ascore_response`` inside one)."""
    coro = ascore_response(task, gold, response_text, judge, trial=trial)
    if judge is None:
        return _drive(coro)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError("score_response with a judge cannot run inside an event loop; await ascore_response instead")


def zero_score(task: WideSearchTask, trial: int, gold_rows: int = 0, error: str = "no response") -> TaskScore:
    """The score of a trial that has no response at all: every metric 0, and why."""
    return TaskScore(
        instance_id=task.instance_id,
        trial=trial,
        columns=len(task.evaluation.required),
        gold_rows=gold_rows,
        error=error,
        error_kind="no_response",
    )


__all__ = [
    "METRIC_NAMES",
    "Alignment",
    "CellResult",
    "TaskScore",
    "ascore_response",
    "score_response",
    "zero_score",
]
