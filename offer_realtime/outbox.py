"""The outbox: tasks enqueued inside the transaction, when the task store is its database.

Used in ``task`` mode when the task backend stores its tasks in the offer's own database
(``django-tasks-db`` routed to the same alias): a task row commits or rolls back with the
offer change, so no committed change is lost between commit and enqueue. A task is
enqueued when a change alters what the offer's coalesced events will be, carrying those
coalesced changes (each insert in its own savepoint, :func:`offer_realtime.tasks.enqueue_in_transaction`).

The bookkeeping follows Django's own savepoint rules without reading its internals: a
change is held weakly here and strongly only by its ``on_commit`` callbacks, which Django
drops with a rolled-back savepoint; the task enqueued under that savepoint is gone with it,
so an entry whose change is gone no longer counts.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from offer_realtime.changes import Change, coalesce


@dataclass
class _Enqueued:
    """A task enqueued inside the transaction for one offer."""

    #: What the offer's coalesced events were when it was enqueued.
    summary: tuple[Any, ...]
    #: The change that enqueued it: alive exactly as long as the task row (same savepoints).
    change: weakref.ref[Change]
    #: False when the insert failed: the offer falls back to background delivery.
    ok: bool


class Outbox:
    """One transaction's outbox: per offer, its changes (weakly) and the tasks enqueued for it."""

    __slots__ = ("enqueued", "history")

    def __init__(self) -> None:
        self.history: dict[Any, list[weakref.ref[Change]]] = {}
        self.enqueued: dict[Any, list[_Enqueued]] = {}

    def record(self, change: Change, using: str) -> None:
        """Enqueue a task for ``change``'s offer unless the last one still gives its events."""
        # Imported here: only task mode gets here, and django.tasks may be missing otherwise.
        from offer_realtime import tasks

        refs = self.history.setdefault(change.offer_id, [])
        refs.append(weakref.ref(change))
        refs[:] = [ref for ref in refs if ref() is not None]  # rolled back with their savepoints
        coalesced = coalesce([c for ref in refs if (c := ref()) is not None])
        summary = tuple(c.signature() for c in coalesced)
        enqueued = self.enqueued.setdefault(change.offer_id, [])
        while enqueued and enqueued[-1].change() is None:
            enqueued.pop()  # its task was rolled back with its savepoint
        if enqueued and enqueued[-1].summary == summary and enqueued[-1].ok:
            return  # the task already enqueued gives these events (it reads the committed row)
        ok = tasks.enqueue_in_transaction(coalesced, using) if coalesced else True
        enqueued.append(_Enqueued(summary, weakref.ref(change), ok))

    def uncovered(self, changes: Sequence[Change]) -> tuple[list[Change], list[Change]]:
        """Of the committed, coalesced ``changes``: those whose last task insert failed (to
        fall back to the background sender), and those with no task (none was needed; to
        deliver as usual). The rest are covered by a committed task."""
        failed: list[Change] = []
        rest: list[Change] = []
        for change in changes:
            entries = [e for e in self.enqueued.get(change.offer_id, ()) if e.change() is not None]
            if not entries:
                rest.append(change)
            elif not entries[-1].ok:
                failed.append(change)
        return failed, rest
