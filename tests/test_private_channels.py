"""The channel-authorization view and the socket-id ("to others") middleware."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from hotel.models import Offer
from offer_realtime import events
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_staff

pytestmark = pytest.mark.django_db

PRIVATE = {"CHANNEL": "private-hotel-{hotel_slug}"}
CREDENTIALS = {"PUSHER_APP_ID": "1", "PUSHER_KEY": "the-key", "PUSHER_SECRET": "the-secret"}


def staff_client(hotel, name="staff"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {make_staff(name, hotel).key}")
    return client


@pytest.fixture
def auth_url(settings):
    settings.ROOT_URLCONF = "tests.urls"
    return "/realtime/pusher/auth/"


def expected_auth(channel, socket_id):
    signature = hmac.new(b"the-secret", f"{socket_id}:{channel}".encode(), hashlib.sha256).hexdigest()
    return {"auth": f"the-key:{signature}"}


class TestChannelAuth:
    @pytest.fixture(autouse=True)
    def private_mode(self):
        with override_settings(OFFER_REALTIME=PRIVATE, **CREDENTIALS):
            yield

    def test_staff_of_the_hotel_get_a_valid_signature(self, hotel, auth_url):
        response = staff_client(hotel).post(
            auth_url, {"socket_id": "123.456", "channel_name": "private-hotel-killarney"}
        )
        assert response.status_code == 200, response.content
        assert response.json() == expected_auth("private-hotel-killarney", "123.456")

    def test_staff_of_another_hotel_are_refused(self, hotel, other_hotel, auth_url):
        response = staff_client(other_hotel).post(
            auth_url, {"socket_id": "123.456", "channel_name": "private-hotel-killarney"}
        )
        assert response.status_code == 403
        assert response.json() == {"error": "You are not staff of this hotel."}

    def test_anonymous_users_are_refused(self, hotel, auth_url):
        response = APIClient().post(auth_url, {"socket_id": "123.456", "channel_name": "private-hotel-killarney"})
        assert response.status_code == 401

    def test_users_without_a_staff_profile_are_refused(self, hotel, auth_url):
        user = get_user_model().objects.create_user("guest")
        client = APIClient()
        client.force_authenticate(user)
        response = client.post(auth_url, {"socket_id": "1.2", "channel_name": "private-hotel-killarney"})
        assert response.status_code == 403

    @pytest.mark.parametrize(
        "body, status",
        [
            ({"channel_name": "private-hotel-killarney"}, 400),
            ({"socket_id": "1.2", "channel_name": "hotel-killarney"}, 403),
            ({"socket_id": "1.2", "channel_name": "private-other-killarney"}, 403),
            ({"socket_id": "not-a-socket", "channel_name": "private-hotel-killarney"}, 400),
        ],
    )
    def test_malformed_requests(self, hotel, auth_url, body, status):
        response = staff_client(hotel).post(auth_url, body)
        assert response.status_code == status
        assert "error" in response.json()

    def test_events_go_to_the_private_channel(self, hotel):
        with capture_broadcasts() as sent:
            Offer.objects.create(hotel=hotel, title="x")
        assert [e.channel for e in sent] == ["private-hotel-killarney"]


@override_settings(**CREDENTIALS)
def test_public_mode_signs_nothing(hotel, auth_url):
    response = staff_client(hotel).post(auth_url, {"socket_id": "1.2", "channel_name": "hotel-killarney"})
    assert response.status_code == 403


def test_who_is_staff_is_configurable(hotel, auth_url):
    user = get_user_model().objects.create_user("killarney")  # username doubles as hotel slug
    client = APIClient()
    client.force_authenticate(user)
    with override_settings(OFFER_REALTIME={**PRIVATE, "USER_HOTEL_SLUG": "username"}, **CREDENTIALS):
        response = client.post(auth_url, {"socket_id": "1.2", "channel_name": "private-hotel-killarney"})
    assert response.status_code == 200


def test_hotel_slug_from_channel():
    assert events.hotel_slug_from_channel("private-hotel-{hotel_slug}", "private-hotel-a.b") == "a.b"
    assert events.hotel_slug_from_channel("x-{hotel_slug}-y", "x-abc-y") == "abc"
    assert events.hotel_slug_from_channel("x-{hotel_slug}-y", "x-abc-z") is None
    assert events.hotel_slug_from_channel("fixed", "fixed") is None


class TestSocketId:
    """The originating browser's socket id travels with the events of its request."""

    def test_header_is_attached_to_the_events(self, hotel, settings):
        client = staff_client(hotel)
        with capture_broadcasts() as sent:
            response = client.post(
                "/api/staff/hotel/killarney/offers/",
                {"title": "From tab A", "short_description": "Two nights"},
                format="json",
                HTTP_X_PUSHER_SOCKET_ID="1234.5678",
            )
        assert response.status_code == 201, response.content
        assert [(e.name, e.socket_id) for e in sent] == [("offer-created", "1234.5678")]

    def test_malformed_header_is_ignored_with_a_warning(self, hotel, settings, caplog):
        with capture_broadcasts() as sent:
            staff_client(hotel).post(
                "/api/staff/hotel/killarney/offers/", {"title": "x", "short_description": "y"}, format="json",
                HTTP_X_PUSHER_SOCKET_ID="evil",
            )
        assert [e.socket_id for e in sent] == [None]
        assert "malformed Pusher socket id" in caplog.text

    def test_pusher_backend_passes_socket_id(self, hotel):
        from tests.pusher_stub import PusherStub

        with PusherStub() as stub, override_settings(**stub.settings()):
            from offer_realtime.backends import get_backend

            get_backend().send([events.Event("offer-updated", "hotel-a", {"x": 1}, 1, socket_id="1.2")])
            get_backend().send([events.Event("e", "hotel-a", {}, 1, socket_id="3.4"), events.Event("e", "hotel-b", {}, 2)])
        [single] = stub.requests[0]["body"]["batch"]  # one event goes out as a batch of one too
        assert single["socket_id"] == "1.2"
        assert json.loads(single["data"]) == {"x": 1}
        assert [e.get("socket_id") for e in stub.requests[1]["body"]["batch"]] == ["3.4", None]

    def test_changes_from_two_browsers_merge_to_everyone(self):
        import datetime

        from offer_realtime.changes import Action, Change, coalesce

        now = datetime.datetime.now(datetime.timezone.utc)
        merged = coalesce([Change(Action.UPDATED, 1, now, True, socket_id="1.1"),
                           Change(Action.UPDATED, 1, now, True, socket_id="2.2")])
        assert merged[0].socket_id is None
        same = coalesce([Change(Action.UPDATED, 1, now, True, socket_id="1.1"),
                         Change(Action.UPDATED, 1, now, True, socket_id="1.1")])
        assert same[0].socket_id == "1.1"
