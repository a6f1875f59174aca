"""A backend that keeps events in a list, like Django's locmem email backend."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import Event

#: Events sent by every MemoryBackend that has no outbox of its own, oldest first.
outbox: list[Event] = []


class MemoryBackend(BaseBackend):
    """Appends every sent event to a list instead of sending it.

    With no argument it uses the module-level :data:`outbox`, so code that configured
    ``"BACKEND": "memory"`` can read ``offer_realtime.backends.memory.outbox``.
    """

    def __init__(self, outbox: list[Event] | None = None) -> None:
        self.outbox = globals()["outbox"] if outbox is None else outbox
        self._lock = threading.Lock()

    def send(self, events: Sequence[Event]) -> None:
        """Record ``events``."""
        with self._lock:
            self.outbox.extend(events)
