"""offers_live.js under Node: the real events of overlapping writers, replayed in hundreds of orders.

The same writer processes as the Chromium convergence test (``tests/browser/writer.py``)
write; their events are then replayed by ``tests/browser/replay_events.cjs`` through the
shared client code of the board and the guest page in 300 random orders per seed, about
one event in ten delivered twice. Every order must end on the final staff and public lists,
without a single fetch.
"""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess

import pytest
from django.test import Client
from django.utils import timezone

from hotel.models import Offer
from tests.browser.conftest import REPO, run_writers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PERMUTATIONS = 300


def micros(moment: datetime.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def lists(staff) -> tuple[list, list, int]:
    """The staff and the public list of killarney, and a time after both were read (microseconds)."""
    client = Client()
    assert client.login(username=staff.username, password=staff.password)
    staff_list = client.get("/api/staff/hotel/killarney/offers/").json()
    public = Client().get("/api/public/hotels/killarney/offers/")
    return staff_list, public.json(), micros(timezone.now())


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_order_of_the_events_ends_on_the_api(seed, staff, tmp_path):
    node = shutil.which("node")
    assert node, "Node is needed (it runs soketi for the other browser tests too)"
    maire = staff[0]
    for i in range(5):
        Offer.objects.create(hotel=maire.hotel, title=f"Offer {i}", short_description="x", is_active=i != 4)
    initial_staff, initial_public, stamp = lists(maire)

    events, done = run_writers(seed, tmp_path)  # they start writing seconds after `stamp`
    assert done["photo"] and done["delete"] and done["move_away"] and done["move_back"], done
    final_staff, final_public, _ = lists(maire)
    replay = {
        "initial": {"staff": initial_staff, "public": initial_public, "stamp": stamp},
        "events": [{"name": e["name"], "data": e["data"]} for e in events if e["channel"] == "hotel-killarney"],
        "final": {"staff": final_staff, "public": final_public},
        "permutations": PERMUTATIONS,
        "seed": seed,
    }
    result = subprocess.run(
        [node, str(REPO / "tests" / "browser" / "replay_events.cjs")],
        input=json.dumps(replay),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcome = json.loads(result.stdout)
    assert outcome["runs"] == PERMUTATIONS and outcome["redelivered"] > PERMUTATIONS
    assert outcome["failed"] == 0, outcome["failures"]
    # Not a vacuous pass: the writes changed the lists.
    assert final_staff != initial_staff and final_public != initial_public
