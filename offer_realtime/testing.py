"""Test helpers for host projects: assert on broadcasts the way you assert on ``mail.outbox``.

::

    from offer_realtime.testing import capture_broadcasts

    def test_rename(offer):
        with capture_broadcasts() as sent:
            offer.title = "Spa weekend"
            offer.save()
        assert [(e.name, e.channel) for e in sent] == [("offer-updated", "hotel-killarney")]

Inside Django's ``TestCase`` and pytest-django's ``db`` fixture every test runs in a
transaction that is rolled back, so ``on_commit`` callbacks never run on their own.
The helpers run the callbacks queued in the block as if it had committed, using
Django's ``TestCase.captureOnCommitCallbacks(execute=True)``: on leaving the block, and
whenever the captured events are read. With real commits (``TransactionTestCase``,
``live_server``) the events are captured as they are sent, from any thread.

Only the block's own changes are captured: they are delivered inline while the capture is
in force, and only those deliveries use its backend. Events of writes made before the
block (queued for the background sender, being retried, or in a task that a worker runs
inside the block) go to the configured backend, as they would have.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, overload

from django.db import connections
from django.test import TestCase

from offer_realtime.backends import use_backend
from offer_realtime.backends.memory import MemoryBackend
from offer_realtime.events import Event

__all__ = ["BroadcastCapture", "capture_broadcasts"]


class BroadcastCapture(Sequence[Event]):
    """The events sent while capturing, oldest first; each has ``.name``, ``.channel``, ``.data``.

    Reading it (indexing, ``len``, iterating, comparing) first runs the ``on_commit``
    callbacks queued so far, so a test sees what a commit would have sent.
    """

    def __init__(self, aliases: Sequence[str] | None = None) -> None:
        self._aliases = list(aliases) if aliases is not None else list(connections)
        self._sent: list[Event] = []
        self.backend = MemoryBackend(self._sent)
        self._callbacks: contextlib.ExitStack | None = None

    def _capture_callbacks(self) -> None:
        stack = contextlib.ExitStack()
        for alias in self._aliases:
            stack.enter_context(TestCase.captureOnCommitCallbacks(using=alias, execute=True))
        self._callbacks = stack

    def run_on_commit(self) -> None:
        """Run the on_commit callbacks queued since the last run, as a commit would."""
        if self._callbacks is not None:
            self._callbacks.close()
            self._capture_callbacks()

    def clear(self) -> None:
        """Run pending callbacks, then forget every event captured so far."""
        self.run_on_commit()
        self._sent.clear()

    @property
    def names(self) -> list[str]:
        """Event names, in order."""
        return [event.name for event in self]

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: Any) -> Any:
        self.run_on_commit()
        return self._sent[index]

    def __len__(self) -> int:
        self.run_on_commit()
        return len(self._sent)

    def __iter__(self) -> Iterator[Event]:
        self.run_on_commit()
        return iter(list(self._sent))

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    def __repr__(self) -> str:
        return f"<BroadcastCapture {self._sent!r}>"

    def __enter__(self) -> BroadcastCapture:
        self._capture_callbacks()
        self._backend_context = use_backend(self.backend)
        self._backend_context.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        try:
            if self._callbacks is not None:
                # Like captureOnCommitCallbacks, also when the block raised: work that an
                # atomic block rolled back has no callbacks left, the rest would commit.
                stack, self._callbacks = self._callbacks, None
                stack.close()
        finally:
            self._backend_context.__exit__(*exc_info)


def capture_broadcasts(*, using: Sequence[str] | None = None) -> BroadcastCapture:
    """Swap in an in-memory backend and capture the events sent in the block.

    Use as ``with capture_broadcasts() as sent:``. On leaving the block the ``on_commit``
    callbacks queued inside it run (as with ``captureOnCommitCallbacks(execute=True)``),
    so it works inside ``TestCase`` and pytest-django ``db`` tests. ``using`` limits the
    database aliases whose callbacks are run (default: all).
    """
    return BroadcastCapture(using)
