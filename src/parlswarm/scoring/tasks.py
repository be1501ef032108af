"""WideSearch task files and gold tables, read exactly as ByteDance-Seed publishes them.

A task file is JSON Lines: one object a line with ``instance_id``, ``query``, ``evaluation``
(a JSON *string* holding ``required``, ``unique_columns`` and ``eval_pipeline``) and
``language``; parlswarm's generator adds ``spec``. Gold tables are ``<instance_id>.csv`` in a
folder (``widesearch_gold/`` in the published set), header first, UTF-8 with or without BOM.

Bad lines never stop the others from loading: :func:`load_tasks_report` returns the tasks
that loaded and one :class:`InputError` per bad line, naming file, line and task.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, field_validator, model_validator

from parlswarm.scoring.metrics import METRICS, PREPROCESSORS

log = logging.getLogger(__name__)


def norm_column(name: str) -> str:
    """WideSearch's column-name normalisation: strip, lower-case, remove spaces."""
    return str(name).strip().lower().replace(" ", "")


class InputError(BaseModel):
    """One bad piece of input: where it is and what is wrong with it."""

    file: str
    line: int | None = None
    instance_id: str | None = None
    message: str

    def __str__(self) -> str:
        where = self.file + (f" line {self.line}" if self.line is not None else "")
        task = f" (task {self.instance_id})" if self.instance_id else ""
        return f"{where}{task}: {self.message}"


class ColumnPipeline(BaseModel):
    """How one column is compared: preprocessing steps, cell metrics and their criterion."""

    model_config = ConfigDict(extra="allow")

    preprocess: list[str] = Field(default_factory=list)
    metric: list[str] = Field(default_factory=list)
    # number_near: relative tolerance (0.1 = 10 %); llm_judge: grading instructions in words.
    criterion: float | str | None = None

    @field_validator("preprocess", "metric", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("preprocess")
    @classmethod
    def _known_preprocess(cls, value: list[str]) -> list[str]:
        unknown = [p for p in value if p not in PREPROCESSORS]
        if unknown:
            raise ValueError(f"unknown preprocess {unknown}; known: {sorted(PREPROCESSORS)}")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: list[str]) -> list[str]:
        unknown = [m for m in value if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric {unknown}; known: {sorted(METRICS)}")
        return value

    @model_validator(mode="after")
    def _criterion_fits(self) -> ColumnPipeline:
        if "number_near" in self.metric:
            try:
                tolerance = float(self.criterion)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise ValueError(f"number_near needs a numeric criterion (relative tolerance), not {self.criterion!r}") from None
            if tolerance < 0:
                raise ValueError(f"number_near criterion must be >= 0, not {tolerance}")
        return self

    @property
    def tolerance(self) -> float:
        return float(self.criterion)  # type: ignore[arg-type]


class Evaluation(BaseModel):
    """The ``evaluation`` object of a task: columns, key columns and per-column pipelines.

    Column names are normalised with :func:`norm_column` on load (a no-op on the published
    files, whose names are already normalised).
    """

    model_config = ConfigDict(extra="allow")

    required: list[str]
    unique_columns: list[str]
    eval_pipeline: dict[str, ColumnPipeline] = Field(default_factory=dict)

    @field_validator("required", "unique_columns")
    @classmethod
    def _norm_names(cls, value: list[str]) -> list[str]:
        return [norm_column(v) for v in value]

    @field_validator("eval_pipeline", mode="before")
    @classmethod
    def _norm_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {norm_column(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Evaluation:
        if not self.required:
            raise ValueError("required lists no column")
        if len(set(self.required)) != len(self.required):
            raise ValueError(f"required names a column twice: {self.required}")
        if not self.unique_columns:
            raise ValueError("unique_columns lists no key column")
        stray = [c for c in self.unique_columns if c not in self.required]
        if stray:
            raise ValueError(f"unique_columns {stray} are not among the required columns {self.required}")
        unpiped = [c for c in self.required if c not in self.unique_columns and c not in self.eval_pipeline]
        if unpiped:
            raise ValueError(f"eval_pipeline has no entry for column(s) {unpiped}")
        extra = [c for c in self.eval_pipeline if c not in self.required]
        if extra:
            # WideSearch would crash on these; they can name nothing in the table, so they are dropped.
            log.warning("eval_pipeline entries %s name no required column; ignored", extra)
            for c in extra:
                del self.eval_pipeline[c]
        return self

    def pipeline(self, column: str) -> ColumnPipeline:
        return self.eval_pipeline.get(column) or ColumnPipeline()

    def to_json_string(self) -> str:
        """The ``evaluation`` field as the published files write it: a JSON string."""
        return json.dumps(self.model_dump(mode="json", exclude_none=True), ensure_ascii=False)


class WideSearchTask(BaseModel):
    """One table-filling task."""

    model_config = ConfigDict(extra="ignore")

    instance_id: str
    query: str
    evaluation: Evaluation
    language: str = "en"
    spec: dict[str, Any] | None = None

    @field_validator("evaluation", mode="before")
    @classmethod
    def _parse_json_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"evaluation is not valid JSON: {exc}") from None
        return value

    @field_serializer("evaluation")
    def _as_json_string(self, evaluation: Evaluation) -> str:
        return evaluation.to_json_string()

    def to_jsonl_line(self) -> str:
        """One line of a task file, in the published format (``spec`` only when set)."""
        return self.model_dump_json(exclude_none=True)


class TaskFileReport(BaseModel):
    """What :func:`load_tasks_report` read: the good tasks and one error per bad line."""

    path: str
    tasks: list[WideSearchTask] = Field(default_factory=list)
    errors: list[InputError] = Field(default_factory=list)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def load_tasks_report(path: str | Path) -> TaskFileReport:
    """Read a task file; a bad line becomes an :class:`InputError`, the others still load.

    Raises ``FileNotFoundError`` when the file itself cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"task file not found: {path}") from None
    except IsADirectoryError:
        raise FileNotFoundError(f"task file is a folder, not a .jsonl file: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"task file {path} is not UTF-8 text: {exc}") from None
    report = TaskFileReport(path=str(path))
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        instance_id: str | None = None
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            report.errors.append(InputError(file=str(path), line=number, message=f"not valid JSON: {exc}"))
            continue
        if not isinstance(record, dict):
            report.errors.append(InputError(file=str(path), line=number, message="a task line must be a JSON object"))
            continue
        if isinstance(record.get("instance_id"), str):
            instance_id = record["instance_id"]
        try:
            task = WideSearchTask.model_validate(record)
        except ValidationError as exc:
            report.errors.append(InputError(file=str(path), line=number, instance_id=instance_id, message=_describe(exc)))
            continue
        if task.instance_id in seen:
            report.errors.append(
                InputError(
                    file=str(path),
                    line=number,
                    instance_id=task.instance_id,
                    message=f"instance_id already used on line {seen[task.instance_id]}; this line is ignored",
                )
            )
            continue
        seen[task.instance_id] = number
        report.tasks.append(task)
    return report


def load_tasks(path: str | Path) -> list[WideSearchTask]:
    """The good tasks of a task file; each bad line is logged as a warning.

    Use :func:`load_tasks_report` to get the errors as data.
    """
    report = load_tasks_report(path)
    for error in report.errors:
        log.warning("%s", error)
    return report.tasks


def write_tasks(path: str | Path, tasks: list[WideSearchTask]) -> None:
    """Write tasks as a task file in the published format."""
    Path(path).write_text("".join(t.to_jsonl_line() + "\n" for t in tasks), encoding="utf-8")


class GoldTable(BaseModel):
    """A gold table: normalised column names and rows of cell text, as in the CSV."""

    instance_id: str
    columns: list[str]
    rows: list[list[str]]
    path: str | None = None

    def column_values(self, column: str) -> list[str]:
        i = self.columns.index(column)
        return [row[i] for row in self.rows]


def gold_path(gold_dir: str | Path, instance_id: str) -> Path:
    return Path(gold_dir) / f"{instance_id}.csv"


def load_gold(gold_dir: str | Path, instance_id: str) -> GoldTable:
    """Read ``<gold_dir>/<instance_id>.csv``.

    Column names are normalised like WideSearch's loader (``norm_column``). A row shorter
    than the header is padded with empty cells; a longer one is an error (pandas, which
    WideSearch reads with, refuses it too).
    """
    path = gold_path(gold_dir, instance_id)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FileNotFoundError(f"gold table for task {instance_id} not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"gold table {path} (task {instance_id}) is not UTF-8 text: {exc}") from None
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    except csv.Error as exc:
        raise ValueError(f"gold table {path} (task {instance_id}) is not valid CSV: {exc}") from None
    if not records:
        raise ValueError(f"gold table {path} (task {instance_id}) is empty")
    header = [norm_column(c) for c in records[0]]
    rows = []
    for number, record in enumerate(records[1:], start=2):
        if len(record) > len(header):
            raise ValueError(
                f"gold table {path} (task {instance_id}) row {number} has {len(record)} cells, the header {len(header)}"
            )
        rows.append(record + [""] * (len(header) - len(record)))
    return GoldTable(instance_id=instance_id, columns=header, rows=rows, path=str(path))


__all__ = [
    "ColumnPipeline",
    "Evaluation",
    "GoldTable",
    "InputError",
    "TaskFileReport",
    "WideSearchTask",
    "gold_path",
    "load_gold",
    "load_tasks",
    "load_tasks_report",
    "norm_column",
    "write_tasks",
]
