"""Holding changes until their transaction commits.

Each recorded change registers its own ``transaction.on_commit`` callback, so Django's
own rules decide whether it committed: a rolled-back savepoint or transaction discards
the callback and the change is never sent. One flush, queued after the last change of
the transaction, then coalesces the committed changes and hands them to delivery.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from offer_realtime.changes import Change, coalesce

logger = logging.getLogger("offer_realtime")


@dataclass
class _Pending:
    """Changes recorded on one database connection since its last flush."""

    changes: list[Change] = field(default_factory=list)
    #: Shared by the changes of one transaction (see changes.event_id).
    transaction_key: str = ""
    #: Outbox only: per offer, the coalesced summaries enqueued, each with the change
    #: that enqueued it (a savepoint rollback removes that task along with the change).
    enqueued: dict[Any, list[tuple[tuple, Change]]] = field(default_factory=dict)
    #: Which changes' on_commit markers are still queued, rebuilt only when a savepoint
    #: rollback replaced connection.run_on_commit (see _live_changes).
    hooks: list | None = None
    scanned: int = 0
    live: set[int] = field(default_factory=set)
    #: Bumped for every recorded change; only the newest flush callback does the work.
    generation: int = 0


# Connection wrappers are per thread (and per async context), so one buffer per
# wrapper keeps concurrent requests apart without locks.
_pending: weakref.WeakKeyDictionary[Any, _Pending] = weakref.WeakKeyDictionary()


def record(change: Change, using: str = DEFAULT_DB_ALIAS) -> None:
    """Queue ``change`` to be sent once the current transaction on ``using`` commits.

    Outside a transaction (autocommit) the change is sent at once.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        if not connection.get_autocommit():
            logger.error(
                "Offer %s changed under manual transaction management; on_commit is not "
                "available there, so no event was sent.",
                change.offer_id,
            )
            return
        change.mark_committed()
        _deliver([change], using)
        return

    pending = _pending.setdefault(connection, _Pending())
    if not pending.changes:
        pending.transaction_key = uuid.uuid4().hex
        pending.enqueued.clear()
    change.transaction_key = pending.transaction_key
    pending.changes.append(change)
    transaction.on_commit(change.mark_committed, using=using)
    pending.generation += 1
    generation = pending.generation
    # The flush must run after every change's callback and must survive the rollback
    # of a savepoint that holds only some changes. transaction.on_commit() would tie
    # it to the current savepoints, so it is queued with no savepoint ids, the same
    # (sids, func, robust) entry Django's on_commit() appends (Django 5.2 to 6.1).
    connection.run_on_commit.append((set(), lambda: _flush(connection, generation, using), True))
    if _outbox_active(using):
        _enqueue_in_outbox(connection, pending, change, using)


def _outbox_active(using: str) -> bool:
    from offer_realtime import backends
    from offer_realtime.settings import get_settings

    if get_settings().delivery != "task" or backends.overridden():
        return False
    from offer_realtime import tasks

    return tasks.is_outbox(using)


def _live_changes(connection: Any, pending: _Pending) -> set[int]:
    # A savepoint rollback rebuilds connection.run_on_commit without the rolled-back
    # callbacks; a new list object is the sign to rescan. Otherwise only new entries
    # are scanned, so a long transaction stays linear.
    hooks = connection.run_on_commit
    if pending.hooks is not hooks:
        pending.hooks, pending.scanned, pending.live = hooks, 0, set()
    for _, func, _ in hooks[pending.scanned :]:
        owner = getattr(func, "__self__", None)
        if isinstance(owner, Change):
            pending.live.add(id(owner))
    pending.scanned = len(hooks)
    return pending.live


def _enqueue_in_outbox(connection: Any, pending: _Pending, change: Change, using: str) -> None:
    from offer_realtime import tasks

    live = _live_changes(connection, pending)
    history = [c for c in pending.changes if c.offer_id == change.offer_id and id(c) in live]
    coalesced = coalesce(history)
    summary = tuple(c.signature() for c in coalesced)
    enqueued = pending.enqueued.setdefault(change.offer_id, [])
    while enqueued and id(enqueued[-1][1]) not in live:
        enqueued.pop()  # its task was rolled back with its savepoint
    if enqueued and enqueued[-1][0] == summary:
        return  # the task already enqueued gives these events (it reads the committed row)
    if coalesced:
        tasks.enqueue_in_transaction(coalesced, using)
    enqueued.append((summary, change))


def _flush(connection: Any, generation: int, using: str) -> None:
    pending = _pending.get(connection)
    if pending is None or pending.generation != generation:
        return  # a later change queued a later flush
    committed = [change for change in pending.changes if change.committed]
    # Changes whose callbacks never ran belong to rolled-back work: drop them too.
    pending.changes = []
    if committed:
        _deliver(coalesce(committed), using, enqueued=bool(pending.enqueued))


def _deliver(changes: list[Change], using: str, enqueued: bool = False) -> None:
    from offer_realtime import delivery

    delivery.deliver(changes, using=using, enqueued=enqueued)
