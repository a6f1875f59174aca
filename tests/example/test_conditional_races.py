"""Lost updates under real concurrent edits: two staff members save the same offer at once.

Each pair creates a fresh offer; two clients GET it (each keeps the ``ETag``), then send
their edits at the same moment (two threads released by a barrier) to the threaded
``live_server``. Like the real staff frontend, each edit sends the whole form: client A
changes the title, client B the tag, each starting from the offer as it read it. An
update is **lost** when its request was answered 2xx but its change is not in the
offer afterwards (the other request wrote the old value back over it).

Scenarios, over ``OFFER_ETAG_PAIRS`` pairs each (default 20):

- ``no-if-match``: the requests carry no ``If-Match`` (what clients did before, and may
  still do): both succeed and one update is lost in every pair. Kept as the baseline.
- ``if-match``: both carry the ``ETag`` they read: exactly one 200 and one 412 per pair,
  the 412's body is the offer as the winner left it, no update is lost, one event.
- ``if-match-photo``: the same, A's edit being a multipart PATCH with a new photo.
- ``if-match-unlocked``: the same requests to a test-only copy of the view that
  compares the ETag with the row read *without* the lock (``lock_object`` overridden):
  updates are lost again (PostgreSQL) or fail with "database is locked" (SQLite), which
  shows the lock is what makes the comparison safe.
- ``generic-if-match`` / ``generic-if-match-unlocked``: the same two on a plain DRF
  viewset with the mixin's own lock (the example's serializer locks the row itself).

Run on SQLite (default) and PostgreSQL (``DATABASE_URL=postgres://...``); ``-s`` shows
one tally line per scenario::

    PYTHONPATH=$PWD:$PWD/example_project pytest tests/example/test_conditional_races.py -s
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from django.db import connection
from django.urls import include, path
from rest_framework import serializers, viewsets
from rest_framework.authentication import TokenAuthentication
from rest_framework.routers import SimpleRouter

from example_project.urls import urlpatterns as example_urlpatterns
from hotel.models import Offer
from hotel.staff_views import StaffOfferViewSet
from offer_realtime.conditional import ConditionalUpdateMixin
from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, make_staff

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

PAIRS = int(os.environ.get("OFFER_ETAG_PAIRS", "20"))
JPEG = image_bytes("JPEG", (32, 32))


#: Holds each unlocked read until the pair's other request has read too: the window an
#: unlocked comparison leaves open is then always hit, not only when the threads happen
#: to interleave (on a busy machine one request could finish before the other began).
_BOTH_READ = threading.Barrier(2, timeout=5)


def _read_unlocked(view: Any, instance: Any) -> Any:
    row = view.get_queryset().get(pk=instance.pk)
    try:
        _BOTH_READ.wait()
    except threading.BrokenBarrierError:  # the other request did not get here: no race this time
        _BOTH_READ.reset()
    return row


class UnlockedOfferViewSet(StaffOfferViewSet):
    """Test-only: the ETag is compared with the row read afresh but NOT locked (the race window reopens)."""

    serializer_checks_precondition = False

    def lock_object(self, instance: Any) -> Any:
        return _read_unlocked(self, instance)


class PlainOfferSerializer(serializers.ModelSerializer):
    """A plain ModelSerializer, with no locking of its own."""

    class Meta:
        model = Offer
        fields = ["id", "title", "short_description", "tag", "sort_order", "is_active"]


class GenericOfferViewSet(ConditionalUpdateMixin, viewsets.ModelViewSet):
    """The mixin with its own row lock (``lock_object``), on a plain DRF viewset."""

    serializer_class = PlainOfferSerializer
    authentication_classes = [TokenAuthentication]

    def get_queryset(self):
        return Offer.objects.filter(hotel__slug=self.kwargs["hotel_slug"])


class GenericUnlockedOfferViewSet(GenericOfferViewSet):
    """Test-only: as above, the row read afresh but NOT locked."""

    def lock_object(self, instance: Any) -> Any:
        return _read_unlocked(self, instance)


_router = SimpleRouter(use_regex_path=False)
_router.register("hotel/<slug:hotel_slug>/unlocked-offers", UnlockedOfferViewSet, basename="unlocked-offer")
_router.register("hotel/<slug:hotel_slug>/generic-offers", GenericOfferViewSet, basename="generic-offer")
_router.register(
    "hotel/<slug:hotel_slug>/generic-unlocked-offers", GenericUnlockedOfferViewSet, basename="generic-unlocked-offer"
)
urlpatterns = [*example_urlpatterns, path("api/staff/", include(_router.urls))]


def form(offer: dict, **changes: Any) -> dict:
    """The whole edit form as JSON, as the frontend sends it: every field as read ("" for empty), plus the changes."""
    body = {
        key: "" if value is None else value for key, value in offer.items() if key not in ("id", "created_at", "photo")
    }
    return {**body, **changes}


@dataclass
class Tally:
    """What happened over the pairs of one scenario."""

    pairs: int = 0
    lost: int = 0
    server_errors: int = 0
    stale_412_bodies: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self, scenario: str) -> str:
        """One summary line for the test output."""
        return (
            f"{scenario} ({connection.vendor}): {self.pairs} pairs, lost updates={self.lost} "
            f"server_errors={self.server_errors} stale_412_bodies={self.stale_412_bodies} "
            f"statuses={dict(sorted(self.statuses.items()))}"
        )


class Client:
    """One HTTP client (own connection pool) per racing thread, authenticated by token."""

    def __init__(self, base_url: str, token: str, collection: str) -> None:
        self.base = f"{base_url}/api/staff/hotel/killarney/{collection}/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def get(self, offer_id: int) -> requests.Response:
        return self.session.get(f"{self.base}{offer_id}/", timeout=30)

    def patch(self, offer_id: int, body: dict, if_match: str | None, photo: bool = False) -> requests.Response:
        headers = {} if if_match is None else {"If-Match": if_match}
        if photo:  # multipart: the non-empty fields and the file
            data = {key: value for key, value in body.items() if value != "" and key != "photo_url"}
            files = {"photo": ("race.jpg", JPEG, "image/jpeg")}
            return self.session.patch(f"{self.base}{offer_id}/", data=data, files=files, headers=headers, timeout=30)
        return self.session.patch(f"{self.base}{offer_id}/", json=body, headers=headers, timeout=30)


#: scenario -> (collection, send If-Match, A sends a photo)
SCENARIOS = {
    "no-if-match": ("offers", False, False),
    "if-match": ("offers", True, False),
    "if-match-photo": ("offers", True, True),
    "if-match-unlocked": ("unlocked-offers", True, False),
    "generic-if-match": ("generic-offers", True, False),
    "generic-if-match-unlocked": ("generic-unlocked-offers", True, False),
}


def _send(
    barrier: threading.Barrier, client: Client, offer_id: int, body: dict, etag: str | None, photo: bool
) -> requests.Response:
    barrier.wait()
    return client.patch(offer_id, body, etag, photo)


def run_pairs(live_server, killarney, scenario: str) -> tuple[Tally, list[int]]:
    """Race ``PAIRS`` pairs of edits; return the tally and the number of events each pair sent."""
    collection, conditional, photo = SCENARIOS[scenario]
    token = make_staff(f"racer-{scenario}", killarney).key
    a, b = Client(live_server.url, token, collection), Client(live_server.url, token, collection)
    tally, events = Tally(), []
    with capture_broadcasts() as sent:
        for n in range(PAIRS):
            offer = Offer.objects.create(hotel=killarney, title=f"Pair {n}", short_description="x", tag="old")
            read_a, read_b = a.get(offer.pk), b.get(offer.pk)
            assert read_a.status_code == read_b.status_code == 200
            # Before ConditionalUpdateMixin there was no ETag: the header was sent anyway and ignored.
            etag_a = read_a.headers.get("ETag", '"none"') if conditional else None
            etag_b = read_b.headers.get("ETag", '"none"') if conditional else None
            body_a = form(read_a.json(), title=f"A{n}")
            body_b = form(read_b.json(), tag=f"B{n}")
            sent.clear()
            barrier = threading.Barrier(2)

            with ThreadPoolExecutor(2) as pool:
                futures = [
                    pool.submit(_send, barrier, a, offer.pk, body_a, etag_a, photo),
                    pool.submit(_send, barrier, b, offer.pk, body_b, etag_b, False),
                ]
                response_a, response_b = (future.result() for future in futures)

            offer.refresh_from_db()
            tally.pairs += 1
            for name, response in (("A", response_a), ("B", response_b)):
                key = f"{name}:{response.status_code}"
                tally.statuses[key] = tally.statuses.get(key, 0) + 1
                tally.server_errors += response.status_code >= 500
            tally.lost += response_a.ok and offer.title != f"A{n}"
            tally.lost += response_b.ok and offer.tag != f"B{n}"
            current = a.get(offer.pk).json()
            for response in (response_a, response_b):
                if response.status_code == 412 and response.json() != current:
                    tally.stale_412_bodies += 1
            events.append(len(sent))
    return tally, events


def test_without_if_match_every_pair_loses_an_update_as_before(live_server, killarney):
    tally, events = run_pairs(live_server, killarney, "no-if-match")
    print("\n" + tally.line("no-if-match"))

    # Unchanged behaviour for clients that send no If-Match: both saves succeed, and the
    # one that commits second writes the other's field back to what it read.
    assert tally.statuses == {"A:200": PAIRS, "B:200": PAIRS}, tally.line("no-if-match")
    assert tally.lost == PAIRS
    assert events == [2] * PAIRS


@pytest.mark.parametrize("scenario", ["if-match", "if-match-photo", "generic-if-match"])
def test_with_if_match_exactly_one_of_each_pair_wins_and_no_update_is_lost(live_server, killarney, scenario):
    tally, events = run_pairs(live_server, killarney, scenario)
    print("\n" + tally.line(scenario))

    wins = tally.statuses.get("A:200", 0) + tally.statuses.get("B:200", 0)
    conflicts = tally.statuses.get("A:412", 0) + tally.statuses.get("B:412", 0)
    assert (wins, conflicts, tally.server_errors) == (PAIRS, PAIRS, 0), tally.line(scenario)
    assert tally.lost == 0, tally.line(scenario)
    # The loser is shown the offer as the winner left it; only the winner's change is broadcast.
    assert tally.stale_412_bodies == 0, tally.line(scenario)
    expected_events = 2 if scenario == "if-match-photo" else 1  # A's photo save adds offer-image-updated
    assert all(count in (1, expected_events) for count in events), events


@pytest.mark.parametrize("scenario", ["if-match-unlocked", "generic-if-match-unlocked"])
def test_comparing_without_the_row_lock_loses_updates(live_server, killarney, scenario):
    tally, _ = run_pairs(live_server, killarney, scenario)
    print("\n" + tally.line(scenario))

    # Both requests can read the same version, both pass the comparison, and the second
    # write then overwrites the first (PostgreSQL), or cannot start on SQLite, whose
    # snapshot is stale ("database is locked", 500). Either way the lock is what prevents it.
    assert tally.lost + tally.server_errors > 0, tally.line(scenario)
