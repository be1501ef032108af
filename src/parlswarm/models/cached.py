"""A memo of model replies, for frozen deterministic models (PARL's sub-agents).

A frozen sub-agent decoding greedily gives the same reply to the same conversation every
time, so PARL rollouts need not decode it again. The cache key is the conversation, the
tools on offer and a ``namespace`` naming what else the reply depends on (checkpoint,
world seed). Only per-call replies are cached: agents still take every step, call every
tool and appear in the trace as usual, so critical steps stay exact.

Do not wrap a model that samples: its replies are not a function of the prompt.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from parlswarm.models.base import Model, call_model
from parlswarm.types import Message, ModelResponse, ToolChoice, ToolSpec


class CachedModel:
    """Wraps ``inner``; replies are remembered in memory and, with ``path``, in SQLite."""

    def __init__(self, inner: Model, namespace: str, path: str | Path | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.namespace = namespace
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
            self._db.commit()

    def key(self, messages: Sequence[Message], tools: Sequence[ToolSpec], tool_choice: ToolChoice = "auto") -> str:
        parts = [self.namespace, [m.model_dump(mode="json") for m in messages], [t.model_dump() for t in tools]]
        if tool_choice != "auto":  # keys of ordinary turns stay those of caches written before it existed
            parts.append(tool_choice)
        payload = json.dumps(
            parts,
            sort_keys=True,
            ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def _lookup(self, key: str) -> str | None:
        if key in self._memory:
            return self._memory[key]
        if self._db is not None:
            with self._lock:
                row = self._db.execute("SELECT response FROM replies WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self._memory[key] = row[0]
                return str(row[0])
        return None

    def _store(self, key: str, response: ModelResponse) -> None:
        text = response.model_dump_json()
        self._memory[key] = text
        if self._db is not None:
            with self._lock:
                self._db.execute("INSERT OR REPLACE INTO replies VALUES (?, ?)", (key, text))
                self._db.commit()

    async def complete(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], *, tool_choice: ToolChoice = "auto"
    ) -> ModelResponse:
        key = self.key(messages, tools, tool_choice)
        cached = self._lookup(key)
        if cached is not None:
            self.hits += 1
            return ModelResponse.model_validate_json(cached)
        self.misses += 1
        response = await call_model(self.inner, messages, tools, tool_choice)
        self._store(key, response)
        return response

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
