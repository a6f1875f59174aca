"""Pending changes live exactly as long as their transaction: a rollback frees them at once.

Run on SQLite and on PostgreSQL (``DATABASE_URL``): real transactions and savepoints.
"""

from __future__ import annotations

import contextlib
import gc
import sys

import pytest
from django.db import transaction
from django.test import override_settings

from hotel.models import Offer
from offer_realtime.changes import Change
from offer_realtime.testing import capture_broadcasts

ROLLBACKS = 2_000


class Rollback(Exception):
    pass


@contextlib.contextmanager
def no_garbage_collection():
    """Count what reference counting alone frees: released 'at once', not at the next GC."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def live_changes() -> int:
    if sys.version_info < (3, 11):
        # Python 3.10's frames put a rolled-back change in a reference cycle (through the
        # exception's traceback), which the next collection frees: count what is still
        # reachable. From 3.11 on, reference counting alone frees it, as asserted.
        gc.collect()
    # type(), not isinstance(): gc may hold dead weakref proxies, which isinstance() would touch.
    return sum(1 for obj in gc.get_objects() if type(obj) is Change)


def roll_back(offer, times):
    for i in range(times):
        with contextlib.suppress(Rollback), transaction.atomic():
            offer.title = f"draft {i}"
            offer.save()
            raise Rollback


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transactions_keep_no_change(offer):
    with override_settings(OFFER_REALTIME={"DELIVERY": "inline", "BACKEND": "null"}), no_garbage_collection():
        before = live_changes()
        roll_back(offer, ROLLBACKS)
        assert live_changes() - before == 0
        with capture_broadcasts() as sent, transaction.atomic():
            offer.title = "kept"
            offer.save()
        # The next transaction is unaffected: its own event, its own transaction key.
        assert [(e.name, e.data["offer"]["title"]) for e in sent] == [("offer-updated", "kept")]
        assert live_changes() - before == 0


@pytest.mark.django_db(transaction=True)
def test_rolled_back_savepoints_keep_no_change_and_the_rest_still_commits(offer, other_hotel):
    with capture_broadcasts() as sent, no_garbage_collection():
        with transaction.atomic():
            before = live_changes()
            offer.title = "kept"
            offer.save()
            roll_back(offer, ROLLBACKS)
            assert live_changes() - before == 1  # only the change that will commit
            moved = Offer.objects.create(hotel=other_hotel, title="also kept")
            roll_back(moved, 10)
        assert live_changes() - before == 0
    assert [(e.name, e.data["offer"]["title"]) for e in sent] == [
        ("offer-updated", "kept"),
        ("offer-created", "also kept"),
    ]


@pytest.mark.django_db
def test_savepoints_in_a_test_transaction_keep_no_change(offer):
    # pytest-django's db fixture: the test runs inside a transaction that never commits,
    # so every atomic block below is a savepoint.
    with capture_broadcasts() as sent, no_garbage_collection():
        before = live_changes()
        roll_back(offer, ROLLBACKS)
        assert live_changes() - before == 0
        offer.title = "kept"
        offer.save()
    assert [(e.name, e.data["offer"]["title"]) for e in sent] == [("offer-updated", "kept")]


@pytest.mark.django_db(transaction=True)
def test_outbox_savepoint_rollbacks_keep_no_change(offer):
    from django_tasks_db.models import DBTaskResult

    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db"}), no_garbage_collection():
        with transaction.atomic():
            before = live_changes()
            roll_back(offer, 200)
            assert live_changes() - before == 0
            offer.title = "kept"
            offer.save()
        assert live_changes() - before == 0
    assert DBTaskResult.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_long_transaction_sends_once_after_its_last_change(offer):
    with capture_broadcasts() as sent, transaction.atomic():
        for i in range(500):
            offer.title = f"v{i}"
            offer.save()
            transaction.on_commit(lambda: None)  # the host's own callbacks in between
    assert [(e.name, e.data["offer"]["title"]) for e in sent] == [("offer-updated", "v499")]


@pytest.mark.django_db
def test_callbacks_run_twice_by_test_helpers_send_once(offer, django_capture_on_commit_callbacks):
    # A test running the callbacks by hand inside capture_broadcasts, which runs them again.
    with capture_broadcasts() as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            offer.title = "once"
            offer.save()
        for callback in callbacks:
            callback()
    assert [(e.name, e.data["offer"]["title"]) for e in sent] == [("offer-updated", "once")]
