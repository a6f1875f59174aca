"""Presence channels end to end: pusher-js joins presence-hotel-<slug> through soketi,
authorized by the live server's channel-authorization view, and sees who is there."""

from __future__ import annotations

import pytest
from rest_framework.parsers import JSONParser
from rest_framework.views import APIView

from hotel.models import Hotel, Offer
from tests.conftest import make_staff
from tests.e2e.harness import SubscriptionError

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHANNEL = "presence-hotel-killarney"


@pytest.fixture
def presence(realtime, settings, monkeypatch):
    """Presence channels, on a host whose DRF accepts JSON only (pusher-js posts a form)."""
    settings.OFFER_REALTIME = {"CHANNEL": "presence-hotel-{hotel_slug}"}
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    }
    # DRF reads DEFAULT_PARSER_CLASSES into APIView once, at import; do what a JSON-only host's import did.
    monkeypatch.setattr(APIView, "parser_classes", [JSONParser])


@pytest.fixture
def hotels(db):
    return Hotel.objects.create(name="Killarney", slug="killarney"), Hotel.objects.create(name="Galway", slug="galway")


def member(hotel, username, first_name="", last_name=""):
    token = make_staff(username, hotel, first_name=first_name, last_name=last_name)
    return str(token.user.pk), {"Authorization": f"Token {token.key}"}


def test_staff_join_see_each_other_and_receive_events(presence, live_server, subscribe, hotels):
    killarney, galway = hotels
    auth = f"{live_server.url}/realtime/pusher/auth/"
    maire_id, maire_headers = member(killarney, "maire", "Máire", "Ní Bhriain")
    seanie_id, seanie_headers = member(killarney, "seanie")
    _, galway_headers = member(galway, "galway-staff")

    maire = subscribe(CHANNEL, auth_endpoint=auth, headers=maire_headers)
    assert maire.members(CHANNEL) == {maire_id: {"name": "Máire Ní Bhriain"}}
    subscribed = next(m for m in maire.messages if m["type"] == "subscribed")
    assert subscribed["me"] == {"id": maire_id, "info": {"name": "Máire Ní Bhriain"}}

    seanie = subscribe(CHANNEL, auth_endpoint=auth, headers=seanie_headers)
    everyone = {maire_id: {"name": "Máire Ní Bhriain"}, seanie_id: {"name": "seanie"}}
    assert seanie.members(CHANNEL) == everyone
    assert maire.wait_for_members(CHANNEL, everyone) == everyone

    # Staff of another hotel and anonymous clients are refused by the same endpoint.
    for headers, statuses in ((galway_headers, {403}), (None, {401, 403})):
        outsider = subscribe(CHANNEL, auth_endpoint=auth, headers=headers, wait=False)
        with pytest.raises(SubscriptionError) as refused:
            outsider.wait_subscribed(CHANNEL)
        assert refused.value.status in statuses

    Offer.objects.create(hotel=killarney, title="For the members")
    for client in (maire, seanie):
        [event] = client.wait_for_events(1)
        assert (event["channel"], event["event"], event["data"]["offer"]["title"]) == (
            CHANNEL,
            "offer-created",
            "For the members",
        )

    seanie.stop()
    assert maire.wait_for_members(CHANNEL, [maire_id]) == {maire_id: {"name": "Máire Ní Bhriain"}}
