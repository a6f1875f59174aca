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

    #: How many :meth:`send` calls may be under way at once, each on a thread of its own
    #: (:func:`offer_realtime.sending.send_batches`); 1 keeps every call on the caller's
    #: thread, one after the other. Raise it only on a backend whose ``send`` is
    #: thread-safe: events of one offer are never in two calls at once, but the order of
    #: different offers' events is no longer the order they were built in.
    concurrent_calls: int = 1

    def send(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order."""
        raise NotImplementedError(f"{type(self).__name__} must implement send()")

    def close(self) -> None:
        """Release connections; called when the backend is replaced."""
