"""offer_realtime.ordering: per-offer locks across processes, on the suite's database
(SQLite lock files by default, PostgreSQL advisory locks with DATABASE_URL).

The other process is a real one: a child Python that configures Django on the same
database and holds locks until told to let go.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from hotel.models import Offer
from offer_realtime import metrics, ordering, sender
from tests.pusher_stub import PusherStub
from tests.pythonpath import child_pythonpath

LABEL = "hotel.offer"

pytestmark = pytest.mark.django_db(transaction=True)

CHILD = r"""
import json, sys
import django
from django.conf import settings

settings.configure(DATABASES={"default": json.loads(sys.argv[1])}, INSTALLED_APPS=[], USE_TZ=True)
django.setup()
from offer_realtime import ordering

import time

plan = json.loads(sys.argv[2])
if plan.get("rounds", 1) > 1:
    print("start", flush=True)
    sys.stdin.readline()
for round in range(plan.get("rounds", 1)):
    with ordering.offers_locked("default", plan["label"], plan["pks"], timeout=plan.get("timeout", 30)) as held:
        time.sleep(plan.get("hold", 0))
        if plan.get("rounds", 1) == 1:
            compact = {"separators": (",", ":")}
            print("locked", json.dumps(held.locked, **compact), json.dumps(held.missed, **compact), flush=True)
            sys.stdin.readline()  # hold until the test says so
        elif held.missed:
            print("missed", json.dumps(held.missed), flush=True)
print("released", flush=True)
"""


def database_settings() -> dict:
    """The test database as the child process must see it."""
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS")
    return {key: connection.settings_dict[key] for key in keys if key in connection.settings_dict}


class Child:
    """Another process holding the locks of ``pks`` until :meth:`release`."""

    def __init__(self, pks: list, **plan) -> None:
        env = {**os.environ, "PYTHONPATH": child_pythonpath()}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                json.dumps(database_settings()),
                json.dumps({"label": LABEL, "pks": pks, **plan}),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),  # not the tree, which `-c` would put first: see tests/pythonpath.py
        )

    def wait_locked(self) -> tuple[list, list]:
        line = self.proc.stdout.readline()
        assert line.startswith("locked"), line + self.proc.stderr.read()
        _, locked, missed = line.split(" ", 2)
        return json.loads(locked), json.loads(missed)

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> str:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, out + err
        return out

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def child():
    started: list[Child] = []

    def start(pks, **plan) -> Child:
        started.append(Child(pks, **plan))
        return started[-1]

    yield start
    for proc in started:
        proc.kill()


@pytest.fixture(autouse=True)
def fresh_counters():
    metrics.reset()
    yield
    sender.reset_sender()


def other_stripe(pk: int) -> int:
    """An offer id whose lock is independent of ``pk``'s (another SQLite stripe too)."""
    stripe = ordering.lock_key(LABEL, pk) % ordering.STRIPES
    return next(n for n in range(pk + 1, pk + 1000) if ordering.lock_key(LABEL, n) % ordering.STRIPES != stripe)


def test_the_database_has_locks():
    """The suite runs on SQLite (a file) or PostgreSQL: both must actually lock."""
    with ordering.offers_locked("default", LABEL, [1], timeout=1) as held:
        assert held.kind == {"sqlite": "sqlite", "postgresql": "postgresql"}[connection.vendor]
        assert held.locked == [1] and held.missed == []


def test_lock_keys_are_stable_64_bit_and_the_same_in_another_process():
    keys = [ordering.lock_key(LABEL, pk) for pk in (1, 2, "1")]
    assert keys[0] == keys[2] != keys[1]  # by text: an id from JSON or the ORM is the same offer
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert ordering.lock_key("other.model", 1) != keys[0]
    out = subprocess.run(
        [sys.executable, "-c", "from offer_realtime.ordering import lock_key; print(lock_key('hotel.offer', 1))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),  # see tests/pythonpath.py
        env={**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": child_pythonpath()},
    ).stdout
    assert int(out) == keys[0]


def test_a_second_process_waits_until_the_first_lets_go(child):
    other = child([7])
    assert other.wait_locked() == ([7], [])
    threading.Timer(0.5, other.release).start()
    started = time.monotonic()
    with ordering.offers_locked("default", LABEL, [7], timeout=30) as held:
        waited = time.monotonic() - started
        assert held.locked == [7] and held.missed == []
    assert waited >= 0.45  # it did wait for the other process
    assert "released" in other.finish()


def test_other_offers_do_not_wait(child):
    other = child([7])
    other.wait_locked()
    free = other_stripe(7)
    with ordering.offers_locked("default", LABEL, [free], timeout=0) as held:  # no wait at all
        assert held.locked == [free] and held.missed == []
    other.release()
    other.finish()


def test_a_wait_is_bounded_then_goes_on_with_a_warning_and_a_count(child, caplog):
    other = child([7, 8])
    other.wait_locked()
    free = other_stripe(7)
    free = (
        free
        if ordering.lock_key(LABEL, free) % ordering.STRIPES != ordering.lock_key(LABEL, 8) % ordering.STRIPES
        else other_stripe(free)
    )
    started = time.monotonic()
    with ordering.offers_locked("default", LABEL, [7, free], timeout=0.3) as held:
        waited = time.monotonic() - started
        assert held.missed == [7] and held.locked == [free]
    assert waited >= 0.3
    assert metrics.snapshot()["lock_timeouts"] == 1
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "Went on without the delivery lock of offer(s) 7" in record.getMessage()
    # The one not taken was not released by mistake: the other process still holds it.
    with ordering.offers_locked("default", LABEL, [7], timeout=0) as again:
        assert again.missed == [7]
    other.release()
    other.finish()


def test_locks_are_released_when_the_block_raises(child):
    with pytest.raises(RuntimeError), ordering.offers_locked("default", LABEL, [9], timeout=1):
        raise RuntimeError
    other = child([9], timeout=0)
    assert other.wait_locked() == ([9], [])  # taken at once by another process
    other.release()
    other.finish()


def test_batches_taken_in_any_order_never_deadlock(child):
    """Two processes lock the same offers again and again, given in opposite orders: keys
    are taken sorted, so neither ever waits for the other in a cycle (which PostgreSQL
    would break with an error, and flock would sit in until the timeout)."""
    pks = list(range(20, 30))
    other = child(list(reversed(pks)), rounds=100, timeout=3, hold=0.001)
    assert other.proc.stdout.readline() == "start\n"
    other.release()  # both start now
    missed = []
    for _ in range(100):
        with ordering.offers_locked("default", LABEL, pks, timeout=3) as held:
            time.sleep(0.001)
            missed += held.missed
    out = other.finish()
    assert missed == [] and "missed" not in out


def test_a_batch_waits_holding_only_the_locks_sorted_before_the_one_it_waits_for(child):
    """Sorted acquisition: waiting for the first lock (in key order), a batch holds none of
    the later ones, whatever order its offers were given in."""
    if connection.vendor == "sqlite":

        def position(pk):
            return ordering.lock_key(LABEL, pk) % ordering.STRIPES
    else:

        def position(pk):
            return ordering.lock_key(LABEL, pk)

    first, second = sorted([40, other_stripe(40)], key=position)
    holder = child([first])
    holder.wait_locked()
    result = {}

    def batch():
        with ordering.offers_locked("default", LABEL, [second, first], timeout=10) as held:
            result["held"] = (sorted(held.locked), held.missed)
        connection.close()

    thread = threading.Thread(target=batch)
    thread.start()
    time.sleep(0.3)  # the batch is waiting for `first`
    probe = child([second], timeout=0)
    assert probe.wait_locked() == ([second], [])  # the batch does not hold it meanwhile
    probe.release()
    probe.finish()
    holder.release()
    thread.join(10)
    assert result["held"] == (sorted([first, second]), [])
    holder.finish()


def test_threads_of_one_process_exclude_each_other():
    """Two threads (two inline requests, or a request and the sender thread) are ordered too."""
    inside, events = threading.Event(), []

    def first():
        with ordering.offers_locked("default", LABEL, [11], timeout=5):
            inside.set()
            time.sleep(0.3)
            events.append("first out")
        connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with ordering.offers_locked("default", LABEL, [11], timeout=5) as held:
        events.append("second in")
        assert held.locked == [11]
    thread.join()
    assert events == ["first out", "second in"]


def test_a_thread_holding_an_offer_takes_it_again_without_waiting():
    with (
        ordering.offers_locked("default", LABEL, [12, 13], timeout=1),
        ordering.offers_locked("default", LABEL, [13], timeout=0) as inner,
    ):
        assert inner.locked == [13] and inner.missed == []
    # ... and both levels let go: another thread takes it at once.
    result = []
    thread = threading.Thread(target=lambda: result.append(_try_lock(13)))
    thread.start()
    thread.join()
    assert result == [True]


def _try_lock(pk) -> bool:
    try:
        with ordering.offers_locked("default", LABEL, [pk], timeout=0) as held:
            return held.missed == []
    finally:
        connection.close()


def test_other_databases_take_no_lock(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "mysql")
    with ordering.offers_locked("default", LABEL, [1], timeout=0) as held:
        assert held.kind == "none" and held.locked == [] and held.missed == []


# -- the delivery modes hold the locks ------------------------------------------------------


@pytest.fixture
def stub():
    with PusherStub() as running:
        yield running


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_inline_delivery_waits_for_another_process_sending_the_same_offer(stub, hotel, child):
    offer = Offer.objects.create(hotel=hotel, title="before")
    other = child([offer.pk])
    other.wait_locked()
    with override_settings(**stub.settings(), OFFER_REALTIME={"DELIVERY": "inline"}):
        writer = threading.Thread(target=lambda: (_save_title(offer.pk, "after"), connection.close()))
        writer.start()
        time.sleep(0.3)
        assert stub.requests == []  # committed, and waiting for the other process's delivery
        other.release()
        writer.join(10)
    other.finish()
    assert [(e["name"], e["data"]["offer"]["title"]) for e in stub.events()] == [("offer-updated", "after")]


def _save_title(pk, title):
    offer = Offer.objects.get(pk=pk)
    offer.title = title
    offer.save()


def test_the_sender_thread_waits_for_another_process_sending_the_same_offer(stub, hotel, child):
    offer = Offer.objects.create(hotel=hotel, title="before")
    other = child([offer.pk])
    other.wait_locked()
    with override_settings(**stub.settings(), OFFER_REALTIME={"DELIVERY": "background"}):
        _save_title(offer.pk, "after")
        time.sleep(0.3)
        assert stub.requests == []
        other.release()
        assert sender.get_sender().flush(10)
    other.finish()
    assert [e["data"]["offer"]["title"] for e in stub.events()] == ["after"]


def test_the_sender_lets_go_of_the_locks_between_retries(stub, hotel, child):
    """A failed attempt releases its offers' locks before the backoff: another process's
    delivery of the same offer goes meanwhile."""
    offer = Offer.objects.create(hotel=hotel, title="before")
    stub.script = [503]
    with override_settings(
        **stub.settings(),
        OFFER_REALTIME={
            "DELIVERY": "background",
            "RETRY_BASE_DELAY": 4.0,
            "RETRY_MAX_DELAY": 4.0,
        },
    ):
        _save_title(offer.pk, "renamed")
        wait_for(lambda: stub.requests)  # the first attempt failed; the retry is 4 s away
        probe = child([offer.pk], timeout=1)
        assert probe.wait_locked() == ([offer.pk], [])  # free during the backoff
        assert len(stub.requests) == 1
        probe.release()
        probe.finish()
        assert sender.get_sender().flush(10)
    assert [e["data"]["offer"]["title"] for e in stub.events()] == ["renamed"]


def test_a_retry_reads_the_row_again_and_drops_an_update_of_an_offer_deleted_meanwhile(stub, hotel, caplog):
    """Deleted wins: the update failed once; the offer is deleted before the retry."""
    caplog.set_level(logging.DEBUG, logger="offer_realtime")
    offer = Offer.objects.create(hotel=hotel, title="before")
    stub.script = [503]
    with override_settings(
        **stub.settings(),
        OFFER_REALTIME={
            "DELIVERY": "background",
            "RETRY_BASE_DELAY": 1.0,
            "RETRY_MAX_DELAY": 1.0,
        },
    ):
        _save_title(offer.pk, "renamed")
        wait_for(lambda: stub.requests)  # the first attempt failed; the retry is 1 s away
        Offer.objects.filter(pk=offer.pk).delete()
        assert sender.get_sender().flush(10)
        tally = dict(sender.get_sender().tally)
    assert [e["name"] for e in stub.events()] == ["offer-deleted"]
    assert tally.get("superseded") == 1 and tally.get("sent") == 1
    assert "1 event(s) to retry not sent: their offers were deleted since the last attempt." in caplog.text


def test_a_retried_task_reads_the_row_again_and_drops_an_update_of_an_offer_deleted_meanwhile(stub, hotel):
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    offer = Offer.objects.create(hotel=hotel, title="before")
    stub.script = [503]
    with override_settings(
        **stub.settings(),
        OFFER_REALTIME={
            "DELIVERY": "task",
            "TASK_BACKEND": "db",
            "RETRY_BASE_DELAY": 0.5,
            "RETRY_MAX_DELAY": 0.5,
        },
    ):
        _save_title(offer.pk, "renamed")
        call_command("db_worker", "--batch", "--backend", "db", verbosity=0)  # 503: a follow-up task
        follow_up = DBTaskResult.objects.get(args_kwargs__args__2=2)
        assert follow_up.status == "READY" and len(stub.requests) == 1
        Offer.objects.filter(pk=offer.pk).delete()
        time.sleep(0.6)
        call_command("db_worker", "--batch", "--backend", "db", verbosity=0)
    assert [e["name"] for e in stub.events()] == ["offer-deleted"]
    follow_up.refresh_from_db()
    assert follow_up.status == "SUCCESSFUL"


def test_ordering_off_takes_no_lock(stub, hotel, child):
    offer = Offer.objects.create(hotel=hotel, title="before")
    other = child([offer.pk])
    other.wait_locked()
    try:
        with override_settings(**stub.settings(), OFFER_REALTIME={"DELIVERY": "inline", "ORDERING": False}):
            _save_title(offer.pk, "after")  # not waiting for the other process (it would for 4 x TIMEOUT)
        assert [e["data"]["offer"]["title"] for e in stub.events()] == ["after"]
        assert metrics.snapshot()["lock_timeouts"] == 0
    finally:
        other.release()
        other.finish()
