"""Fixtures for the end-to-end tests: soketi, pusher-js subscribers, staff tokens.

Every test here drives the whole path with real parts: the example project's API (a
live server) -> offer_realtime -> the ``pusher`` HTTP client -> soketi -> websocket ->
pusher-js. Latency from commit to receipt is collected and reported at the end.
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.db import transaction
from django.db.models.signals import post_save, pre_delete

from tests.e2e.harness import Soketi, Subscriber, ensure_node_modules

#: (event name, commit-to-receipt milliseconds) over the run.
LATENCIES: list[tuple[str, float]] = []


@pytest.fixture(scope="session")
def soketi():
    """One soketi for the session (tests use their own hotels' channels)."""
    ensure_node_modules()
    with Soketi() as server:
        yield server


def use_soketi(settings, soketi, urlconf: str):
    """Point offer_realtime at ``soketi`` with the product's default delivery mode; returns
    a function that sends what the background sender still holds (call it at teardown)."""
    for name, value in soketi.pusher_settings().items():
        setattr(settings, name, value)
    settings.OFFER_REALTIME = {}
    settings.ROOT_URLCONF = urlconf

    def flush():
        from offer_realtime import sender

        sender.get_sender().flush(5)

    return flush


@pytest.fixture
def realtime(settings, soketi):
    """offer_realtime sending to soketi, the example's URLs plus the channel-auth endpoint."""
    flush = use_soketi(settings, soketi, "tests.urls")
    yield soketi
    flush()


@pytest.fixture
def subscribe(soketi):
    """Start pusher-js subscribers; each is subscribed before the fixture returns it."""
    started = []

    def start(*channels, auth_endpoint=None, headers=None, wait=True):
        subscriber = Subscriber(soketi, channels, auth_endpoint=auth_endpoint, headers=headers).start()
        started.append(subscriber)
        subscriber.wait_connected()
        if wait:
            for channel in channels:
                subscriber.wait_subscribed(channel)
        return subscriber

    yield start
    for subscriber in started:
        subscriber.stop()


@pytest.fixture
def commit_clock():
    """Wall-clock time (ms) at which each offer change committed, in the writing thread."""
    from hotel.models import Offer

    commits: list[float] = []

    def on_change(sender, **kwargs):
        transaction.on_commit(lambda: commits.append(time.time() * 1000), using=kwargs.get("using") or "default")

    post_save.connect(on_change, sender=Offer, dispatch_uid="e2e-commit-clock")
    pre_delete.connect(on_change, sender=Offer, dispatch_uid="e2e-commit-clock-delete")
    yield commits
    post_save.disconnect(sender=Offer, dispatch_uid="e2e-commit-clock")
    pre_delete.disconnect(sender=Offer, dispatch_uid="e2e-commit-clock-delete")


def shared_database_url() -> str:
    """A DATABASE_URL for another process (manage.py shell, a db_worker) to share the test database."""
    import os

    from django.db import connection

    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + name


def record_latencies(commits: list[float], events: list[dict]) -> None:
    """Pair each received event with its commit, in order, and keep the difference."""
    for commit_ms, event in zip(commits, events, strict=True):
        LATENCIES.append((event["event"], event["received_at_ms"] - commit_ms))


def pytest_terminal_summary(terminalreporter):
    if not LATENCIES:
        return
    values = sorted(ms for _, ms in LATENCIES)
    terminalreporter.write_line(
        f"offer_realtime e2e: commit -> pusher-js receipt over {len(values)} events: "
        f"median {statistics.median(values):.1f} ms, worst {values[-1]:.1f} ms"
    )
