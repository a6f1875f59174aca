"""The interface every backend implements."""

from __future__ import annotations

from collections.abc import Sequence

from offer_realtime.events import Event


class BaseBackend:
    """Sends events somewhere.

    Subclasses implement :meth:`send`. It may raise: the caller logs the failure
    with each event's name, channel and offer id, and the write that caused the
    events is never affected.
    """

    def send(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order."""
        raise NotImplementedError(f"{type(self).__name__} must implement send()")

    def close(self) -> None:
        """Release connections; called when the backend is replaced."""
