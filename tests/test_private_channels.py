"""The channel-authorization view (private and presence channels) and the socket-id ("to others") middleware."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.test import APIClient

from hotel.models import Offer
from offer_realtime import events
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_staff
from tests.pythonpath import child_pythonpath

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
        assert response.json() == {"detail": "You are not staff of this hotel."}

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
        ("body", "field"),
        [
            ({"channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "1.2"}, "channel_name"),
            ({"socket_id": "", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "not-a-socket", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "1.2.3", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "1.", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": " 1.2", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "1.2\n", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "\u0661.\u0662", "channel_name": "private-hotel-killarney"}, "socket_id"),  # Arabic digits
            ({"socket_id": "1" * 200 + ".2", "channel_name": "private-hotel-killarney"}, "socket_id"),
            ({"socket_id": "1.2", "channel_name": "private-hotel-kil larney"}, "channel_name"),
            ({"socket_id": "1.2", "channel_name": "private-hotel-" + "k" * 160}, "channel_name"),
        ],
    )
    def test_malformed_form_input_is_400_with_field_errors(self, hotel, auth_url, body, field):
        response = staff_client(hotel).post(auth_url, body)  # a form, as pusher-js posts
        assert response.status_code == 400, response.content
        assert list(response.json()) == [field] and isinstance(response.json()[field], list)

    @pytest.mark.parametrize("bad", [123.456, 7, ["1.2"], {"id": "1.2"}, None, True])
    @pytest.mark.parametrize("field", ["socket_id", "channel_name"])
    def test_json_numbers_lists_and_objects_are_400_not_500(self, hotel, auth_url, field, bad):
        body = {"socket_id": "1.2", "channel_name": "private-hotel-killarney", field: bad}
        response = staff_client(hotel).post(auth_url, body, format="json")
        assert response.status_code == 400, response.content
        assert list(response.json()) == [field]

    @pytest.mark.parametrize("raw", [b'["1.2", "private-hotel-killarney"]', b'"1.2"', b"12", b"{nope"])
    def test_a_body_that_is_not_an_object_is_400(self, hotel, auth_url, raw):
        response = staff_client(hotel).post(auth_url, raw, content_type="application/json")
        assert response.status_code == 400, response.content
        assert set(response.json()) <= {"detail", "non_field_errors"}

    @pytest.mark.parametrize("channel", ["hotel-killarney", "private-other-killarney", "presence-other-killarney"])
    def test_a_valid_channel_that_is_not_ours_is_403(self, hotel, auth_url, channel):
        response = staff_client(hotel).post(auth_url, {"socket_id": "1.2", "channel_name": channel})
        assert response.status_code == 403
        assert response.json() == {"detail": "Not a private offer channel."}

    def test_the_view_parses_forms_on_a_json_only_host(self, hotel, auth_url, monkeypatch):
        # What DEFAULT_PARSER_CLASSES = [JSONParser] does: DRF binds it to APIView at import.
        from rest_framework.parsers import JSONParser
        from rest_framework.views import APIView

        monkeypatch.setattr(APIView, "parser_classes", [JSONParser])
        response = staff_client(hotel).post(auth_url, {"socket_id": "1.2", "channel_name": "private-hotel-killarney"})
        assert response.status_code == 200, response.content
        assert response.json() == expected_auth("private-hotel-killarney", "1.2")

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

    def test_malformed_header_is_ignored_at_debug_level_only(self, hotel, settings, caplog):
        caplog.set_level(logging.DEBUG, logger="offer_realtime")
        client = staff_client(hotel)
        with capture_broadcasts() as sent:
            for value in ("evil", "1.2.3", "\u0661.\u0662"):
                client.post(
                    "/api/staff/hotel/killarney/offers/",
                    {"title": "x", "short_description": "y"},
                    format="json",
                    HTTP_X_PUSHER_SOCKET_ID=value,
                )
            APIClient().get("/api/staff/hotel/killarney/offers/", HTTP_X_PUSHER_SOCKET_ID="evil")  # anonymous
        assert [e.socket_id for e in sent] == [None, None, None]
        noted = [r for r in caplog.records if "malformed Pusher socket id" in r.getMessage()]
        assert len(noted) == 4
        assert {r.levelno for r in noted} == {logging.DEBUG}

    def test_pusher_backend_passes_socket_id(self, hotel):
        from tests.pusher_stub import PusherStub

        with PusherStub() as stub, override_settings(**stub.settings()):
            from offer_realtime.backends import get_backend

            get_backend().send([events.Event("offer-updated", "hotel-a", {"x": 1}, 1, socket_id="1.2")])
            get_backend().send(
                [events.Event("e", "hotel-a", {}, 1, socket_id="3.4"), events.Event("e", "hotel-b", {}, 2)]
            )
        [single] = stub.requests[0]["body"]["batch"]  # one event goes out as a batch of one too
        assert single["socket_id"] == "1.2"
        assert json.loads(single["data"]) == {"x": 1}
        assert [e.get("socket_id") for e in stub.requests[1]["body"]["batch"]] == ["3.4", None]

    def test_changes_from_two_browsers_merge_to_everyone(self):
        import datetime

        from offer_realtime.changes import Action, Change, coalesce

        now = datetime.datetime.now(datetime.timezone.utc)
        merged = coalesce(
            [
                Change(Action.UPDATED, 1, now, True, socket_id="1.1"),
                Change(Action.UPDATED, 1, now, True, socket_id="2.2"),
            ]
        )
        assert merged[0].socket_id is None
        same = coalesce(
            [
                Change(Action.UPDATED, 1, now, True, socket_id="1.1"),
                Change(Action.UPDATED, 1, now, True, socket_id="1.1"),
            ]
        )
        assert same[0].socket_id == "1.1"


def test_json_only_host_settings_in_a_fresh_process(tmp_path):
    """DEFAULT_PARSER_CLASSES = [JSONParser] in a real settings module: pusher-js's form still parses."""
    (tmp_path / "json_only_settings.py").write_text(
        "from tests.settings import *\n"
        "REST_FRAMEWORK = {**REST_FRAMEWORK, 'DEFAULT_PARSER_CLASSES': ['rest_framework.parsers.JSONParser']}\n"
        "OFFER_REALTIME = {'CHANNEL': 'private-hotel-{hotel_slug}', 'USER_HOTEL_SLUG': 'username'}\n"
        "PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET = '1', 'the-key', 'the-secret'\n"
    )
    script = """
import django
django.setup()
from django.contrib.auth.models import User
from rest_framework.test import APIRequestFactory, force_authenticate
from offer_realtime.views import channel_auth
# A form post, as pusher-js sends it.
request = APIRequestFactory().post("/", "socket_id=1.2&channel_name=private-hotel-killarney",
                                   content_type="application/x-www-form-urlencoded")
force_authenticate(request, user=User(pk=1, username="killarney"))
response = channel_auth(request)
response.render()
print(response.status_code, response.content.decode())
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "json_only_settings", "PYTHONPATH": child_pythonpath(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env, check=False, cwd=tmp_path
    )  # not the tree's cwd: see tests/pythonpath.py
    assert result.returncode == 0, result.stderr
    status, body = result.stdout.strip().split(" ", 1)
    assert status == "200", body
    assert json.loads(body) == expected_auth("private-hotel-killarney", "1.2")


class TestPresenceChannels:
    """presence-hotel-{hotel_slug}: the same rule as private channels, plus who the member is."""

    @pytest.fixture(autouse=True)
    def presence_mode(self):
        with override_settings(OFFER_REALTIME={"CHANNEL": "presence-hotel-{hotel_slug}"}, **CREDENTIALS):
            yield

    def signed(self, channel, socket_id, channel_data):
        to_sign = f"{socket_id}:{channel}:{channel_data}"
        return "the-key:" + hmac.new(b"the-secret", to_sign.encode(), hashlib.sha256).hexdigest()

    def test_staff_get_channel_data_with_their_id_and_name(self, hotel, auth_url):
        token = make_staff("maire", hotel)
        token.user.first_name, token.user.last_name = "Máire", "Ní Bhriain"
        token.user.save()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        response = client.post(auth_url, {"socket_id": "12.34", "channel_name": "presence-hotel-killarney"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert json.loads(body["channel_data"]) == {
            "user_id": str(token.user.pk),
            "user_info": {"name": "Máire Ní Bhriain"},
        }
        assert body["auth"] == self.signed("presence-hotel-killarney", "12.34", body["channel_data"])

    def test_the_name_falls_back_to_the_username(self, hotel, auth_url):
        response = staff_client(hotel, "seanie").post(
            auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"}
        )
        assert json.loads(response.json()["channel_data"])["user_info"] == {"name": "seanie"}

    def test_the_member_comes_from_the_presence_user_hook(self, hotel, auth_url):
        with override_settings(
            OFFER_REALTIME={
                "CHANNEL": "presence-hotel-{hotel_slug}",
                "PRESENCE_USER": "tests.test_private_channels.desk_member",
            }
        ):
            response = staff_client(hotel, "desk").post(
                auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"}
            )
        assert json.loads(response.json()["channel_data"]) == {
            "user_id": "desk-desk",
            "user_info": {"name": "desk", "role": "front desk"},
        }

    def test_staff_of_another_hotel_are_refused(self, hotel, other_hotel, auth_url):
        response = staff_client(other_hotel).post(
            auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"}
        )
        assert response.status_code == 403

    def test_events_go_to_the_presence_channel(self, hotel):
        with capture_broadcasts() as sent:
            Offer.objects.create(hotel=hotel, title="x")
        assert [e.channel for e in sent] == ["presence-hotel-killarney"]


def desk_member(request):
    """A PRESENCE_USER hook for the tests: a role next to the name."""
    return f"desk-{request.user.username}", {"name": request.user.username, "role": "front desk"}


class TestStaffPresenceChannel:
    """PRESENCE_CHANNEL (default presence-hotel-{hotel_slug}): the board's who-is-online and
    editing-marker channel, next to a private CHANNEL, signed for the hotel's staff only."""

    @pytest.fixture(autouse=True)
    def private_mode(self):
        with override_settings(OFFER_REALTIME=PRIVATE, **CREDENTIALS):
            yield

    def test_staff_of_the_hotel_get_a_presence_signature_with_channel_data(self, hotel, auth_url):
        client = staff_client(hotel, "maire")
        response = client.post(auth_url, {"socket_id": "12.34", "channel_name": "presence-hotel-killarney"})
        assert response.status_code == 200, response.content
        body = response.json()
        assert json.loads(body["channel_data"])["user_info"] == {"name": "maire"}
        signature = hmac.new(
            b"the-secret", f"12.34:presence-hotel-killarney:{body['channel_data']}".encode(), hashlib.sha256
        ).hexdigest()
        assert body["auth"] == f"the-key:{signature}"

    def test_staff_of_another_hotel_are_refused(self, hotel, other_hotel, auth_url):
        response = staff_client(other_hotel).post(
            auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"}
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "You are not staff of this hotel."}

    def test_anonymous_users_are_refused(self, hotel, auth_url):
        response = APIClient().post(auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"})
        assert response.status_code in (401, 403)

    def test_none_turns_it_off(self, hotel, auth_url):
        with override_settings(OFFER_REALTIME={**PRIVATE, "PRESENCE_CHANNEL": None}, **CREDENTIALS):
            response = staff_client(hotel).post(
                auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"}
            )
        assert response.status_code == 403
        assert response.json() == {"detail": "Not a private offer channel."}

    def test_the_template_is_configurable(self, hotel, auth_url):
        with override_settings(
            OFFER_REALTIME={**PRIVATE, "PRESENCE_CHANNEL": "presence-staff-{hotel_slug}"}, **CREDENTIALS
        ):
            client = staff_client(hotel)
            ours = client.post(auth_url, {"socket_id": "1.2", "channel_name": "presence-staff-killarney"})
            default = client.post(auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"})
        assert (ours.status_code, default.status_code) == (200, 403)

    def test_public_events_still_sign_the_presence_channel_only(self, hotel, auth_url):
        with override_settings(OFFER_REALTIME={}, **CREDENTIALS):
            client = staff_client(hotel)
            presence = client.post(auth_url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"})
            private = client.post(auth_url, {"socket_id": "1.2", "channel_name": "private-hotel-killarney"})
        assert (presence.status_code, private.status_code) == (200, 403)
