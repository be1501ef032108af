"""Durable runs: a run's events, model responses and tool results journaled to SQLite.

Every run started with a journal writes, as they happen, each trace event and the full
model response and tool result of every call to ``<runs>/<run_id>/journal.db`` (stdlib
``sqlite3``, WAL: each write is committed before the run goes on, so a SIGKILL loses at
most the call in flight). The run's configuration is stored with it (never a key).

Resuming replays the run rather than restoring a snapshot: the agent loop runs again from
the start and, through :class:`Replay` on the run context, gets every model response and
tool result that had been recorded instead of calling the model or the tool again; a
sub-agent that had finished is not started at all, its recorded result goes straight to
its parent. Agent ids are deterministic (name, launching step and call position), so the
same agent asks for the same records. Once the records run out, the run continues live.
Events that replay emits again are dropped by :class:`ResumedTrace`, so the trace of a
resumed run reads as one run.

Orchestration tools (``create_subagent``, ``assign_task``, ``spawn_swarm``) are not replayed
as tools but run again: their effects are the run's own state (definitions, ledger counts,
critical steps), and the sub-agents they start are replayed one by one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import sqlite3
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from parlswarm.budget import Ledger
from parlswarm.security import install_redaction, redact, refresh_secrets
from parlswarm.tools import ToolOutcome
from parlswarm.trace.events import (
    EVENT_ADAPTER,
    AgentFinished,
    AgentStarted,
    Event,
    ModelCalled,
    ModelRetried,
    RunFinished,
    ToolStarted,
)
from parlswarm.trace.metrics import TraceIndex
from parlswarm.trace.recorder import Trace
from parlswarm.types import AgentResult, Budgets, Content, ModelResponse, Usage

if TYPE_CHECKING:
    from parlswarm.agent import RunContext

log = logging.getLogger(__name__)

RUNS_ENV = "PARLSWARM_RUNS"
DEFAULT_RUNS = "runs"
JOURNAL_FILE = "journal.db"
LOCK_FILE = "lock"
SCHEMA_VERSION = 1
RERUN_TOOLS = frozenset({"create_subagent", "assign_task", "spawn_swarm"})
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CONTENT: TypeAdapter[Content] = TypeAdapter(Content)

Status = Literal["running", "finished", "failed", "interrupted"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session INTEGER PRIMARY KEY, pid INTEGER, started REAL, ended REAL, status TEXT NOT NULL, stats TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, session INTEGER NOT NULL, kind TEXT NOT NULL, agent_id TEXT, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_calls (
    seq INTEGER PRIMARY KEY, session INTEGER NOT NULL, agent_id TEXT NOT NULL, step INTEGER NOT NULL,
    response TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tool_calls (
    seq INTEGER PRIMARY KEY, session INTEGER NOT NULL, agent_id TEXT NOT NULL, step INTEGER NOT NULL,
    idx INTEGER NOT NULL, call_id TEXT, tool TEXT NOT NULL, ok INTEGER NOT NULL, error TEXT, content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_kind ON events (kind);
"""


class JournalError(ValueError):
    """A run that cannot be journaled or resumed: unknown id, busy, unreadable journal."""


class RunConfig(BaseModel):
    """What a run was started with, so that ``parlswarm resume`` can rebuild it. Never a secret."""

    model_config = ConfigDict(extra="forbid")

    task: str
    model: str
    subagent_model: str | None = None
    base_url: str | None = None
    mode: Literal["swarm", "single"] = "swarm"
    tools: str = "none"
    thinking: bool | None = None
    budgets: Budgets = Field(default_factory=Budgets)
    retries: int = Field(6, ge=0)  # per model call
    call_timeout: float = Field(600.0, gt=0)  # seconds per model-call attempt
    options: dict[str, Any] = Field(default_factory=dict)  # other options of the command that started it


def runs_dir(path: str | Path | None = None) -> Path:
    """The runs folder: ``path``, else ``$PARLSWARM_RUNS``, else ``./runs``."""
    return Path(path or os.environ.get(RUNS_ENV) or DEFAULT_RUNS)


def new_run_id() -> str:
    """A run id that sorts by start time: ``YYYYmmdd-HHMMSS-xxxxxx``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.fullmatch(run_id):
        raise JournalError(
            f"run id {run_id!r} is not valid: letters, digits, '.', '_' and '-' only, starting with a letter or digit"
        )
    return run_id


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    mode = "rwc" if create else "rw"
    try:
        conn = sqlite3.connect(f"file:{path}?mode={mode}", uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a commit survives the process being killed (not a power cut) without an fsync each.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=5000")
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open journal {path}: {exc}") from None
    return conn


def _try_lock(path: Path, *, create: bool) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None when another process holds it."""
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _is_locked(directory: Path) -> bool:
    path = directory / LOCK_FILE
    if not path.exists():
        return False
    try:
        fd = _try_lock(path, create=False)
    except OSError:
        return False
    if fd is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False


class Journal:
    """The journal of one run, open for writing by this process (it holds the run's lock)."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, lock_fd: int) -> None:
        self.directory = directory
        self.run_id = directory.name
        self.path = directory / JOURNAL_FILE
        self._conn = conn
        self._lock_fd: int | None = lock_fd
        self.session = 0
        self.failed: str | None = None  # why writing stopped, if it did
        self.closed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def create(cls, config: RunConfig, runs: str | Path | None = None, run_id: str | None = None) -> Journal:
        """A journal for a new run (``run_id`` generated when not given)."""
        refresh_secrets()
        run_id = check_run_id(run_id or new_run_id())
        folder = runs_dir(runs)
        directory = folder / run_id
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise JournalError(f"cannot create the run folder {directory}: {folder} is not a folder") from None
        except OSError as exc:
            raise JournalError(f"cannot create the run folder {directory}: {exc.strerror}") from None
        try:
            directory.mkdir()
        except FileExistsError:
            raise JournalError(f"a run {run_id!r} already exists in {folder}") from None
        except OSError as exc:
            raise JournalError(f"cannot create the run folder {directory}: {exc.strerror}") from None
        lock_fd = _try_lock(directory / LOCK_FILE, create=True)
        assert lock_fd is not None  # a folder made just now
        conn = _connect(directory / JOURNAL_FILE, create=True)
        # One transaction: a journal either has its config or does not exist as a journal.
        conn.execute("BEGIN")
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        meta = {
            "run_id": run_id,
            "created": repr(time.time()),
            "version": str(SCHEMA_VERSION),
            "config": redact(config.model_dump_json()),
        }
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        conn.execute("COMMIT")
        journal = cls(directory, conn, lock_fd)
        journal._begin_session()
        return journal

    @classmethod
    def open(cls, run_id: str, runs: str | Path | None = None) -> Journal:
        """The journal of an existing run, to resume it; refused while another process runs it."""
        refresh_secrets()
        directory = runs_dir(runs) / check_run_id(run_id)
        if not (directory / JOURNAL_FILE).exists():
            raise JournalError(f"no run {run_id!r} in {directory.parent} (see `parlswarm runs`)")
        lock_fd = _try_lock(directory / LOCK_FILE, create=True)
        if lock_fd is None:
            raise JournalError(f"run {run_id!r} is running in another process; wait for it or stop it first")
        conn = _connect(directory / JOURNAL_FILE, create=False)
        journal = cls(directory, conn, lock_fd)
        try:
            version = journal._meta("version")
        except JournalError:
            journal.close(None)
            raise
        if version != str(SCHEMA_VERSION):
            journal.close(None)
            raise JournalError(f"run {run_id!r}: journal version {version}, this parlswarm reads {SCHEMA_VERSION}")
        journal._begin_session()
        return journal

    def _meta(self, key: str) -> str:
        try:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path} is unreadable: {exc}") from None
        if row is None:
            raise JournalError(f"journal {self.path} has no {key}: it was never completely created")
        return str(row[0])

    def _begin_session(self) -> None:
        row = self._conn.execute("SELECT COALESCE(MAX(session), -1) FROM sessions").fetchone()
        self.session = int(row[0]) + 1
        self._conn.execute(
            "INSERT INTO sessions (session, pid, started, status) VALUES (?, ?, ?, 'running')",
            (self.session, os.getpid(), time.time()),
        )

    # -- reading ---------------------------------------------------------------------------

    def config(self) -> RunConfig:
        try:
            return RunConfig.model_validate_json(self._meta("config"))
        except ValidationError as exc:
            raise JournalError(f"run {self.run_id!r}: stored configuration is not valid: {exc}") from None

    def events(self, *, before_session: int | None = None) -> list[Event]:
        """The journaled events in order (of sessions before ``before_session`` when given)."""
        limit = self.session if before_session is None else before_session
        rows = self._conn.execute("SELECT body FROM events WHERE session < ? ORDER BY seq", (limit,))
        events = []
        for (body,) in rows:
            try:
                events.append(EVENT_ADAPTER.validate_json(body))
            except ValidationError as exc:
                raise JournalError(f"run {self.run_id!r}: journal holds an event this version cannot read: {exc}") from None
        return events

    def model_responses(self) -> dict[tuple[str, int], str]:
        """(agent id, step) → the model response JSON recorded in earlier sessions (first wins)."""
        out: dict[tuple[str, int], str] = {}
        rows = self._conn.execute(
            "SELECT agent_id, step, response FROM model_calls WHERE session < ? ORDER BY seq", (self.session,)
        )
        for agent_id, step, response in rows:
            out.setdefault((agent_id, step), response)
        return out

    def tool_results(self) -> dict[tuple[str, int, int], tuple[str, bool, str | None, str]]:
        """(agent id, step, call index) → (tool, ok, error kind, content JSON) from earlier sessions."""
        out: dict[tuple[str, int, int], tuple[str, bool, str | None, str]] = {}
        rows = self._conn.execute(
            "SELECT agent_id, step, idx, tool, ok, error, content FROM tool_calls WHERE session < ? ORDER BY seq",
            (self.session,),
        )
        for agent_id, step, idx, tool_name, ok, error, content in rows:
            out.setdefault((agent_id, step, idx), (tool_name, bool(ok), error, content))
        return out

    # -- writing ---------------------------------------------------------------------------

    def _write(self, sql: str, params: Sequence[Any]) -> None:
        if self.failed is not None or self.closed:
            return
        try:
            self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            # The run goes on; it just cannot be resumed past this point. Said once, loudly.
            self.failed = f"{type(exc).__name__}: {exc}"
            log.error("journal of run %s stopped: %s", self.run_id, self.failed)

    def write_event(self, event: Event) -> None:
        """Trace listener: journal one event."""
        self._write(
            "INSERT INTO events (session, kind, agent_id, body) VALUES (?, ?, ?, ?)",
            (self.session, event.kind, getattr(event, "agent_id", None), redact(event.model_dump_json())),
        )

    def record_model(self, agent_id: str, step: int, response: ModelResponse) -> None:
        self._write(
            "INSERT INTO model_calls (session, agent_id, step, response) VALUES (?, ?, ?, ?)",
            (self.session, agent_id, step, redact(response.model_dump_json())),
        )

    def record_tool(self, agent_id: str, step: int, index: int, call_id: str, tool: str, outcome: ToolOutcome) -> None:
        content = redact(_CONTENT.dump_json(outcome.content).decode())
        self._write(
            "INSERT INTO tool_calls (session, agent_id, step, idx, call_id, tool, ok, error, content)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.session, agent_id, step, index, call_id, tool, int(outcome.ok), outcome.error, content),
        )

    def start(self, *, resume: bool = False) -> tuple[Trace, Replay]:
        """The trace and replay for this session of the run; the trace journals every event.

        Pass both to :meth:`parlswarm.swarm.Swarm.run` (``trace=``, ``replay=``, ``run_id=``).
        """
        replay = Replay(self, resume=resume)
        trace: Trace = ResumedTrace(self.run_id, replay.history) if resume else Trace(self.run_id)
        install_redaction(trace)  # before any listener that writes or exports events
        trace.subscribe(self.write_event)
        return trace, replay

    def close(self, status: Status | None, stats: dict[str, Any] | None = None) -> None:
        """End this session with ``status`` and release the run's lock. Safe to call twice."""
        if self.closed:
            return
        if status is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute(
                    "UPDATE sessions SET ended = ?, status = ?, stats = ? WHERE session = ?",
                    (time.time(), status, json.dumps(stats or {}), self.session),
                )
        self.closed = True
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None


def _history(events: Iterable[Event]) -> list[Event]:
    """What a resumed run starts from: the events, less those of its ends that did not hold."""
    events = list(events)
    roots = {e.agent_id for e in events if isinstance(e, AgentStarted) and e.parent_id is None}
    kept = []
    for e in events:
        if isinstance(e, RunFinished):
            continue  # a failed run resumed: it has not finished after all
        if isinstance(e, AgentFinished) and (
            e.stop_reason == "cancelled" or (e.agent_id in roots and e.stop_reason == "error")
        ):
            continue  # cancelled agents go on; an orchestrator that failed tries again
        kept.append(e)
    return kept


def replay_key(event: Event) -> tuple[Any, ...] | None:
    """What makes an event the same as one journaled before: replay emits those again.

    None for events that are news each time they happen (retries).
    """
    if isinstance(event, ModelRetried):
        return None
    data = event.model_dump(exclude={"t", "run_id"})
    kind = data["kind"]
    if kind in ("run_started", "run_finished"):
        return (kind,)
    if kind in ("agent_started", "agent_finished"):
        return (kind, data["agent_id"])
    if kind == "model_call":
        return (kind, data["agent_id"], data["step"])
    if kind in ("tool_started", "tool_finished"):
        return (kind, data["agent_id"], data["step"], data["call_id"])
    if kind == "subagent_created":
        return (kind, data["agent_id"], data["step"], data["name"])
    for volatile in ("seconds", "started_at"):
        data.pop(volatile, None)
    return (kind, json.dumps(data, sort_keys=True, default=str))


class ResumedTrace(Trace):
    """The trace of a resumed run: the journaled events, then only what is new.

    Time goes on from the last journaled event (the time the run was down is left out).
    """

    def __init__(self, run_id: str, history: Sequence[Event]) -> None:
        super().__init__(run_id, history)
        self._offset = history[-1].t if history else 0.0
        self._pending = Counter(k for e in history if (k := replay_key(e)) is not None)

    def now(self) -> float:
        return super().now() + self._offset

    def emit(self, event: Event) -> Event:
        key = replay_key(event)
        if key is not None and self._pending[key] > 0:
            self._pending[key] -= 1
            return event  # emitted again by replay: it is in the trace already
        return super().emit(event)


@dataclass
class _Spent:
    tool_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    retries: int = 0


class Replay:
    """Records a run's calls into its journal and, when resuming, answers them from it.

    The agent loop asks :meth:`model_response` before each model call and
    :meth:`tool_result` before each tool call; the orchestrator asks
    :meth:`finished_subagent` before launching a sub-agent. None means: do it live (and
    :meth:`record_model`/:meth:`record_tool` then journal what came back).
    """

    def __init__(self, journal: Journal, *, resume: bool = False, rerun_tools: frozenset[str] = RERUN_TOOLS) -> None:
        self.journal = journal
        self.rerun_tools = rerun_tools
        self.history: list[Event] = _history(journal.events()) if resume else []
        self._responses = journal.model_responses() if resume else {}
        self._tools = journal.tool_results() if resume else {}
        self._index = TraceIndex(self.history)
        self._finished = {
            e.agent_id: e for e in self.history if isinstance(e, AgentFinished) and e.stop_reason != "cancelled"
        }
        self._children: dict[str, list[str]] = defaultdict(list)
        # What each agent spent, for charging skipped sub-agents to the ledger.
        self._spent: dict[str, _Spent] = defaultdict(_Spent)
        for e in self.history:
            if isinstance(e, AgentStarted) and e.parent_id is not None:
                self._children[e.parent_id].append(e.agent_id)
            elif isinstance(e, ToolStarted):
                self._spent[e.agent_id].tool_calls += 1
            elif isinstance(e, ModelCalled):
                spent = self._spent[e.agent_id]
                spent.usage = spent.usage + e.usage
                spent.cost += e.cost or 0.0
            elif isinstance(e, ModelRetried):
                self._spent[e.agent_id].retries += 1
        self.stats: Counter[str] = Counter()

    def attach(self, run: RunContext) -> None:
        """Join ``run``: its time budget goes on from where the interrupted run left it."""
        run.replay = self
        elapsed = self.history[-1].t if self.history else 0.0
        run.ledger.started -= elapsed
        if run.ledger.deadline is not None:
            run.ledger.deadline -= elapsed

    # -- model calls -----------------------------------------------------------------------

    def model_response(self, agent_id: str, step: int) -> ModelResponse | None:
        recorded = self._responses.get((agent_id, step))
        if recorded is None:
            return None
        self.stats["replayed_model_calls"] += 1
        return ModelResponse.model_validate_json(recorded)

    def record_model(self, agent_id: str, step: int, response: ModelResponse) -> None:
        self.stats["live_model_calls"] += 1
        self.journal.record_model(agent_id, step, response)

    # -- tool calls ------------------------------------------------------------------------

    def tool_result(self, agent_id: str, step: int, index: int, tool: str) -> ToolOutcome | None:
        if tool in self.rerun_tools:
            return None
        recorded = self._tools.get((agent_id, step, index))
        if recorded is None:
            return None
        name, ok, error, content = recorded
        if name != tool:  # the replayed turn differs from the journal: trust the live run
            log.warning("run %s: journaled call %s/%d/%d was %s, not %s", self.journal.run_id, agent_id, step, index, name, tool)
            return None
        self.stats["replayed_tool_calls"] += 1
        return ToolOutcome(ok=ok, content=_CONTENT.validate_json(content), error=error)

    def record_tool(self, agent_id: str, step: int, index: int, call_id: str, tool: str, outcome: ToolOutcome) -> None:
        if (agent_id, step, index) in self._tools:
            return  # an orchestration tool run again by replay: journaled already
        self.stats["live_tool_calls"] += 1
        self.journal.record_tool(agent_id, step, index, call_id, tool, outcome)

    # -- sub-agents ------------------------------------------------------------------------

    def _subtree(self, agent_id: str) -> list[str]:
        out, todo = [], [agent_id]
        while todo:
            current = todo.pop()
            out.append(current)
            todo.extend(self._children.get(current, ()))
        return out

    def finished_subagent(self, agent_id: str, ledger: Ledger) -> AgentResult | None:
        """The recorded result of ``agent_id`` if it had finished; its spending is charged to ``ledger``."""
        finished = self._finished.get(agent_id)
        if finished is None:
            return None
        subtree = self._subtree(agent_id)
        ledger.subagents += len(subtree) - 1  # the agent itself was counted by its launch
        for agent in subtree:
            spent = self._spent.get(agent)
            if spent is not None:
                ledger.tool_calls += spent.tool_calls
                ledger.usage = ledger.usage + spent.usage
                ledger.cost += spent.cost
                ledger.retries += spent.retries
        self.stats["skipped_subagents"] += 1
        started = self._index.agents.get(agent_id)
        return AgentResult(
            agent_id=agent_id,
            name=started.name if started else agent_id,
            content=finished.content,
            complete=finished.complete,
            steps=finished.steps,
            critical_steps=self._index.critical_steps(agent_id),
            tool_calls=finished.tool_calls,
            usage=finished.usage,
            stop_reason=finished.stop_reason,  # type: ignore[arg-type]
            error=finished.error,
        )


# -- listing runs -------------------------------------------------------------------------------


class RunInfo(BaseModel):
    """One line of ``parlswarm runs``."""

    run_id: str
    status: Status
    task: str
    created: float
    steps: int
    subagents: int
    sessions: int
    answer: str | None = None


def _status(conn: sqlite3.Connection, directory: Path) -> Status:
    if _is_locked(directory):
        return "running"
    last = conn.execute("SELECT session, status FROM sessions ORDER BY session DESC LIMIT 1").fetchone()
    if last is None:
        return "interrupted"
    session, status = last
    if status in ("finished", "failed", "interrupted"):
        return status  # type: ignore[no-any-return]
    # Never closed: the process died. Had it finished the run before dying?
    row = conn.execute(
        "SELECT body FROM events WHERE session = ? AND kind = 'run_finished' ORDER BY seq DESC LIMIT 1", (session,)
    ).fetchone()
    if row is None:
        return "interrupted"
    root = conn.execute(
        "SELECT body FROM events WHERE session = ? AND kind = 'agent_finished' AND agent_id = 'orchestrator'"
        " ORDER BY seq DESC LIMIT 1",
        (session,),
    ).fetchone()
    if root is not None and json.loads(root[0]).get("stop_reason") == "error":
        return "failed"
    return "finished"


def run_info(run_id: str, runs: str | Path | None = None) -> RunInfo:
    """Status and figures of one run, read without disturbing a process that runs it."""
    directory = runs_dir(runs) / check_run_id(run_id)
    path = directory / JOURNAL_FILE
    if not path.exists():
        raise JournalError(f"no run {run_id!r} in {directory.parent}")
    conn = _connect(path, create=False)
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        if "config" not in meta:
            raise JournalError(f"journal {path} was never completely created")
        config = json.loads(meta["config"])
        steps = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'model_call'").fetchone()[0]
        subagents = conn.execute(
            "SELECT COUNT(*) FROM events WHERE kind = 'agent_started' AND json_extract(body, '$.parent_id') IS NOT NULL"
        ).fetchone()[0]
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        status = _status(conn, directory)
        answer = None
        if status in ("finished", "failed"):
            row = conn.execute(
                "SELECT json_extract(body, '$.answer') FROM events WHERE kind = 'run_finished' ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            answer = row[0] if row else None
    except sqlite3.Error as exc:
        raise JournalError(f"journal {path} is unreadable: {exc}") from None
    finally:
        conn.close()
    return RunInfo(
        run_id=run_id,
        status=status,
        task=str(config.get("task", "")),
        created=float(meta.get("created", 0.0)),
        steps=steps,
        subagents=subagents,
        sessions=sessions,
        answer=answer,
    )


def list_runs(runs: str | Path | None = None) -> list[RunInfo]:
    """Every run in the runs folder, oldest first; unreadable journals are skipped with a warning."""
    folder = runs_dir(runs)
    if not folder.is_dir():
        return []
    infos = []
    for directory in sorted(folder.iterdir()):
        if not (directory / JOURNAL_FILE).exists() or not _RUN_ID.fullmatch(directory.name):
            continue
        try:
            infos.append(run_info(directory.name, folder))
        except JournalError as exc:
            log.warning("%s", exc)
    infos.sort(key=lambda i: (i.created, i.run_id))
    return infos


__all__ = [
    "Journal",
    "JournalError",
    "Replay",
    "ResumedTrace",
    "RunConfig",
    "RunInfo",
    "list_runs",
    "new_run_id",
    "replay_key",
    "run_info",
    "runs_dir",
]
