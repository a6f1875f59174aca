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

import random
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from offer_realtime import sender
from tests.browser.conftest import DirectTrigger, public_offers, run_writers, shown

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_pages_equal_the_api_for_any_arrival_order(
    seed, realtime, open_board, open_guest, staff, api, live_server, tmp_path
):
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

    events, done = run_writers(seed, tmp_path)
    # Every kind of write happened (moves too: offer-deleted here, offer-created on the way back).
    assert set(done) == {
        "create",
        "update",
        "photo",
        "edit_and_photo",
        "clear_photo",
        "delete",
        "move_away",
        "move_back",
    }, done
    events = [event for event in events if event["channel"] == "hotel-killarney"]
    random.Random(seed).shuffle(events)
    marker = {
        "offer_id": 10**9,
        "offer_title": "marker",
        "action": "deleted",
        "event_id": f"marker-{seed}",
        "changed_at": timezone.now().isoformat(),
    }
    DirectTrigger(realtime, "hotel-killarney").send_all(
        [(event["name"], event["data"]) for event in events] + [("offer-deleted", marker)]
    )

    # Events on one channel from one sender arrive in the order sent: the marker comes last.
    expect(board.activity(event_id=marker["event_id"])).to_have_count(1, timeout=15_000)
    applied = guest_events_before + len(events) + 1
    guest.page.wait_for_function(f"() => Number(document.body.dataset.events || 0) >= {applied}", timeout=15_000)
    assert board.shown() == shown(killarney.list(), staff=True)
    assert guest.shown() == shown(public_offers(live_server.url, "killarney"), staff=False)
    assert fetches == []
