"""Issue 10 item 5: the board and the guest page end equal to the API for ANY arrival order.

Two writer processes (``tests/browser/writer.py``) make random, overlapping writes to one
hotel's offers — creates, edits, photo uploads, edits with a photo, cleared photos,
deletes, moves to another hotel and back — through the product's background sender into
an in-memory outbox. Their events on the hotel's channel are then shuffled (the network
may deliver events from different processes in any order) and sent through soketi to a
staff board and a guest page that were opened before the writes. At the end both pages
must equal the APIs (staff and public), for every seed, from the events alone: the pages
fetch nothing while the events arrive.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from playwright.sync_api import expect

from offer_realtime import sender
from tests.browser.conftest import REPO, DirectTrigger, public_offers, shown
from tests.e2e.conftest import shared_database_url

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WRITERS = 2
OPS_PER_WRITER = 40


def run_writers(seed: int, tmp_path) -> list[dict]:
    """Run the writer processes at the same time; return all their events, each process's in send order."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser.writer_settings",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "example_project")]),
        "DATABASE_URL": shared_database_url(),
        "MEDIA_ROOT": str(django_settings.MEDIA_ROOT),
    }
    start = time.time() + 3  # after both processes have set Django up
    outs = [tmp_path / f"writer-{k}.json" for k in range(WRITERS)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.browser.writer", str(out), "--seed", str(seed * 100 + k),
             "--ops", str(OPS_PER_WRITER), "--start", str(start)],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        for k, out in enumerate(outs)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output.decode()
    results = [json.loads(out.read_text()) for out in outs]
    assert all(result["done"] >= OPS_PER_WRITER // 2 for result in results), results
    return [event for result in results for event in result["events"]]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_pages_equal_the_api_for_any_arrival_order(seed, realtime, open_board, open_guest, staff, api, live_server,
                                                   tmp_path):
    maire = staff[0]
    killarney = api(maire)
    for i in range(5):
        killarney.create(title=f"Offer {i}", is_active=i != 4, sort_order=i)
    assert sender.get_sender().flush(5)  # these events reach no page: they are sent before the pages open
    board = open_board(maire, "board")
    guest = open_guest("killarney", "guest")
    # The board's list is versioned by its answer's Date header + 1 s (whole seconds): write after
    # that, so that the pages must take every change from the events, none from a fetch.
    time.sleep(1.05)
    fetches = []
    for page in (board.page, guest.page):
        page.on("request", lambda r: fetches.append(r.url) if "/api/" in r.url else None)
    guest_events_before = guest.events()

    events = [event for event in run_writers(seed, tmp_path) if event["channel"] == "hotel-killarney"]
    names = {event["name"] for event in events}
    assert {"offer-created", "offer-updated", "offer-image-updated", "offer-deleted"} <= names, names
    random.Random(seed).shuffle(events)
    marker = {"offer_id": 10**9, "offer_title": "marker", "action": "deleted", "event_id": f"marker-{seed}",
              "changed_at": timezone.now().isoformat()}
    DirectTrigger(realtime, "hotel-killarney").send_all(
        [(event["name"], event["data"]) for event in events] + [("offer-deleted", marker)]
    )

    # Events on one channel from one sender arrive in the order sent: the marker comes last.
    expect(board.activity(event_id=marker["event_id"])).to_have_count(1, timeout=15_000)
    guest.page.wait_for_function(f"() => Number(document.body.dataset.events || 0) >= {guest_events_before + len(events) + 1}",
                                 timeout=15_000)
    assert board.shown() == shown(killarney.list(), staff=True)
    assert guest.shown() == shown(public_offers(live_server.url, "killarney"), staff=False)
    assert fetches == []
