"""Audiences end to end (issue 13): 200 seeded random writes through the background sender,
soketi and pusher-js. A guest (public channel, no auth) never receives an inactive offer or
a field outside the public serializer; staff (private channel, authorized) get everything;
both views, applying the events as the real frontend does, end equal to the API."""

from __future__ import annotations

import json
import logging
import random

import pytest
from django.db import transaction

from hotel.models import Hotel, Offer
from hotel.serializers import OfferPublicSerializer, OfferStaffSerializer
from offer_realtime import sender
from offer_realtime.events import to_json_data
from tests.conftest import make_image, make_staff
from tests.e2e.frontend_oracle import (
    PublicView,
    StaffView,
    expected_public,
    expected_staff,
    view_diff,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

logger = logging.getLogger(__name__)

SEED = 1313
WRITES = 200
SLUGS = ("killarney", "galway")
PUBLIC_FIELDS = set(OfferPublicSerializer.Meta.fields)


@pytest.fixture
def audiences(realtime, settings):
    settings.OFFER_REALTIME = {
        "CHANNEL": "private-hotel-{hotel_slug}",
        "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
    }
    yield
    sender.get_sender().flush(10)


def random_write(rng: random.Random, hotels: dict, number: int) -> None:
    """One transaction: a create, edit, (de)activation, photo change, move or delete."""
    offers = list(Offer.objects.select_related("hotel"))
    kind = rng.choice(["create"] * 3 + ["edit", "toggle", "toggle", "photo", "clear", "move", "delete", "combo"])
    if kind == "create" or not offers:
        Offer.objects.create(
            hotel=hotels[rng.choice(SLUGS)],
            title=f"Offer {number}",
            short_description="s",
            is_active=rng.random() < 0.5,
            photo=make_image(f"p{number}.png") if rng.random() < 0.3 else None,
        )
        return
    offer = rng.choice(offers)
    with transaction.atomic():
        if kind in ("edit", "combo"):
            offer.title = f"Edited {number}"
            offer.details_text = f"details {number}"
        if kind in ("toggle", "combo"):
            offer.is_active = not offer.is_active
        if kind == "photo" or (kind == "combo" and rng.random() < 0.5):
            offer.photo = make_image(f"p{number}.png")
        if kind == "clear":
            offer.photo = None
        if kind == "move":
            offer.hotel = hotels["galway" if offer.hotel.slug == "killarney" else "killarney"]
            offer.is_active = rng.random() < 0.5
        if kind == "delete":
            offer.delete()
            return
        offer.save()


def test_200_random_writes_never_leak_to_guests(audiences, live_server, subscribe):
    hotels = {slug: Hotel.objects.create(name=slug.title(), slug=slug) for slug in SLUGS}
    auth = f"{live_server.url}/realtime/pusher/auth/"
    guest = subscribe(*(f"hotel-{slug}" for slug in SLUGS))
    staff = {
        slug: subscribe(
            f"private-hotel-{slug}",
            auth_endpoint=auth,
            headers={"Authorization": f"Token {make_staff(f'staff-{slug}', hotels[slug]).key}"},
        )
        for slug in SLUGS
    }

    rng = random.Random(SEED)
    # Every committed state of every active offer, as guests may see it: after each write
    # (each is one transaction), the public data of each active offer. An event is built
    # after its write commits, from the row as it is then, maybe a few writes later; so a
    # public payload must be one of these states, whichever write it came from.
    active_states, photo_states, ever_active = set(), set(), set()

    def snapshot():
        for offer in Offer.objects.filter(is_active=True):
            data = to_json_data(OfferPublicSerializer(offer).data)
            active_states.add(json.dumps(data, sort_keys=True))
            photo_states.add((offer.pk, data["photo_url"]))
            ever_active.add(offer.pk)

    for number in range(WRITES):
        random_write(rng, hotels, number)
        snapshot()
    # Sentinels: an active offer per hotel, the last event every subscriber gets.
    ends = {
        slug: Offer.objects.create(hotel=hotels[slug], title=f"END {slug}", short_description="s") for slug in SLUGS
    }
    snapshot()
    assert sender.get_sender().flush(30)

    def received_end(channel, offer_id):
        def find(messages):
            for m in messages:
                if (
                    m.get("type") == "event"
                    and m["channel"] == channel
                    and m["event"] == "offer-created"
                    and m["data"]["offer"]["id"] == offer_id
                ):
                    return True
            return None

        return find

    for slug in SLUGS:
        guest.wait_for(received_end(f"hotel-{slug}", ends[slug].pk), 30, f"END on hotel-{slug}")
        staff[slug].wait_for(received_end(f"private-hotel-{slug}", ends[slug].pk), 30, f"END on private-hotel-{slug}")

    # -- leaks: a public payload is an active offer's state, with the public fields only
    leaks = []
    for event in guest.events:
        data = event["data"]
        if "offer" in data:
            if set(data["offer"]) != PUBLIC_FIELDS or data["offer"]["is_active"] is not True:
                leaks.append(("a field outside the public serializer", event))
            if json.dumps(data["offer"], sort_keys=True) not in active_states:
                leaks.append(("not the state of an active offer", event))
        elif event["event"] == "offer-image-updated":
            if (data["offer_id"], data["photo_url"]) not in photo_states:
                leaks.append(("the photo of an inactive offer", event))
        elif event["event"] == "offer-deleted":
            if data["offer_title"] and data["offer_id"] not in ever_active:
                leaks.append(("the title of an offer that was never active", event))
        else:
            leaks.append(("unexpected event", event))
    assert leaks == []

    # -- both real-frontend views (tests/e2e/frontend_oracle.py), from the events alone, equal the API
    for slug in SLUGS:
        rows = Offer.objects.filter(hotel=hotels[slug])

        def no_refetch():
            raise AssertionError("no offers-updated expected")

        public = PublicView([], no_refetch)
        public.apply_all(e for e in guest.events if e["channel"] == f"hotel-{slug}")
        # The public view's API: the public serializer's data of active offers.
        public_rows = to_json_data(OfferPublicSerializer(rows, many=True).data)
        assert view_diff(public.shown(), expected_public(public_rows)) == []
        board = StaffView([], no_refetch)
        board.apply_all(staff[slug].events)
        assert view_diff(board.shown(), expected_staff(to_json_data(OfferStaffSerializer(rows, many=True).data))) == []
        assert staff[slug].errors == []
    assert guest.errors == []

    # -- staff get every change; guests a subset, never an inactive offer
    staff_total = sum(len(s.events) for s in staff.values())
    counts = {
        "writes": WRITES,
        "staff events": staff_total,
        "public events": len(guest.events),
        "leaks": len(leaks),
        "offers never active": Offer.objects.exclude(pk__in=ever_active).count(),
    }
    logger.warning("audiences e2e (seed %d): %s", SEED, counts)
    print(f"\naudiences e2e (seed {SEED}): {counts}")
    assert staff_total > len(guest.events) > 0


def test_staff_see_who_changed_an_offer_and_guests_never_do(audiences, live_server, subscribe):
    """changed_by through soketi and pusher-js: on the private staff channel, never on the public one."""
    import requests

    hotel = Hotel.objects.create(name="Killarney", slug="killarney")
    token = make_staff("maire", hotel, first_name="Máire", last_name="Ní “Bhriain” 🙂")
    headers = {"Authorization": f"Token {token.key}"}
    guest = subscribe("hotel-killarney")
    staff = subscribe(
        "private-hotel-killarney", auth_endpoint=f"{live_server.url}/realtime/pusher/auth/", headers=headers
    )
    url = f"{live_server.url}/api/staff/hotel/killarney/offers/"
    created = requests.post(url, json={"title": "Spa", "short_description": "s"}, headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    pk = created.json()["id"]
    assert requests.patch(f"{url}{pk}/", json={"title": "Spa “for two”"}, headers=headers, timeout=10).ok
    # Delivered before the delete: a sender that reads the offer after it is gone rightly
    # sends no update for it (the board ends the same), which would leave two events.
    staff.wait_for_events(2, 30)
    assert requests.delete(f"{url}{pk}/", headers=headers, timeout=10).status_code == 204
    assert sender.get_sender().flush(30)
    staff.wait_for_events(3, 30)
    guest.wait_for_events(3, 30)
    who = {"id": str(token.user.pk), "name": "Máire Ní “Bhriain” 🙂"}
    assert [(e["event"], e["data"].get("changed_by")) for e in staff.events] == [
        ("offer-created", who),
        ("offer-updated", who),
        ("offer-deleted", who),
    ]
    assert [e["event"] for e in guest.events] == ["offer-created", "offer-updated", "offer-deleted"]
    assert all("changed_by" not in e["data"] for e in guest.events)
    assert staff.errors == [] and guest.errors == []
