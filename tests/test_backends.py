"""Backends, their selection, and failure isolation on the delivery path."""

from __future__ import annotations

import logging
import socket

import pytest
from django.test import override_settings

from hotel.models import Offer
from offer_realtime import backends, events
from offer_realtime.backends.logging import LoggingBackend
from offer_realtime.backends.memory import MemoryBackend
from offer_realtime.backends.null import NullBackend
from offer_realtime.backends.pusher import PusherBackend
from tests.pusher_stub import PusherStub

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub():
    with PusherStub() as running:
        yield running


configured = override_settings


def run_on_commit():
    """Run the test transaction's on_commit callbacks as a commit would, with the real backend."""
    from django.db import connection

    while connection.run_on_commit:
        callbacks, connection.run_on_commit = connection.run_on_commit, []
        for _, callback, _ in callbacks:
            callback()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_backend_is_chosen_by_credentials(stub):
    with configured(**stub.settings()):
        assert isinstance(backends.get_backend(), PusherBackend)
    with configured(PUSHER_APP_ID="", PUSHER_KEY="", PUSHER_SECRET=""):
        assert isinstance(backends.get_backend(), LoggingBackend)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("memory", MemoryBackend),
        ("null", NullBackend),
        ("logging", LoggingBackend),
        ("offer_realtime.backends.null.NullBackend", NullBackend),
    ],
)
def test_backend_by_alias_or_dotted_path(value, expected):
    with configured(OFFER_REALTIME={"BACKEND": value}):
        assert type(backends.get_backend()) is expected


def test_backend_is_built_once_and_rebuilt_on_change():
    with configured(OFFER_REALTIME={"BACKEND": "memory"}):
        first = backends.get_backend()
        assert backends.get_backend() is first
    with configured(OFFER_REALTIME={"BACKEND": "memory"}):
        assert backends.get_backend() is not first


def test_pusher_backend_sends_one_event_as_a_batch_of_one(stub, hotel):
    # trigger_batch even for one event: trigger's own size check cannot be skipped (issue 10).
    with configured(**stub.settings()):
        offer = Offer.objects.create(hotel=hotel, title="Live")
        run_on_commit()
    assert [r["path"] for r in stub.requests] == ["/apps/4242/batch_events"]
    (received,) = stub.events()
    assert received["name"] == "offer-created"
    assert received["channel"] == "hotel-killarney"
    assert received["data"]["offer"]["id"] == offer.pk
    assert received["data"]["action"] == "created"


def test_pusher_backend_batches_by_ten_in_order(stub):
    batch = [events.offer_deleted("hotel-a", i, f"o{i}") for i in range(23)]
    with configured(**stub.settings()):
        backends.get_backend().send(batch)
    assert [r["path"] for r in stub.requests] == ["/apps/4242/batch_events"] * 3
    assert [len(r["body"]["batch"]) for r in stub.requests] == [10, 10, 3]
    assert [e["data"]["offer_id"] for e in stub.events()] == list(range(23))


def test_memory_backend_uses_the_module_outbox():
    from offer_realtime.backends import memory

    memory.outbox.clear()
    MemoryBackend().send([events.offer_deleted("hotel-a", 1, "x")])
    assert [e.name for e in memory.outbox] == ["offer-deleted"]
    memory.outbox.clear()


def test_logging_backend_logs_each_event(caplog):
    caplog.set_level(logging.INFO, logger="offer_realtime.events")
    LoggingBackend().send([events.offer_deleted("hotel-a", 1, "x")])
    assert caplog.records[0].name == "offer_realtime.events"
    assert 'offer-deleted on hotel-a: {"action": "deleted", "offer_id": 1, "offer_title": "x"}' in caplog.text


class Exploding(backends.BaseBackend):
    """A backend that always fails."""

    def send(self, events):
        raise RuntimeError("boom")


class TestFailureIsolation:
    """A broadcast failure is logged with event, channel and offer id, and never raised."""

    def assert_logged_failure(self, caplog, offer_id, error):
        failures = [r for r in caplog.records if r.name == "offer_realtime" and r.levelno == logging.ERROR]
        assert failures, caplog.text
        message = failures[0].getMessage()
        assert "offer-created" in message and "hotel-killarney" in message and f"offer {offer_id}" in message
        assert error in message
        assert failures[0].offer_id == offer_id and failures[0].channel == "hotel-killarney"

    def test_backend_that_raises(self, hotel, caplog):
        with configured(OFFER_REALTIME={"BACKEND": "tests.test_backends.Exploding", "DELIVERY": "inline"}):
            offer = Offer.objects.create(hotel=hotel, title="Still saved")
            run_on_commit()
        assert Offer.objects.filter(pk=offer.pk).exists()
        self.assert_logged_failure(caplog, offer.pk, "RuntimeError: boom")

    def test_refused_connection(self, hotel, caplog):
        with configured(
            PUSHER_APP_ID="1",
            PUSHER_KEY="k",
            PUSHER_SECRET="s",
            PUSHER_HOST="127.0.0.1",
            PUSHER_PORT=closed_port(),
            PUSHER_SSL=False,
        ):
            offer = Offer.objects.create(hotel=hotel, title="Still saved")
            run_on_commit()
        assert Offer.objects.filter(pk=offer.pk).exists()
        self.assert_logged_failure(caplog, offer.pk, "ConnectionError")

    @pytest.mark.parametrize(
        ("status", "error"),
        [(401, "PusherBadAuth"), (403, "PusherForbidden"), (413, "PusherBadStatus"), (500, "PusherBadStatus")],
    )
    def test_error_statuses(self, stub, hotel, caplog, status, error):
        stub.status = status
        with configured(**stub.settings()):
            offer = Offer.objects.create(hotel=hotel, title="Still saved")
            run_on_commit()
        assert len(stub.requests) == 1
        self.assert_logged_failure(caplog, offer.pk, error)

    def test_hanging_server_is_cut_at_the_configured_timeout(self, stub, hotel, caplog):
        stub.delay = 2.0
        with configured(**stub.settings(), OFFER_REALTIME={"TIMEOUT": 0.2, "DELIVERY": "inline"}):
            offer = Offer.objects.create(hotel=hotel, title="Still saved")
            run_on_commit()
        self.assert_logged_failure(caplog, offer.pk, "ReadTimeout")

    def test_a_failing_serializer_is_logged_and_other_offers_still_go_out(self, hotel, caplog):
        from django.db import transaction

        from offer_realtime.testing import capture_broadcasts

        with override_settings(OFFER_REALTIME={"SERIALIZER": "tests.test_backends.BrokenSerializer"}):
            with capture_broadcasts() as sent:
                with transaction.atomic():
                    Offer.objects.create(hotel=hotel, title="bad")
                    Offer.objects.create(hotel=hotel, title="good")
        assert [e.data["offer"]["title"] for e in sent] == ["good"]
        assert "Could not build the created event" in caplog.text


class BrokenSerializer:
    """Fails for offers titled 'bad'."""

    def __init__(self, offer, context=None):
        self.offer = offer

    @property
    def data(self):
        if self.offer.title == "bad":
            raise ValueError("cannot serialize")
        return {"title": self.offer.title}


# -- Pusher's limits, measured as Pusher measures them (issue 10, item 1) -----------------


def event_of_size(channel: str, offer_id: int, text: str) -> events.Event:
    return events.offer_updated(channel, offer_id, {"id": offer_id, "details": text})


def padded_to(channel: str, offer_id: int, target: int, special: str) -> events.Event:
    """An event whose JSON is exactly ``target`` UTF-8 bytes: ``special`` once, ASCII padding."""
    base = event_of_size(channel, offer_id, special).size()
    return event_of_size(channel, offer_id, special + "a" * (target - base))


class TestPusherLimitsInUtf8Bytes:
    """The ``pusher`` library sizes data with ``sys.getsizeof`` (the CPython object, up to 4
    bytes a character plus a header); Pusher counts UTF-8 bytes. No event Pusher takes may be
    refused by the library's own measure."""

    @pytest.mark.parametrize(
        "text",
        [
            "Guests’ favourite. " + "a" * 5_200,  # one typographic apostrophe in ~5 KB: 2 bytes a char
            "Spa 🧖 " + "a" * 5_000,  # one emoji in ~5 KB: 4 bytes a char
            None,  # emoji-heavy (600 emoji), padded to just under the limit
        ],
    )
    def test_a_batch_with_a_multibyte_event_under_the_limit_goes_out_whole(self, stub, text):
        import sys

        if text is None:
            text = padded_to("hotel-a", 1, events.MAX_PAYLOAD_BYTES - 10, "Spa 🧖 " * 600).data["offer"]["details"]
        heavy = event_of_size("hotel-a", 1, text)
        assert heavy.size() <= events.MAX_PAYLOAD_BYTES < sys.getsizeof(heavy.encoded())
        batch = [heavy, *(events.offer_deleted("hotel-b", i, f"o{i}") for i in range(2, 6))]
        with configured(**stub.settings()):
            backends.get_backend().send(batch)
        assert [e["channel"] for e in stub.events()] == ["hotel-a"] + ["hotel-b"] * 4
        assert stub.events()[0]["data"]["offer"]["details"] == text

    def test_one_event_of_7_7_kb_with_one_emoji_goes_out(self, stub):
        import sys

        event = event_of_size("hotel-a", 1, "Spa 🧖 " + "a" * 7_650)
        assert sys.getsizeof(event.encoded()) > 30_720  # the library's limit for a single trigger
        with configured(**stub.settings()):
            backends.get_backend().send([event])
        [received] = stub.events()
        assert received["data"]["offer"]["details"] == event.data["offer"]["details"]

    def test_exactly_at_the_limit_goes_out_one_byte_over_is_refused_before_sending(self, stub):
        at_limit = padded_to("hotel-a", 1, events.MAX_PAYLOAD_BYTES, "’" * 3_000)
        over = padded_to("hotel-a", 2, events.MAX_PAYLOAD_BYTES + 1, "’" * 3_000)
        assert (at_limit.size(), over.size()) == (events.MAX_PAYLOAD_BYTES, events.MAX_PAYLOAD_BYTES + 1)
        with configured(**stub.settings()):
            backends.get_backend().send([at_limit])
            with pytest.raises(ValueError, match=r"10241 bytes.*10240"):
                backends.get_backend().send([over])
        assert len(stub.requests) == 1  # the refused event never left

    def test_the_limit_is_the_configured_max_payload_bytes(self, stub):
        event = padded_to("hotel-a", 1, 12_000, "🧖")
        with configured(**stub.settings(), OFFER_REALTIME={"MAX_PAYLOAD_BYTES": 12_000}):
            backends.get_backend().send([event])
        assert len(stub.events()) == 1

    @pytest.mark.parametrize(
        ("event", "problem"),
        [
            (events.Event("offer-updated", "hotel-é", {}), "(?i)channel"),
            (events.Event("x" * 201, "hotel-a", {}), "name"),
            (events.Event("offer-updated", "hotel-a", {}, socket_id="not-a-socket"), "socket"),
            (events.Event("offer-updated", "private-encrypted-hotel-a", {}), "encrypted"),
        ],
    )
    def test_what_the_library_checked_is_still_checked(self, stub, event, problem):
        with configured(**stub.settings()), pytest.raises(ValueError, match=problem):
            backends.get_backend().send([event, events.offer_deleted("hotel-b", 1, "x")])
        assert stub.requests == []
