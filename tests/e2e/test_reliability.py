"""Reliability: Pusher unreachable, resetting or hanging; soketi stopped; a worker killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command

from hotel.models import Offer
from offer_realtime import metrics, sender
from tests.e2e.conftest import shared_database_url
from tests.e2e.proxy import FaultyProxy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def hotel(db):
    from hotel.models import Hotel

    return Hotel.objects.create(name="Killarney", slug="killarney")


@pytest.fixture
def faulty(realtime, settings):
    """The app reaches soketi through a proxy that fails on demand."""
    with FaultyProxy(realtime.port) as proxy:
        settings.PUSHER_PORT = proxy.port
        metrics.reset()
        yield proxy
        sender.reset_sender()


def timed_create(hotel, title):
    started = time.monotonic()
    Offer.objects.create(hotel=hotel, title=title)
    return time.monotonic() - started


class TestBackgroundMode:
    def test_writes_ride_out_an_outage_and_every_event_arrives(self, faulty, settings, subscribe, hotel):
        settings.OFFER_REALTIME = {"RETRY_ATTEMPTS": 8, "RETRY_BASE_DELAY": 0.1, "RETRY_MAX_DELAY": 0.4}
        watcher = subscribe("hotel-killarney")
        faulty.set_mode("refuse")
        durations = [timed_create(hotel, f"offer {i}") for i in range(5)]
        # Every write succeeded without waiting on the dead connection (a bound, not a benchmark).
        assert Offer.objects.count() == 5 and max(durations) < 1.0
        time.sleep(0.5)
        faulty.set_mode("pass")
        assert sender.get_sender().flush(10)
        received = watcher.wait_for_events(5)
        assert [e["data"]["offer"]["title"] for e in received] == [f"offer {i}" for i in range(5)]
        counts = metrics.snapshot()
        assert counts["retried"] >= 1 and counts["given_up"] == 0 and counts["sent"] == 5

    def test_events_past_the_retry_window_are_logged_and_counted(self, faulty, settings, subscribe, hotel, caplog):
        settings.OFFER_REALTIME = {"RETRY_ATTEMPTS": 2, "RETRY_BASE_DELAY": 0.05}
        watcher = subscribe("hotel-killarney")
        faulty.set_mode("refuse")
        for i in range(3):
            Offer.objects.create(hotel=hotel, title=f"lost {i}")
        assert sender.get_sender().flush(10)
        assert metrics.snapshot()["given_up"] == 3
        assert caplog.text.count("(attempt 2; given up)") == 3
        faulty.set_mode("pass")
        Offer.objects.create(hotel=hotel, title="after the outage")
        [event] = watcher.wait_for_events(1)
        assert event["data"]["offer"]["title"] == "after the outage"

    @pytest.mark.parametrize("mode, error", [("reset", "ConnectionError"), ("hang", "ReadTimeout")])
    def test_resets_and_hangs_are_retried(self, faulty, settings, subscribe, hotel, caplog, mode, error):
        settings.OFFER_REALTIME = {"TIMEOUT": 0.3, "RETRY_ATTEMPTS": 10, "RETRY_BASE_DELAY": 0.1,
                                   "RETRY_MAX_DELAY": 0.3}
        watcher = subscribe("hotel-killarney")
        faulty.set_mode(mode)
        Offer.objects.create(hotel=hotel, title="retried")
        deadline = time.monotonic() + 5
        while metrics.snapshot()["retried"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        faulty.set_mode("pass")
        [event] = watcher.wait_for_events(1)
        assert event["data"]["offer"]["title"] == "retried"
        assert error in caplog.text and "will retry" in caplog.text


@pytest.mark.parametrize("status, retried", [(401, False), (413, False), (500, True)])
def test_pusher_answers_decide_retry_or_give_up(realtime, settings, hotel, status, retried):
    """The same classification against a Pusher-shaped stub answering each status."""
    from tests.pusher_stub import PusherStub

    with PusherStub() as stub:
        stub.script = [status]
        for name, value in stub.settings().items():
            setattr(settings, name, value)
        settings.OFFER_REALTIME = {"RETRY_BASE_DELAY": 0.01}
        metrics.reset()
        Offer.objects.create(hotel=hotel, title="x")
        assert sender.get_sender().flush(5)
        assert len(stub.requests) == (2 if retried else 1)
        assert metrics.snapshot()["given_up"] == (0 if retried else 1)
    sender.reset_sender()


class TestTaskMode:
    @pytest.fixture(autouse=True)
    def task_mode(self, realtime, settings):
        settings.OFFER_REALTIME = {"DELIVERY": "task", "TASK_BACKEND": "db", "RETRY_ATTEMPTS": 20,
                                   "RETRY_BASE_DELAY": 0.2, "RETRY_MAX_DELAY": 0.5, "TIMEOUT": 1}

    def run_workers_until_done(self, timeout=20.0):
        from django_tasks_db.models import DBTaskResult

        deadline = time.monotonic() + timeout
        while DBTaskResult.objects.exclude(status__in=["SUCCESSFUL", "FAILED"]).exists():
            assert time.monotonic() < deadline, "tasks left undone"
            call_command("db_worker", "--batch", "--backend", "db", verbosity=0)
            time.sleep(0.1)

    def test_soketi_stopped_during_writes_every_event_arrives_after_it_returns(self, realtime, subscribe, hotel):
        watcher = subscribe("hotel-killarney")
        realtime.stop(graceful=False)
        try:
            for i in range(5):
                Offer.objects.create(hotel=hotel, title=f"durable {i}")
            call_command("db_worker", "--batch", "--backend", "db", verbosity=0)  # fails: soketi is down
        finally:
            realtime.start()
        watcher.wait_subscribed("hotel-killarney", timeout=25, count=2)
        self.run_workers_until_done()
        received = watcher.wait_for_events(5)
        assert sorted(e["data"]["offer"]["title"] for e in received) == [f"durable {i}" for i in range(5)]
        assert len({e["data"]["event_id"] for e in received}) == 5
        assert metrics.snapshot()["retried"] >= 5

    def test_a_worker_killed_mid_delivery_is_replaced(self, realtime, settings, subscribe, hotel):
        watcher = subscribe("hotel-killarney")
        with FaultyProxy(realtime.port) as proxy:
            proxy.set_mode("hang")  # the first worker's HTTP call never returns
            env = {
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.e2e.worker_settings",
                # The worker imports everything from where this process does: the tree under
                # PYTHONPATH or setup.cfg's pythonpath, the installed package under nox.
                "PYTHONPATH": os.pathsep.join(path for path in sys.path if path),
                "DATABASE_URL": shared_database_url(),
                "PUSHER_APP_ID": realtime.app_id, "PUSHER_KEY": realtime.key, "PUSHER_SECRET": realtime.secret,
                "PUSHER_HOST": "127.0.0.1", "PUSHER_PORT": str(proxy.port),
            }
            offer = Offer.objects.create(hotel=hotel, title="survives a killed worker")
            worker = subprocess.Popen(
                # --no-reload: under the autoreloader SIGKILL would hit the parent and orphan the worker.
                # manage.py, not `-m django`, which would put the working directory first on sys.path.
                [sys.executable, "example_project/manage.py", "db_worker", "--backend", "db", "--interval", "0.1", "--no-reload"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                from django_tasks_db.models import DBTaskResult

                deadline = time.monotonic() + 20
                while not DBTaskResult.objects.filter(status="RUNNING").exists():
                    assert time.monotonic() < deadline, "the worker never claimed the task"
                    time.sleep(0.05)
                time.sleep(0.3)  # inside the hanging HTTP call
            finally:
                worker.send_signal(signal.SIGKILL)
                worker.wait(10)
            assert DBTaskResult.objects.get().status == "RUNNING"  # abandoned
        call_command("offer_realtime_requeue_stale", "--older-than", "0", verbosity=0)
        self.run_workers_until_done()
        [event] = watcher.wait_for_events(1)
        assert event["data"]["offer"]["id"] == offer.pk
