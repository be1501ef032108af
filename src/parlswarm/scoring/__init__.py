"""WideSearch-compatible scoring: task files, gold tables, table extraction, cell metrics,
Row-F1 / Item-F1 / success, and Avg@N / Max@N / Pass@N over trials.

Faithful to ByteDance-Seed/WideSearch ``src/evaluation`` for everything but its LLM judge,
which any parlswarm :class:`~parlswarm.models.Model` can play; without one, what needs it is
reported, never guessed. docs/scoring.md describes the pipeline and every difference.
"""

from parlswarm.scoring.aggregate import MetricAggregate, Summary, TaskAggregate, summarize
from parlswarm.scoring.evaluate import EvalReport, aevaluate, aevaluate_files, evaluate_files
from parlswarm.scoring.judge import Judge, JudgeError
from parlswarm.scoring.metrics import METRICS, PREPROCESSORS
from parlswarm.scoring.responses import Response, ResponseSet, load_responses
from parlswarm.scoring.score import (
    METRIC_NAMES,
    Alignment,
    CellResult,
    TaskScore,
    ascore_response,
    score_response,
    zero_score,
)
from parlswarm.scoring.table import ResponseTable, TableError, extract_table, render_markdown_table
from parlswarm.scoring.tasks import (
    ColumnPipeline,
    Evaluation,
    GoldTable,
    InputError,
    TaskFileReport,
    WideSearchTask,
    gold_path,
    load_gold,
    load_tasks,
    load_tasks_report,
    norm_column,
    write_tasks,
)

__all__ = [
    "METRICS",
    "METRIC_NAMES",
    "PREPROCESSORS",
    "Alignment",
    "CellResult",
    "ColumnPipeline",
    "EvalReport",
    "Evaluation",
    "GoldTable",
    "InputError",
    "Judge",
    "JudgeError",
    "MetricAggregate",
    "Response",
    "ResponseSet",
    "ResponseTable",
    "Summary",
    "TableError",
    "TaskAggregate",
    "TaskFileReport",
    "TaskScore",
    "WideSearchTask",
    "aevaluate",
    "aevaluate_files",
    "ascore_response",
    "evaluate_files",
    "extract_table",
    "gold_path",
    "load_gold",
    "load_responses",
    "load_tasks",
    "load_tasks_report",
    "norm_column",
    "render_markdown_table",
    "score_response",
    "summarize",
    "write_tasks",
    "zero_score",
]
