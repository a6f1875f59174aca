"""Holding changes until their transaction commits, and not a moment longer.

Each recorded change registers two ``transaction.on_commit`` callbacks: one that adds the
change to its transaction's committed list, then a flush. Django's own rules decide what
committed: a rolled-back savepoint or transaction discards its callbacks. The flush of
the newest change still queued coalesces the committed changes and hands them to
delivery (:mod:`offer_realtime.delivery`); the others do nothing. In task mode with the
task store on the same database, each change also enqueues its task inside the
transaction (:mod:`offer_realtime.outbox`).

Nothing here holds a change strongly but those callbacks (and, once they ran, the
committed list): when Django discards them on a rollback, the changes are freed at once,
and so is the transaction's bookkeeping when nothing of it is left.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from offer_realtime import delivery
from offer_realtime.changes import Change, coalesce
from offer_realtime.outbox import Outbox

logger = logging.getLogger("offer_realtime")


class _Transaction:
    """The changes recorded in one transaction on one connection.

    Referenced strongly only by its changes' on_commit callbacks: when Django drops them
    all (rollback) or has run them (commit), it is freed.
    """

    __slots__ = ("__weakref__", "closed", "committed", "flushes", "key", "next_seq", "outbox", "using")

    def __init__(self, using: str) -> None:
        self.using = using
        #: Shared by the changes of one transaction (see changes.event_id).
        self.key = uuid.uuid4().hex
        #: Set once a callback of ours ran: the transaction committed (or a test ran its
        #: callbacks); a later change starts a new _Transaction.
        self.closed = False
        #: Committed changes, in order, filled by their on_commit callbacks.
        self.committed: list[Change] = []
        #: Flush callbacks still queued, oldest first; a dropped one removes itself.
        self.flushes: dict[int, weakref.ref[Any]] = {}
        self.next_seq = 0
        #: Task mode with the task store on this database: the tasks enqueued so far.
        self.outbox: Outbox | None = None

    def add_flush(self, flush: Callable[[], None]) -> int:
        """Remember a queued flush callback; it is forgotten when Django drops it."""
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        self.flushes[seq] = weakref.ref(flush, _forget_flush(weakref.ref(self), seq))
        return seq

    def is_newest_flush(self, seq: int) -> bool:
        """Whether flush ``seq`` is the last of ours still queued (it runs after every change)."""
        return next(reversed(self.flushes), seq) == seq


def _forget_flush(state_ref: weakref.ref[_Transaction], seq: int) -> Callable[[weakref.ref[Any]], None]:
    # A weak reference to the state, so the callback makes no reference cycle.
    def forget(_: weakref.ref[Any]) -> None:
        state = state_ref()
        if state is not None:
            state.flushes.pop(seq, None)

    return forget


# Connection wrappers are per thread (and per async context), so one current transaction
# per wrapper keeps concurrent requests apart without locks. Held weakly on both sides.
_current: weakref.WeakKeyDictionary[Any, weakref.ref[Any]] = weakref.WeakKeyDictionary()


def _transaction_for(connection: Any, using: str) -> _Transaction:
    ref = _current.get(connection)
    state = ref() if ref is not None else None
    if state is None or state.closed:
        state = _Transaction(using)
        _current[connection] = weakref.ref(state)
    return state


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
        delivery.deliver([change], using)
        return

    state = _transaction_for(connection, using)
    change.transaction_key = state.key

    def offer_change_committed() -> None:
        state.closed = True
        if not change.committed:  # once, even if a test helper runs the callbacks again
            change.mark_committed()
            state.committed.append(change)

    def flush_offer_changes() -> None:
        state.closed = True
        if state.is_newest_flush(seq):
            _flush(state)

    seq = state.add_flush(flush_offer_changes)
    # Both under the current savepoints: rolling one back drops this change and its flush.
    transaction.on_commit(offer_change_committed, using=using)
    transaction.on_commit(flush_offer_changes, using=using, robust=True)
    strategy = delivery.mode()
    if strategy is not None and strategy.in_transaction(using):
        if state.outbox is None:
            state.outbox = Outbox()
        state.outbox.record(change, using)


def _flush(state: _Transaction) -> None:
    committed, state.committed = state.committed, []
    if not committed:
        return
    changes = coalesce(committed)
    if state.outbox is None:
        delivery.deliver(changes, state.using)
        return
    # Outbox: an offer whose last task committed is covered; one whose insert failed falls
    # back to the background sender; one with no task (none was needed) is delivered as usual.
    failed, rest = state.outbox.uncovered(changes)
    if failed:
        delivery.fall_back_to_background(failed, state.using, "the outbox insert failed")
    if rest:
        delivery.deliver(rest, state.using)
