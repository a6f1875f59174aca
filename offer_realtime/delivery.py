"""Delivery: how committed changes leave the process, chosen in one place.

:func:`mode` picks the strategy for the changes at hand, from ``DELIVERY`` (and the
testing helpers' backend override, which always delivers inline):

- :class:`Inline`: build and send in the committing thread (:mod:`offer_realtime.building`,
  :mod:`offer_realtime.sending`).
- :class:`Background`: hand the changes to this process's sender thread
  (:mod:`offer_realtime.sender`), which builds and sends them.
- :class:`Task`: enqueue them for the host's task worker (:mod:`offer_realtime.tasks`),
  inside the transaction when the task store is the offer's database (the outbox,
  :mod:`offer_realtime.outbox`), on commit otherwise.

When the task framework or backend fails, the changes fall back to the background
sender (:func:`fall_back_to_background`). Nothing here raises to the caller: the write
that caused the changes has already succeeded.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import Any

from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started

from offer_realtime import backends, building, metrics, sender, sending
from offer_realtime.changes import Change
from offer_realtime.settings import get_settings

logger = logging.getLogger("offer_realtime")


class Inline:
    """``inline``: read, build and send in the committing thread, holding the offers' locks."""

    name = "inline"

    def in_transaction(self, using: str) -> bool:
        """Whether changes are handed over inside the transaction (the outbox): never."""
        return False

    def deliver(self, changes: Sequence[Change], using: str) -> None:
        """Build and send ``changes``' events now; never raise."""
        # A testing override applies to what is delivered while it is in force, and only
        # that; it reaches no Pusher, so there is nothing to order across processes.
        # Otherwise the offers' locks are held while reading, building and sending: that
        # is the request's thread (after its commit), which may wait there for another
        # process's delivery of the same offer, at most LOCK_WAIT_TIMEOUTS * TIMEOUT.
        backend = backends.get_backend() if backends.overridden() else None
        with building.offers_in_order(changes, using) if backend is None else contextlib.nullcontext():
            try:
                batch = building.build_events(changes, using)
            except Exception:  # e.g. the offer query failed after commit
                logger.exception("Could not build offer events for %d change(s).", len(changes))
                return
            sending.send_batch(batch, backend=backend)


class Background:
    """``background``: queue the changes for this process's sender thread."""

    name = "background"

    def in_transaction(self, using: str) -> bool:
        """Whether changes are handed over inside the transaction (the outbox): never."""
        return False

    def deliver(self, changes: Sequence[Change], using: str) -> None:
        """Queue ``changes``; the sender thread builds and sends their events. Inside a
        WSGI request they are queued once its response has gone (:class:`AfterResponse`)."""
        if not AfterResponse.hold(changes, using):
            sender.get_sender().submit_changes(changes, using)


class AfterResponse:
    """Holds a WSGI request's committed changes until its response has been sent.

    The sender thread starts reading and serializing as soon as it has a change; during
    the request it would compete for the GIL with the response still being rendered,
    which showed as a third of a millisecond on a 6 ms POST. Django sends
    ``request_finished`` when the server closes the response, i.e. after its last byte,
    in the thread that handled it. Only WSGI handlers: under ASGI (and Django's test
    client) the changes are queued at once, as they are outside requests.
    """

    _local = threading.local()

    @classmethod
    def hold(cls, changes: Sequence[Change], using: str) -> bool:
        """Keep ``changes`` for the end of this thread's request; False outside one."""
        held: list[tuple[list[Change], str]] | None = getattr(cls._local, "held", None)
        if held is None:
            return False
        held.append((list(changes), using))
        return True

    @classmethod
    def started(cls, sender: type[Any], **kwargs: Any) -> None:
        """``request_started``: hold what this request commits (WSGI only)."""
        cls.release()  # a request whose close() never came: its changes go now
        if isinstance(sender, type) and issubclass(sender, WSGIHandler):
            cls._local.held = []

    @classmethod
    def release(cls, **kwargs: Any) -> None:
        """``request_finished``: queue what the request held, in commit order."""
        held = getattr(cls._local, "held", None)
        cls._local.held = None
        for changes, using in held or ():
            try:
                sender.get_sender().submit_changes(changes, using)
            except Exception:  # a failure here would surface in the server's close()
                logger.exception("Could not queue the events of %d offer change(s) after the response.", len(changes))


request_started.connect(AfterResponse.started, dispatch_uid="offer_realtime.after_response.started")
request_finished.connect(AfterResponse.release, dispatch_uid="offer_realtime.after_response.release")


class Task:
    """``task``: enqueue the changes for the host's task worker."""

    name = "task"

    def in_transaction(self, using: str) -> bool:
        """Whether the task store is ``using``'s database: then a task is enqueued inside
        the transaction (the outbox) and nothing is left to do on commit."""
        try:
            from offer_realtime import tasks
        except ImportError:  # no task framework: reported by checks (E010); delivered in the background
            return False
        return tasks.is_outbox(using)

    def deliver(self, changes: Sequence[Change], using: str) -> None:
        """One task for the transaction's coalesced changes; the background sender if that fails."""
        try:
            # Imported here: django.tasks (or the django-tasks backport) may be missing.
            from offer_realtime import tasks
        except ImportError:
            fall_back_to_background(changes, using, "Django's task framework is not installed")
            return
        if not tasks.enqueue_changes(changes, using):
            fall_back_to_background(changes, using, "the task backend failed")


Strategy = Inline | Background | Task

_STRATEGIES: dict[str, Strategy] = {strategy.name: strategy for strategy in (Inline(), Background(), Task())}


def mode() -> Strategy | None:
    """The delivery strategy in force: ``DELIVERY``'s, inline under a testing backend
    override, None when ``ENABLED`` is off. The one place the mode is decided."""
    conf = get_settings()
    if not conf.enabled:
        return None
    return _STRATEGIES["inline" if backends.overridden() else conf.delivery]


def deliver(changes: Sequence[Change], using: str) -> None:
    """After commit: hand committed changes to the delivery mode in force; never raise."""
    strategy = mode()
    if strategy is not None:
        strategy.deliver(changes, using)


def fall_back_to_background(changes: Sequence[Change], using: str, reason: str) -> None:
    """Task mode could not take committed ``changes``: send them from this process's
    background sender instead (an ERROR line; counted as ``task_fallback``)."""
    if not changes:
        return
    metrics.increment("task_fallback", len(changes))
    logger.error(
        "Task delivery failed (%s): %d committed change(s) of offer(s) %s go to the background sender "
        "of this process instead (lost if it dies before sending them).",
        reason,
        len(changes),
        ", ".join(str(c.offer_id) for c in changes[:10]),
        extra={"offer_ids": [c.offer_id for c in changes]},
    )
    _STRATEGIES["background"].deliver(changes, using)
