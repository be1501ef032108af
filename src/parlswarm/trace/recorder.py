"""The trace of one run: an append-only list of events with listeners."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from parlswarm.files import write_whole
from parlswarm.trace.events import EVENT_ADAPTER, Event

Listener = Callable[[Event], None]


class Trace:
    """Collects the events of one run in order and forwards each to its listeners."""

    def __init__(self, run_id: str = "", events: Iterable[Event] = ()) -> None:
        self.run_id = run_id
        self.events: list[Event] = list(events)
        self._listeners: list[Listener] = []
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every later event; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def emit(self, event: Event) -> Event:
        event.t = self.now()
        event.run_id = self.run_id
        self.events.append(event)
        for listener in list(self._listeners):
            listener(event)
        return event

    def save_jsonl(self, path: str | Path) -> Path:
        return write_whole(path, "".join(event.model_dump_json() + "\n" for event in self.events))  # never half a trace

    @classmethod
    def load_jsonl(cls, path: str | Path) -> Trace:
        path = Path(path)
        events: list[Event] = []
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    events.append(EVENT_ADAPTER.validate_python(json.loads(line)))
                except ValueError as exc:
                    raise ValueError(f"{path}:{lineno}: not a parlswarm trace event: {exc}") from exc
        run_id = events[0].run_id if events else ""
        return cls(run_id=run_id, events=events)
