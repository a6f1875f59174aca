"""Concurrent writes to one offer, over real HTTP, against a live server.

Each race creates a fresh offer (with a stored photo), then sends two requests to it at
the same moment from two client threads (released together by a barrier) to the
threaded ``live_server``, and afterwards checks what a user could see go wrong:

- **resurrected**: the DELETE answered 204 but the offer exists again (Django's
  UPDATE-then-INSERT ``save()`` re-creating a row another request deleted);
- **dangling**: the offer's row names a photo file that is not in storage;
- **orphaned**: a stored file that no offer row names (never deleted, never shown);
- **server errors**: any 5xx answer (e.g. SQLite's "database is locked").

All four must be zero over ``OFFER_RACES`` races per scenario (default 40). Run on
SQLite (the default) and on PostgreSQL (``DATABASE_URL=postgres://...``)::

    PYTHONPATH=$PWD:$PWD/example_project pytest tests/example/test_races.py -s

``-s`` shows one tally line per scenario.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
from django.core.files.base import ContentFile

from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, make_staff, stored_files

pytestmark = pytest.mark.django_db(transaction=True)

RACES = int(os.environ.get("OFFER_RACES", "40"))

PNG = image_bytes("PNG", (32, 32))
JPEG = image_bytes("JPEG", (32, 32))


@dataclass
class Tally:
    """What went wrong over the races of one scenario."""

    races: int = 0
    resurrected: int = 0
    dangling: int = 0
    orphaned: int = 0
    server_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def line(self, scenario: str) -> str:
        """One summary line for the test output."""
        return (
            f"{scenario}: {self.races} races, resurrected={self.resurrected} dangling={self.dangling} "
            f"orphaned={self.orphaned} server_errors={self.server_errors} "
            f"statuses={dict(sorted(self.statuses.items()))}"
        )


class Client:
    """One HTTP client (own connection pool) per racing thread, authenticated by token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base = f"{base_url}/api/staff/hotel/killarney/offers/"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def patch_json(self, offer_id: int) -> requests.Response:
        return self.session.patch(f"{self.base}{offer_id}/", json={"title": "Renamed in a race"}, timeout=30)

    def patch_photo(self, offer_id: int) -> requests.Response:
        return self.session.patch(
            f"{self.base}{offer_id}/",
            data={"title": "New photo in a race"},
            files={"photo": ("patched.jpg", JPEG, "image/jpeg")},
            timeout=30,
        )

    def upload(self, offer_id: int) -> requests.Response:
        return self.session.post(
            f"{self.base}{offer_id}/upload-image/", files={"photo": ("uploaded.png", PNG, "image/png")}, timeout=30
        )

    def delete(self, offer_id: int) -> requests.Response:
        return self.session.delete(f"{self.base}{offer_id}/", timeout=30)


#: scenario -> (first request, second request), as names of Client methods.
SCENARIOS = {
    "patch-vs-delete": ("patch_json", "delete"),
    "patch-photo-vs-delete": ("patch_photo", "delete"),
    "patch-vs-upload": ("patch_json", "upload"),
    "patch-photo-vs-upload": ("patch_photo", "upload"),
    "delete-vs-upload": ("delete", "upload"),
}


def _race(clients: tuple[Client, Client], calls: tuple[str, str], offer_id: int) -> list[requests.Response]:
    barrier = threading.Barrier(2)

    def run(client: Client, name: str) -> requests.Response:
        method: Callable[[int], requests.Response] = getattr(client, name)
        barrier.wait()
        return method(offer_id)

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run, client, name) for client, name in zip(clients, calls, strict=True)]
        return [future.result() for future in futures]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_concurrent_writes_to_one_offer(live_server, killarney, media_root, scenario):
    from hotel.models import Offer

    token = make_staff("racer", killarney).key
    clients = (Client(live_server.url, token), Client(live_server.url, token))
    calls = SCENARIOS[scenario]
    tally = Tally()

    with capture_broadcasts() as sent:
        for race in range(RACES):
            offer = Offer.objects.create(hotel=killarney, title=f"Race {race}", short_description="x")
            offer.photo.save(f"race-{race}.png", ContentFile(PNG), save=True)
            sent.clear()

            responses = _race(clients, calls, offer.pk)

            tally.races += 1
            for name, response in zip(calls, responses, strict=True):
                key = f"{name}:{response.status_code}"
                tally.statuses[key] = tally.statuses.get(key, 0) + 1
                tally.server_errors += response.status_code >= 500
            deleted = any(name == "delete" and r.status_code == 204 for name, r in zip(calls, responses, strict=True))
            row = Offer.objects.filter(pk=offer.pk).first()
            if deleted and row is not None:
                tally.resurrected += 1
                assert [e.name for e in sent][-2:] == ["offer-deleted", "offer-created"]
            if row is not None and row.photo.name and not row.photo.storage.exists(row.photo.name):
                tally.dangling += 1
            referenced = {name for name in Offer.objects.values_list("photo", flat=True) if name}
            orphans = [name for name in stored_files(media_root) if name not in referenced]
            tally.orphaned += len(orphans)
            # Each race starts clean, so one race's leftovers are counted once.
            for name in orphans:
                (media_root / name).unlink()
            Offer.objects.filter(pk=offer.pk).delete()

    print("\n" + tally.line(scenario))
    assert (tally.resurrected, tally.dangling, tally.orphaned, tally.server_errors) == (0, 0, 0, 0), tally.line(
        scenario
    )
