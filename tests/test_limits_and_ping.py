"""Pusher's payload limit (measured in UTF-8 bytes) and the operator's ping command."""

from __future__ import annotations

import io
import logging
import socket

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from hotel.models import Offer
from offer_realtime import events
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_image
from tests.pusher_stub import PusherStub

pytestmark = pytest.mark.django_db


def test_size_is_utf8_bytes_of_the_sent_json():
    event = events.offer_deleted("hotel-a", 1, "é" * 10)
    assert event.encoded() == '{"offer_id":1,"offer_title":"' + "é" * 10 + '","action":"deleted"}'
    assert event.size() == len(event.encoded()) + 10  # é is two bytes


def sync_of(offer_id):
    """The contract payload of the offers-updated sent instead of an oversized event."""
    return {"action": "sync", "offer_id": offer_id, "reason": "too-large"}


def test_oversized_offer_sends_offers_updated_and_warns(hotel, caplog):
    # 6,000 two-byte characters: under 10,240 characters, over 10,240 bytes.
    with capture_broadcasts() as sent:
        offer = Offer.objects.create(hotel=hotel, title="Big", details_html="é" * 6000)
    assert [(e.name, e.channel, e.without_identity()) for e in sent] == [
        ("offers-updated", "hotel-killarney", sync_of(offer.pk))
    ]
    assert set(sent[0].data) == {"action", "offer_id", "reason", "event_id", "changed_at"}
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "offer-created for offer" in warning.getMessage()
    assert "over the 10240-byte limit" in warning.getMessage() and warning.offer_id == offer.pk


def test_oversized_update_keeps_its_identity_and_the_image_event(offer):
    with capture_broadcasts() as sent:
        offer.details_html = "“quoted” 😀 " * 1000
        offer.photo = make_image()
        offer.save()
    assert sent.names == ["offers-updated", "offer-image-updated"]
    assert sent[0].without_identity() == sync_of(offer.pk)
    assert sent[0].data["event_id"] != sent[1].data["event_id"]
    assert sent[0].data["changed_at"] == sent[1].data["changed_at"]


def test_just_under_the_limit_in_multibyte_characters_is_sent_whole(offer):
    """A body of emoji and typographic quotes near 10,000 UTF-8 bytes is not cut short."""
    with capture_broadcasts() as sent:
        offer.details_html = ""
        offer.title = "Spa ✨"
        offer.save()
    base = sent[0].size()
    body = ("😀“”" * 2000).encode("utf-8")[: 10_000 - base]  # 4-byte emoji, 3-byte quotes
    body = body.decode("utf-8", errors="ignore")
    with capture_broadcasts() as sent:
        offer.details_html = body
        offer.save()
    assert sent.names == ["offer-updated"]
    assert 9_990 <= sent[0].size() <= 10_000 and len(sent[0].encoded()) < 4_000
    assert sent[0].data["offer"]["details_html"] == body


def test_limit_is_configurable(hotel):
    with override_settings(OFFER_REALTIME={"MAX_PAYLOAD_BYTES": 20_000}), capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="Big", details_html="é" * 6000)
    assert sent.names == ["offer-created"]
    assert sent[0].size() > 10_240


@pytest.mark.parametrize("kind", ["image", "deleted"])
def test_any_oversized_event_becomes_offers_updated(kind, caplog):
    import datetime

    from offer_realtime.building import within_limits

    if kind == "image":
        event = events.offer_image_updated("hotel-a", 1, "x" * 11_000, "/media/x.png", datetime.datetime.now())
    else:
        event = events.offer_deleted("hotel-a", 1, "x" * 11_000)
    event = events.with_identity(event, "id-1", datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc))
    fitted = within_limits(event)
    assert (fitted.name, fitted.channel) == ("offers-updated", "hotel-a")
    assert fitted.data == {**sync_of(1), "event_id": "id-1", "changed_at": "2026-01-01T00:00:00+00:00"}
    assert "over the 10240-byte limit" in caplog.text


def test_an_event_too_large_even_as_a_sync_is_dropped_with_an_error(hotel, caplog):
    with override_settings(OFFER_REALTIME={"MAX_PAYLOAD_BYTES": 50}), capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="Any", short_description="x")
    assert list(sent) == []
    assert "not sent" in caplog.text


class TestPing:
    def test_success_reports_the_round_trip(self):
        out = io.StringIO()
        with PusherStub() as stub, override_settings(**stub.settings()):
            call_command("offer_realtime_ping", "--hotel", "killarney", stdout=out)
        assert stub.events()[0]["name"] == "offer-realtime-ping"
        assert stub.events()[0]["channel"] == "hotel-killarney"
        assert "OK: offer-realtime-ping sent on hotel-killarney via PusherBackend in" in out.getvalue()

    def test_bad_credentials(self):
        with PusherStub() as stub, override_settings(**stub.settings()):
            stub.status = 401
            with pytest.raises(CommandError, match="Bad credentials: Pusher answered 401"):
                call_command("offer_realtime_ping")

    def test_wrong_app_id_or_cluster(self):
        with PusherStub() as stub, override_settings(**stub.settings()):
            stub.status = 404
            with pytest.raises(CommandError, match="Wrong PUSHER_APP_ID, or the app lives on another cluster"):
                call_command("offer_realtime_ping")

    def test_unreachable_host(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with override_settings(
            PUSHER_APP_ID="1",
            PUSHER_KEY="k",
            PUSHER_SECRET="s",
            PUSHER_HOST="127.0.0.1",
            PUSHER_PORT=port,
            PUSHER_SSL=False,
        ):
            with pytest.raises(CommandError, match=f"Unreachable: cannot connect to 127.0.0.1:{port}"):
                call_command("offer_realtime_ping")

    def test_timeout(self):
        with PusherStub() as stub, override_settings(**stub.settings(), OFFER_REALTIME={"TIMEOUT": 0.2}):
            stub.delay = 1
            with pytest.raises(CommandError, match=r"Timed out: no answer from 127\.0\.0\.1"):
                call_command("offer_realtime_ping")

    def test_misconfiguration_and_bad_slug(self):
        with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}):
            with pytest.raises(CommandError, match="Misconfigured: The Pusher backend needs PUSHER_APP_ID"):
                call_command("offer_realtime_ping")
        with pytest.raises(CommandError, match="characters outside"):
            call_command("offer_realtime_ping", "--hotel", "bad slug")

    def test_logging_backend_succeeds_and_says_so(self):
        out = io.StringIO()
        call_command("offer_realtime_ping", stdout=out)
        assert "via LoggingBackend" in out.getvalue()
