"""The ``task`` delivery mode: durable delivery on Django's task framework.

``django.tasks`` on Django 6.x, the ``django-tasks`` backport on Django 5.2; the host's
configured task backend (``OFFER_REALTIME["TASK_BACKEND"]``) does the work.

When is a task enqueued?

- **Inside the transaction** when the task store is the offer's own database
  (``django-tasks-db`` routed to the same alias): the task row commits or rolls back
  with the offer change — a transactional outbox with no table of our own. A task is
  enqueued when a change alters what the offer's coalesced events will be, carrying
  those coalesced changes; tasks of one transaction give the same events the same
  ``event_id``, so a client drops the repeats (see ``docs``/README).
- **On commit** for every other backend (RQ, ImmediateBackend, ...): one task per
  transaction with its coalesced changes, so a worker never runs before the data it
  reads is committed. A crash between commit and enqueue loses those events.

If the outbox insert or the task backend fails, the write still succeeds and the
committed changes fall back to the background sender of the writing process
(``delivery.fall_back_to_background``: an ERROR line, counted as ``task_fallback``).

The worker reads the committed offers, builds the events and sends them, holding the
offers' cross-process locks from the read to the end of the send
(:mod:`offer_realtime.ordering`). A transient failure is retried with capped exponential
backoff, reading the rows again: by enqueueing a follow-up task with ``run_after`` where
the backend supports deferring, otherwise by waiting in the worker.
After ``RETRY_ATTEMPTS`` the events are given up with an ERROR log line.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Sequence
from typing import Any

from django.db import router, transaction
from django.utils import timezone

try:  # Django >= 6.0
    from django.tasks import task, task_backends
except ImportError:  # Django 5.2 with the django-tasks backport
    from django_tasks import task, task_backends  # type: ignore[no-redef,assignment]

from offer_realtime import building, metrics, sending
from offer_realtime.changes import Change
from offer_realtime.events import Event
from offer_realtime.retry import run_attempts
from offer_realtime.settings import get_settings

logger = logging.getLogger("offer_realtime")


# -- JSON forms (task arguments must be JSON; a change's is Change.to_json) ----------


def event_to_json(event: Event) -> dict[str, Any]:
    """A built event as task arguments."""
    return {
        "name": event.name,
        "channel": event.channel,
        "data": event.data,
        "offer_id": event.offer_id,
        "socket_id": event.socket_id,
        "group": event.group,
    }


def event_from_json(data: dict[str, Any]) -> Event:
    """The inverse of :func:`event_to_json`."""
    return Event(**data)


# -- The tasks (run by the host's task worker) ---------------------------------------


@task()
def deliver_offer_changes(
    changes: list[dict[str, Any]], using: str, attempt: int = 1, event_ids: list[str] | None = None
) -> None:
    """Build the events of committed changes from the committed rows and send them.

    A retry is this task again with the next ``attempt`` and the ``event_ids`` still to
    send: it reads the rows again, so an offer deleted meanwhile gets no created/updated
    event after its offer-deleted.
    """
    only = None if event_ids is None else set(event_ids)
    _deliver_with_retries([Change.from_json(c) for c in changes], using, attempt, only)


@task()
def send_offer_events(events: list[dict[str, Any]], attempt: int) -> None:
    """Send already built events again: the retries enqueued by earlier versions of this
    package, which retried built events; retries are now :func:`deliver_offer_changes`."""
    _send_with_retries([event_from_json(e) for e in events], attempt)


def _deliver_with_retries(changes: list[Change], using: str, first: int, only: set[str] | None) -> None:
    """Attempts at ``changes``, each holding the offers' cross-process locks from the read
    of the committed rows to the end of the send (``building.offers_in_order``); released
    between attempts."""
    conf = get_settings()

    def attempt(n: int) -> bool:
        nonlocal changes, only
        with building.offers_in_order(changes, using):
            batch = building.only_events(building.build_events(changes, using), only)
            retry = sending.send_batch(batch, attempt=n, may_retry=n < conf.retry_attempts).retry
        if not retry:
            return True
        changes, only = building.still_to_send(changes, retry)
        return False

    def wait(n: int, delay: float) -> bool:
        follow_up = _task(deliver_offer_changes)
        if not follow_up.get_backend().supports_defer:
            time.sleep(delay)  # the backend cannot defer: wait here, holding the worker
            return True
        run_after = timezone.now() + datetime.timedelta(seconds=delay)
        follow_up.using(run_after=run_after).enqueue([c.to_json() for c in changes], using, n + 1, sorted(only or ()))
        return False

    run_attempts(attempt, first=first, base_delay=conf.retry_base_delay, max_delay=conf.retry_max_delay, wait=wait)


def _send_with_retries(batch: Sequence[Event], first: int) -> None:
    conf = get_settings()

    def attempt(n: int) -> bool:
        nonlocal batch
        # Only the events still to retry go on (a split batch may have sent or given up some).
        batch = sending.send_batch(batch, attempt=n, may_retry=n < conf.retry_attempts).retry
        return not batch

    def wait(n: int, delay: float) -> bool:
        follow_up = _task(send_offer_events)
        if not follow_up.get_backend().supports_defer:
            time.sleep(delay)  # the backend cannot defer: wait here, holding the worker
            return True
        run_after = timezone.now() + datetime.timedelta(seconds=delay)
        follow_up.using(run_after=run_after).enqueue([event_to_json(e) for e in batch], n + 1)
        return False

    run_attempts(attempt, first=first, base_delay=conf.retry_base_delay, max_delay=conf.retry_max_delay, wait=wait)


# -- Enqueueing (in the writing process) ---------------------------------------------


def _task(task_obj: Any) -> Any:
    conf = get_settings()
    return task_obj.using(backend=conf.task_backend, queue_name=conf.task_queue)


def is_outbox(using: str) -> bool:
    """Whether the task store is ``using``'s database, so enqueueing joins the transaction.

    False when the backend cannot be loaded (an unknown ``TASK_BACKEND``): the change is
    then enqueued on commit, and falls back to the background sender if that fails too.
    """
    try:
        from django_tasks_db.backend import DatabaseBackend
        from django_tasks_db.models import DBTaskResult
    except ImportError:
        return False
    try:
        backend = task_backends[get_settings().task_backend]
    except Exception:  # noqa: BLE001 - InvalidTaskBackend and the backend's own import errors
        return False
    return isinstance(backend, DatabaseBackend) and router.db_for_write(DBTaskResult) == using


def enqueue_changes(changes: Sequence[Change], using: str) -> bool:
    """On commit (or at once, for a change made in autocommit mode): one task for the
    transaction's coalesced changes. False (logged) if the task backend failed."""
    if not changes:
        return True
    try:
        _enqueue(changes, using)
    except Exception:  # a broken task backend must not fail the write
        logger.exception("Could not enqueue offer events for %d change(s).", len(changes))
        return False
    return True


def enqueue_in_transaction(changes: Sequence[Change], using: str) -> bool:
    """Inside the transaction (outbox): a task for one offer's coalesced changes so far.

    False (logged) if the insert failed; the host's transaction is unharmed (the insert
    ran in its own savepoint) and, if it commits, the offer falls back to the background
    sender.
    """
    if not changes:
        return True
    try:
        # In its own savepoint, rolled back on failure: the host's transaction carries on.
        with transaction.atomic(using=using):
            _enqueue(changes, using)
    except Exception:  # a failing insert must not fail the write
        logger.exception(
            "Could not write the outbox task for offer %s; if the transaction commits, its events "
            "go through the background sender instead.",
            changes[0].offer_id,
        )
        return False
    return True


def _enqueue(changes: Sequence[Change], using: str) -> None:
    _task(deliver_offer_changes).enqueue([c.to_json() for c in changes], using)
    metrics.increment("enqueued", len(changes))
