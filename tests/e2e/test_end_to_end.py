"""End to end: the seed's curl flow over HTTP, through soketi, to pusher-js."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
import requests
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import Client
from PIL import Image

from hotel.models import Hotel, Offer
from hotel.serializers import OfferStaffSerializer
from offer_realtime.events import to_json_data
from tests.conftest import make_staff
from tests.e2e.conftest import record_latencies, shared_database_url
from tests.e2e.harness import SubscriptionError

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def staff_token(hotel: Hotel, username: str) -> str:
    # Also an admin user: one test edits through the admin.
    return make_staff(username, hotel, is_staff=True, is_superuser=True).key


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def committed(offer_id) -> dict:
    return to_json_data(OfferStaffSerializer(Offer.objects.get(pk=offer_id)).data)


def contract(event: dict) -> dict:
    """The payload without the identity keys delivery adds."""
    return {k: v for k, v in event["data"].items() if k not in ("event_id", "changed_at")}


@pytest.fixture
def hotels(db):
    return Hotel.objects.create(name="Killarney", slug="killarney"), Hotel.objects.create(name="Galway", slug="galway")


def test_seed_curl_flow_reaches_pusher_js(realtime, live_server, subscribe, hotels, commit_clock):
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    other_hotel = subscribe("hotel-galway")
    api = f"{live_server.url}/api/staff/hotel/killarney/offers/"
    auth = {"Authorization": f"Token {staff_token(killarney, 'maire')}"}

    # curl -X POST .../offers/ -H "Content-Type: application/json" -d '{...}'
    created = requests.post(
        api, json={"title": "Test Offer", "short_description": "Test", "is_active": True}, headers=auth, timeout=10
    )
    assert created.status_code == 201, created.text
    offer_id = created.json()["id"]
    [event] = watcher.wait_for_events(1)
    assert (event["channel"], event["event"]) == ("hotel-killarney", "offer-created")
    assert contract(event) == {"offer": committed(offer_id), "action": "created"}

    # curl -X POST .../offers/1/upload-image/ -F "photo=@image.jpg"
    uploaded = requests.post(
        f"{api}{offer_id}/upload-image/",
        files={"photo": ("image.png", png_bytes(), "image/png")},
        headers=auth,
        timeout=10,
    )
    assert uploaded.status_code == 200, uploaded.text
    event = watcher.wait_for_events(2)[1]
    assert event["event"] == "offer-image-updated"
    stored = Offer.objects.get(pk=offer_id)
    assert contract(event) == {
        "offer_id": offer_id,
        "offer_title": "Test Offer",
        "photo_url": stored.photo.url,
        "timestamp": event["data"]["changed_at"],
        "action": "image-updated",
    }

    # curl -X PATCH .../offers/1/ -d '{"title":"Updated Title"}'
    patched = requests.patch(f"{api}{offer_id}/", json={"title": "Updated Title"}, headers=auth, timeout=10)
    assert patched.status_code == 200, patched.text
    event = watcher.wait_for_events(3)[2]
    assert event["event"] == "offer-updated"
    assert contract(event) == {"offer": committed(offer_id), "action": "updated"}
    assert event["data"]["offer"]["title"] == "Updated Title"

    # curl -X DELETE .../offers/1/
    deleted = requests.delete(f"{api}{offer_id}/", headers=auth, timeout=10)
    assert deleted.status_code == 204
    received = watcher.wait_for_events(4)
    assert contract(received[3]) == {"offer_id": offer_id, "offer_title": "Updated Title", "action": "deleted"}

    assert [e["event"] for e in received] == ["offer-created", "offer-image-updated", "offer-updated", "offer-deleted"]
    assert len({e["data"]["event_id"] for e in received}) == 4
    record_latencies(commit_clock, received)
    # Galway's staff saw none of it (checked after Killarney's last event arrived).
    assert other_hotel.events == []


def test_admin_edit_and_shell_save_arrive(realtime, subscribe, hotels):
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    offer = Offer.objects.create(hotel=killarney, title="From a shell")  # a script's save
    staff_token(killarney, "admin")
    admin = Client()
    assert admin.login(username="admin", password="pw")
    response = admin.post(
        f"/admin/hotel/offer/{offer.pk}/change/",
        {
            "hotel": killarney.pk,
            "title": "From the admin",
            "short_description": "Two nights",
            "details_text": "",
            "details_html": "",
            "tag": "",
            "book_now_url": "",
            "is_active": "on",
            "sort_order": 0,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    received = watcher.wait_for_events(2)
    assert [(e["event"], e["data"]["offer"]["title"]) for e in received] == [
        ("offer-created", "From a shell"),
        ("offer-updated", "From the admin"),
    ]


def test_an_offer_moved_in_the_admin_leaves_one_board_and_joins_the_other(realtime, subscribe, hotels):
    killarney, galway = hotels
    old_board, new_board = subscribe("hotel-killarney"), subscribe("hotel-galway")
    offer = Offer.objects.create(hotel=killarney, title="Spa", short_description="Two nights")
    old_board.wait_for_events(1)
    staff_token(killarney, "admin")
    admin = Client()
    assert admin.login(username="admin", password="pw")
    response = admin.post(
        f"/admin/hotel/offer/{offer.pk}/change/",
        {
            "hotel": galway.pk,
            "title": "Spa",
            "short_description": "Two nights",
            "details_text": "",
            "details_html": "",
            "tag": "",
            "book_now_url": "",
            "is_active": "on",
            "sort_order": 0,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    [left] = old_board.wait_for_events(1, event="offer-deleted")
    [joined] = new_board.wait_for_events(1)
    assert contract(left) == {"offer_id": offer.pk, "offer_title": "Spa", "action": "deleted"}
    assert (joined["event"], contract(joined)) == ("offer-created", {"offer": committed(offer.pk), "action": "created"})
    from offer_realtime import sender

    sender.get_sender().flush(5)
    assert [e["event"] for e in old_board.events] == ["offer-created", "offer-deleted"]
    assert [e["event"] for e in new_board.events] == ["offer-created"]


def test_manage_py_shell_save_arrives(realtime, subscribe, hotels):
    """A real `manage.py shell -c` process: its own interpreter, its own sender thread."""
    watcher = subscribe("hotel-killarney")
    pusher = {k: str(v) for k, v in realtime.pusher_settings().items()}
    env = {**os.environ, "DATABASE_URL": shared_database_url(), **pusher}
    # The example project as a user runs it: its own settings, the default (background)
    # delivery, so the event goes out when the sender flushes at interpreter exit.
    env.update(PUSHER_SSL="false", DJANGO_SETTINGS_MODULE="example_project.settings")
    env.pop("OFFER_REALTIME_DELIVERY", None)
    code = (
        "from hotel.models import Hotel, Offer; "
        "Offer.objects.create(hotel=Hotel.objects.get(slug='killarney'), title='From manage.py shell')"
    )
    subprocess.run([sys.executable, "example_project/manage.py", "shell", "-c", code], env=env, check=True, timeout=60)
    [event] = watcher.wait_for_events(1)
    assert (event["event"], event["data"]["offer"]["title"]) == ("offer-created", "From manage.py shell")


def test_rolled_back_write_never_arrives(realtime, subscribe, hotels):
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside atomic() is the rollback under test
        with transaction.atomic():
            Offer.objects.create(hotel=killarney, title="rolled back")
            raise RuntimeError
    Offer.objects.create(hotel=killarney, title="committed afterwards")
    received = watcher.wait_for_events(1)
    from offer_realtime import sender

    sender.get_sender().flush(5)
    assert [e["data"]["offer"]["title"] for e in watcher.events] == ["committed afterwards"]
    assert len(received) == 1


def utf8_size(data: dict) -> int:
    """Bytes of ``data`` as Pusher measures it: compact JSON, UTF-8, characters kept."""
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def test_oversized_offer_arrives_as_offers_updated(realtime, subscribe, hotels, caplog):
    """Over 10,240 bytes: the real frontend gets its own refetch signal, never a stub offer."""
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    offer = Offer.objects.create(hotel=killarney, title="Huge", details_html="x" * 12_000)
    [event] = watcher.wait_for_events(1)
    assert (event["channel"], event["event"]) == ("hotel-killarney", "offers-updated")
    assert contract(event) == {"action": "sync", "offer_id": offer.pk, "reason": "too-large"}
    assert event["data"]["event_id"] and event["data"]["changed_at"]
    assert any(r.levelno == logging.WARNING and "over the 10240-byte limit" in r.getMessage() for r in caplog.records)


def test_a_10000_byte_multibyte_offer_arrives_whole(realtime, subscribe, hotels):
    """Emoji (4 bytes) and typographic quotes (3 bytes): near the limit in bytes, far under it
    in characters; under the limit, the offer arrives whole, byte for byte."""
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    offer = Offer.objects.create(hotel=killarney, title="“Sea” ✨", short_description="Two nights")
    [created] = watcher.wait_for_events(1)
    # offer-updated differs from this offer-created only by details_html ("updated" and
    # "created" have the same length, as have the identity keys).
    room = 10_000 - utf8_size(created["data"])
    body = ("😀“”" * 2_000).encode("utf-8")[:room].decode("utf-8", errors="ignore")
    offer.details_html = body
    offer.save()
    updated = watcher.wait_for_events(2)[1]
    assert updated["event"] == "offer-updated"
    assert updated["data"]["offer"] == committed(offer.pk)
    assert updated["data"]["offer"]["details_html"] == body
    assert 9_990 <= utf8_size(updated["data"]) <= 10_000
    assert len(json.dumps(updated["data"], ensure_ascii=False)) < 5_000  # characters


def test_soketi_enforces_pushers_limit_when_we_raise_ours(realtime, subscribe, hotels, settings, caplog):
    """The same wall production has: a 10 KB+ event is refused by the server (413)."""
    killarney, _ = hotels
    watcher = subscribe("hotel-killarney")
    settings.OFFER_REALTIME = {"MAX_PAYLOAD_BYTES": 50_000, "DELIVERY": "inline"}
    Offer.objects.create(hotel=killarney, title="Huge", details_html="x" * 12_000)
    assert "PusherBadStatus: 413" in caplog.text
    Offer.objects.create(hotel=killarney, title="small")
    [event] = watcher.wait_for_events(1)
    assert event["data"]["offer"]["title"] == "small"


class TestPrivateChannels:
    @pytest.fixture(autouse=True)
    def private(self, realtime, settings):
        settings.OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}

    def auth(self, live_server):
        return f"{live_server.url}/realtime/pusher/auth/"

    def test_staff_of_the_hotel_subscribe_and_receive(self, live_server, subscribe, hotels):
        killarney, galway = hotels
        staff_a = subscribe(
            "private-hotel-killarney",
            auth_endpoint=self.auth(live_server),
            headers={"Authorization": f"Token {staff_token(killarney, 'a')}"},
        )
        staff_b = subscribe(
            "private-hotel-killarney",
            auth_endpoint=self.auth(live_server),
            headers={"Authorization": f"Token {staff_token(galway, 'b')}"},
            wait=False,
        )
        anonymous = subscribe("private-hotel-killarney", auth_endpoint=self.auth(live_server), wait=False)
        for refused in (staff_b, anonymous):
            with pytest.raises(SubscriptionError) as excinfo:
                refused.wait_subscribed("private-hotel-killarney")
            assert excinfo.value.status in (401, 403)
        Offer.objects.create(hotel=killarney, title="Private")
        [event] = staff_a.wait_for_events(1)
        assert (event["channel"], event["data"]["offer"]["title"]) == ("private-hotel-killarney", "Private")
        from offer_realtime import sender

        sender.get_sender().flush(5)
        assert staff_b.events == [] and anonymous.events == []

    def test_public_channel_gets_nothing_in_private_mode(self, subscribe, hotels):
        killarney, _ = hotels
        public = subscribe("hotel-killarney")
        private_watcher_offer = Offer.objects.create(hotel=killarney, title="Private")
        from offer_realtime import sender

        sender.get_sender().flush(5)
        assert private_watcher_offer.pk and public.events == []


def test_to_others_skips_the_originating_tab(realtime, live_server, subscribe, hotels, settings):
    killarney, _ = hotels
    assert "offer_realtime.middleware.SocketIdMiddleware" in settings.MIDDLEWARE  # the example has it
    tab_a = subscribe("hotel-killarney")
    tab_b = subscribe("hotel-killarney")
    token = staff_token(killarney, "writer")
    response = requests.post(
        f"{live_server.url}/api/staff/hotel/killarney/offers/",
        json={"title": "From tab A", "short_description": "Two nights"},
        headers={"Authorization": f"Token {token}", "X-Pusher-Socket-ID": tab_a.socket_id},
        timeout=10,
    )
    assert response.status_code == 201
    [event] = tab_b.wait_for_events(1)
    assert event["data"]["offer"]["title"] == "From tab A"
    # A later write without the header reaches both: tab A was skipped only for its own.
    requests.post(
        f"{live_server.url}/api/staff/hotel/killarney/offers/",
        json={"title": "From a script", "short_description": "Two nights"},
        headers={"Authorization": f"Token {token}"},
        timeout=10,
    )
    tab_b.wait_for_events(2)
    [seen_by_a] = tab_a.wait_for_events(1)
    assert seen_by_a["data"]["offer"]["title"] == "From a script"


class TestPing:
    def test_ping_reaches_soketi_and_a_subscriber(self, realtime, subscribe):
        watcher = subscribe("hotel-ping-check")
        out = io.StringIO()
        call_command("offer_realtime_ping", "--hotel", "ping-check", stdout=out)
        assert "OK: offer-realtime-ping sent on hotel-ping-check via PusherBackend in" in out.getvalue()
        [event] = watcher.wait_for_events(1)
        assert event["event"] == "offer-realtime-ping"

    def test_ping_with_a_wrong_secret(self, realtime, settings):
        settings.PUSHER_SECRET = "wrong"
        with pytest.raises(CommandError, match="Bad credentials: Pusher answered 401"):
            call_command("offer_realtime_ping")
