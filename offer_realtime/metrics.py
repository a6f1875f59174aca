"""Counters of what happened to events in this process, readable from Python.

``offer_realtime.metrics.snapshot()`` returns e.g. ``{"sent": 120, "failed": 3,
"retried": 2, "given_up": 1, "dropped_queue_full": 0, "dropped_oversize": 0, "enqueued": 0,
"task_fallback": 0}``. ``task_fallback`` counts committed changes that task mode could not
enqueue (outbox insert or task backend failed), sent by the background sender instead;
``lock_timeouts`` deliveries that went on without an offer's cross-process lock (``ordering``).
Counts are per process (each gunicorn worker has its own) and since start or reset.
"""

from __future__ import annotations

import threading
from collections import Counter

COUNTERS = (
    "sent",
    "failed",
    "retried",
    "given_up",
    "dropped_queue_full",
    "dropped_oversize",
    "enqueued",
    "unsent_at_exit",  # background: events (or changes) still held when the exit flush's bound ran out
    "lock_timeouts",  # deliveries that went on without an offer's cross-process lock (ordering.py)
    "task_fallback",  # task: committed changes the outbox or task backend could not take, sent in the background
)

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def increment(name: str, amount: int = 1) -> None:
    """Add ``amount`` to counter ``name``."""
    with _lock:
        _counts[name] += amount


def snapshot() -> dict[str, int]:
    """Every counter's current value."""
    with _lock:
        return {name: _counts[name] for name in COUNTERS}


def reset() -> None:
    """Set every counter back to zero (tests, or after scraping)."""
    with _lock:
        _counts.clear()
