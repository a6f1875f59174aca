"""The board's server side without a browser: who may see it, what the page is told, pusher-js."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.browser.conftest import PUSHER_JS, Staff

pytestmark = pytest.mark.django_db

BOARD = "/staff/killarney/offers/live/"


def board_config(response) -> dict:
    match = re.search(rb'<script id="board-config" type="application/json">(.*?)</script>', response.content, re.DOTALL)
    assert match, response.content[:2000]
    return json.loads(match.group(1))


def logged_in(staff: Staff) -> Client:
    client = Client()
    assert client.login(username=staff.username, password=staff.password)
    return client


def test_anonymous_is_sent_to_the_login_page(hotels):
    response = Client().get(BOARD)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={BOARD}"


def test_login_page_logs_in_and_lands_on_the_own_board(staff):
    maire = staff[0]
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": maire.username, "password": maire.password})
    assert response.status_code == 302 and response["Location"] == "/staff/"
    assert client.get("/staff/")["Location"] == BOARD
    assert client.get(BOARD).status_code == 200
    wrong = Client().post("/accounts/login/", {"username": maire.username, "password": "nope"})
    assert wrong.status_code == 200 and b"did not match" in wrong.content


@pytest.mark.parametrize("url", [BOARD, "/staff/nowhere/offers/live/"])
def test_staff_of_another_hotel_get_403(staff, url):
    aoife = staff[2]  # galway
    assert logged_in(aoife).get(url).status_code == 403


def test_users_without_a_hotel_get_403(hotels):
    get_user_model().objects.create_user("guest", password="pw")
    client = Client()
    assert client.login(username="guest", password="pw")
    assert client.get(BOARD).status_code == 403
    assert client.get("/staff/").status_code == 403


def test_page_gets_the_pusher_settings_offer_realtime_sends_with(staff, settings):
    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "123", "board-key", "s3cret"
    settings.PUSHER_HOST, settings.PUSHER_PORT, settings.PUSHER_SSL = "127.0.0.1", "6001", "false"
    config = board_config(logged_in(staff[0]).get(BOARD))
    assert config == {
        "hotelSlug": "killarney",
        "key": "board-key",
        "cluster": "mt1",
        "host": "127.0.0.1",
        "port": 6001,
        "ssl": False,
        "channel": "hotel-killarney",
        "private": False,
        "presenceChannel": None,  # public mode: no presence (the board joins it in private mode)
        "authEndpoint": None,
        "socketIdHeader": "X-Pusher-Socket-ID",
        "csrfToken": config["csrfToken"],
        "apiUrl": "/api/staff/hotel/killarney/offers/",
    }
    assert "s3cret" not in json.dumps(config)


def test_private_mode_points_pusher_js_at_the_auth_endpoint(staff, settings):
    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "123", "board-key", "s3cret"
    settings.OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}
    config = board_config(logged_in(staff[0]).get(BOARD))
    assert (config["channel"], config["private"], config["authEndpoint"]) == (
        "private-hotel-killarney",
        True,
        "/api/realtime/pusher/auth/",
    )
    assert config["presenceChannel"] == "presence-hotel-killarney"


def test_private_mode_without_a_presence_channel(staff, settings):
    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "123", "board-key", "s3cret"
    settings.OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}", "PRESENCE_CHANNEL": None}
    assert board_config(logged_in(staff[0]).get(BOARD))["presenceChannel"] is None


def test_without_pusher_credentials_the_page_still_lists(staff, settings):
    config = board_config(logged_in(staff[0]).get(BOARD))
    assert config["key"] is None and config["apiUrl"] == "/api/staff/hotel/killarney/offers/"


def test_pusher_js_is_served_from_node_modules(pusher_js_installed):
    response = Client().get("/staff/assets/pusher.min.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert b"".join(response.streaming_content) == PUSHER_JS.read_bytes()
