"""Task mode never loses a committed change silently, and never fails the write.

When the outbox insert (django-tasks-db in the offer's database) or the task backend
fails, the committed change is sent by the background sender instead, with an ERROR line
and the ``task_fallback`` counter. Real failures: the task table missing from the real
database (SQLite or PostgreSQL), an unknown backend alias, a queue the backend refuses.
"""

from __future__ import annotations

import contextlib
import logging
import sys

import pytest
from django.db import connection, transaction
from django.test import override_settings

from hotel.models import Offer
from offer_realtime import metrics, sender
from tests.pusher_stub import PusherStub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stub():
    metrics.reset()
    with PusherStub() as running:
        yield running
    sender.reset_sender()


def task_mode(stub, **extra):
    return override_settings(**stub.settings(), OFFER_REALTIME={"DELIVERY": "task", "RETRY_BASE_DELAY": 0.01, **extra})


@contextlib.contextmanager
def outbox_table_missing():
    """The task store's table is gone (e.g. its migration was never applied here)."""
    from django_tasks_db.models import DBTaskResult

    table = DBTaskResult._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")


def sent_titles(stub):
    assert sender.get_sender().flush(5)
    return [(e["name"], e["data"]["offer"]["title"]) for e in stub.events()]


def fallback_lines(caplog):
    return [r for r in caplog.records if r.levelno == logging.ERROR and "background sender" in r.getMessage()]


def test_a_failed_outbox_insert_falls_back_to_the_background_sender(stub, hotel, caplog):
    with task_mode(stub, TASK_BACKEND="db"), outbox_table_missing():
        with transaction.atomic():
            offer = Offer.objects.create(hotel=hotel, title="committed anyway")
            offer.title = "committed, final"
            offer.save()
        assert Offer.objects.filter(title="committed, final").exists()  # the write succeeded
        assert sent_titles(stub) == [("offer-created", "committed, final")]
    assert metrics.snapshot()["task_fallback"] == 1
    assert len(fallback_lines(caplog)) >= 2  # the failed insert, then the fallback after commit


def test_a_failed_outbox_insert_in_a_rolled_back_transaction_sends_nothing(stub, hotel):
    with task_mode(stub, TASK_BACKEND="db"), outbox_table_missing():
        with contextlib.suppress(RuntimeError), transaction.atomic():
            Offer.objects.create(hotel=hotel, title="rolled back")
            raise RuntimeError
        assert sent_titles(stub) == []
    assert metrics.snapshot()["task_fallback"] == 0


def test_only_the_offer_whose_insert_failed_falls_back(stub, hotel, offer, monkeypatch):
    from django_tasks_db.models import DBTaskResult

    from offer_realtime import tasks

    real_enqueue, calls = tasks._enqueue, []

    def enqueue_failing_for(changes, using):
        calls.append(changes[0].offer_id)
        if changes[0].offer_id == offer.pk:
            # A real database error inside the outbox savepoint.
            with connection.cursor() as cursor:
                cursor.execute("SELECT * FROM no_such_table_here")
        return real_enqueue(changes, using)

    monkeypatch.setattr(tasks, "_enqueue", enqueue_failing_for)
    with task_mode(stub, TASK_BACKEND="db"):
        with transaction.atomic():
            offer.title = "via the fallback"
            offer.save()
            Offer.objects.create(hotel=hotel, title="via its task")
        assert DBTaskResult.objects.count() == 1
        assert sent_titles(stub) == [("offer-updated", "via the fallback")]
        from django.core.management import call_command

        call_command("db_worker", "--batch", "--backend", "db", verbosity=0)
    assert [(e["name"], e["data"]["offer"]["title"]) for e in stub.events()][-1] == ("offer-created", "via its task")
    assert metrics.snapshot()["task_fallback"] == 1


@pytest.mark.parametrize("in_transaction", [True, False])
def test_an_unknown_task_backend_at_run_time_never_raises_into_save(stub, hotel, caplog, in_transaction):
    with task_mode(stub, TASK_BACKEND="nope"):
        with transaction.atomic() if in_transaction else contextlib.nullcontext():
            Offer.objects.create(hotel=hotel, title="saved")  # before: InvalidTaskBackendError
        assert sent_titles(stub) == [("offer-created", "saved")]
    assert metrics.snapshot()["task_fallback"] == 1
    assert fallback_lines(caplog)


def test_a_queue_the_backend_refuses_falls_back(stub, hotel, caplog):
    with task_mode(stub, TASK_BACKEND="default", TASK_QUEUE="offers"):  # not in the backend's QUEUES
        with transaction.atomic():
            Offer.objects.create(hotel=hotel, title="saved")
        assert sent_titles(stub) == [("offer-created", "saved")]
    assert metrics.snapshot()["task_fallback"] == 1


def test_without_the_task_framework_it_falls_back(stub, hotel, monkeypatch):
    monkeypatch.setitem(sys.modules, "offer_realtime.tasks", None)  # as if django-tasks were not installed
    with task_mode(stub, TASK_BACKEND="db"):
        with transaction.atomic():
            Offer.objects.create(hotel=hotel, title="saved")
        assert sent_titles(stub) == [("offer-created", "saved")]
    assert metrics.snapshot()["task_fallback"] == 1
