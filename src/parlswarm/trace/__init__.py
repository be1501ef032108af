"""Run traces: typed events, the recorder, and the figures computed from them."""

from parlswarm.trace.events import EVENT_ADAPTER, Event
from parlswarm.trace.metrics import TraceIndex, summarize
from parlswarm.trace.recorder import Trace

__all__ = ["EVENT_ADAPTER", "Event", "Trace", "TraceIndex", "summarize"]
