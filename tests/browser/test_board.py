"""The live offer board in Chromium: API writes -> offer_realtime -> soketi -> pusher-js -> the page.

Each change made through the staff API must show on both killarney pages within
2 seconds and never on galway's. Events are also sent straight through the
``pusher`` library to check what the page does with redeliveries, events out of order
(a photo event never hides a field change, a delete wins over older updates), events
older than the page's snapshot, and ``offers-updated``.
"""

from __future__ import annotations

import datetime
import os
import shutil
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from hotel.models import Offer
from hotel.serializers import OfferStaffSerializer
from offer_realtime.events import to_json_data
from tests.browser.conftest import ARTIFACTS, LIVE_TIMEOUT_MS, REPO, DirectTrigger, photo_bytes, shown

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def offer_json(offer: Offer) -> dict:
    """The offer as the staff API and the events give it."""
    return to_json_data(OfferStaffSerializer(offer).data)


def expect_everywhere(boards, check) -> None:
    """``check(board, timeout_ms)`` on each page, all within LIVE_TIMEOUT_MS from now (the write's answer)."""
    deadline = time.monotonic() + LIVE_TIMEOUT_MS / 1000
    for board in boards:
        check(board, max(1, int((deadline - time.monotonic()) * 1000)))


def test_api_changes_reach_both_pages_of_the_hotel_and_never_the_other(realtime, open_board, staff, api):
    maire, sean, aoife = staff
    page_a, page_b = open_board(maire, "killarney-a"), open_board(sean, "killarney-b")
    galway = open_board(aoife, "galway", login_form=True)
    boards = (page_a, page_b)
    killarney_api = api(maire)

    offer = killarney_api.create(title="Spa Weekend", short_description="Two nights", tag="Spa")
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator(".offer-title")).to_have_text("Spa Weekend", timeout=ms),
    )

    photo_url = killarney_api.upload_photo(offer["id"])
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator("img.offer-photo")).to_have_attribute(
            "src", photo_url, timeout=ms
        ),
    )

    killarney_api.update(offer["id"], title="Spa Weekend for Two", is_active=False)
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator(".offer-title")).to_have_text(
            "Spa Weekend for Two", timeout=ms
        ),
    )
    for board in boards:
        expect(board.offer(offer["id"]).locator(".offer-inactive")).to_be_visible()
    # The photo survives a later offer-updated (its data carries the photo too).
    expect(page_a.offer(offer["id"]).locator("img.offer-photo")).to_have_attribute("src", photo_url)
    for board in boards:
        # The photo really loads (the media URL is served and is an image).
        assert board.offer(offer["id"]).locator("img.offer-photo").evaluate("img => img.naturalWidth") > 0
        board.screenshot(f"api-changes-{board.label}-before-delete")

    killarney_api.delete(offer["id"])
    expect_everywhere(boards, lambda b, ms: expect(b.offer(offer["id"])).to_have_count(0, timeout=ms))
    for board in boards:
        expect(board.page.locator("#empty")).to_be_visible()
    assert [e.get_attribute("data-event") for e in page_a.page.locator("#activity > li").all()] == [
        "deleted",
        "updated",
        "image-updated",
        "created",
    ]

    # Galway's page is live (its own offer arrives) and saw nothing of killarney's.
    own = api(aoife).create(title="Seafood Supper")
    expect(galway.offer(own["id"]).locator(".offer-title")).to_have_text("Seafood Supper", timeout=LIVE_TIMEOUT_MS)
    expect(galway.cards).to_have_count(1)
    assert [e.get_attribute("data-event") for e in galway.page.locator("#activity > li").all()] == ["created"]
    expect(page_a.offer(own["id"])).to_have_count(0)


def test_page_writes_go_to_others_with_the_socket_id(realtime, open_board, staff, tmp_path):
    maire, sean, aoife = staff
    writer, reader = open_board(maire, "writer"), open_board(sean, "reader")
    galway = open_board(aoife, "galway")
    sent = []
    writer.page.on("request", lambda r: sent.append((r.method, r.url, r.headers)) if "/api/staff/" in r.url else None)

    photo = tmp_path / "terrace.png"
    photo.write_bytes(photo_bytes())
    writer.page.fill("#new-offer input[name=title]", "Terrace Lunch")
    writer.page.fill("#new-offer input[name=short_description]", "Three courses outside")
    writer.page.fill("#new-offer input[name=tag]", "Lunch")
    writer.page.set_input_files("#new-offer input[name=photo]", str(photo))
    writer.page.click("#new-offer button[type=submit]")

    card = writer.page.locator("#offers > li", has_text="Terrace Lunch")
    expect(card.locator("img.offer-photo")).to_be_visible()  # created, then its photo uploaded
    offer = Offer.objects.get(pk=int(card.get_attribute("data-offer-id")))
    assert offer.title == "Terrace Lunch" and offer.photo
    expect_everywhere(
        (writer, reader),
        lambda b, ms: expect(b.offer(offer.pk).locator("img.offer-photo")).to_have_attribute(
            "src", offer.photo.url, timeout=ms
        ),
    )
    expect(reader.offer(offer.pk).locator(".offer-title")).to_have_text("Terrace Lunch")
    expect(reader.offer(offer.pk).locator(".offer-tag")).to_have_text("Lunch")
    expect(writer.cards).to_have_count(1)
    writes = [(method, url, headers) for method, url, headers in sent if method != "GET"]
    assert [(method, url.rsplit("/api/staff", 1)[1]) for method, url, _ in writes] == [
        ("POST", "/hotel/killarney/offers/"),
        ("POST", f"/hotel/killarney/offers/{offer.pk}/upload-image/"),
    ]
    assert all(headers.get("x-pusher-socket-id") for _, _, headers in writes)
    # The reader got the events; the writer's own events were not echoed back to it.
    expect(reader.activity(event="created")).to_have_count(1)
    expect(reader.activity(event="image-updated")).to_have_count(1)
    expect(writer.page.locator("#activity > li")).to_have_count(0)

    reader.offer(offer.pk).locator(".offer-delete").click()
    expect_everywhere((writer, reader), lambda b, ms: expect(b.offer(offer.pk)).to_have_count(0, timeout=ms))
    expect(writer.activity(event="deleted")).to_have_count(1)
    assert not Offer.objects.filter(pk=offer.pk).exists()
    expect(galway.cards).to_have_count(0)
    expect(galway.page.locator("#activity > li")).to_have_count(0)


def after_the_snapshot(seconds: float) -> datetime.datetime:
    """A change time surely after the pages' last list fetch (whose version is at most a second past it)."""
    return timezone.now() + datetime.timedelta(seconds=seconds)


def test_redelivered_and_stale_events_are_not_applied(realtime, open_board, staff):
    maire, sean, _ = staff
    offer = offer_json(Offer.objects.create(hotel=maire.hotel, title="Golf Break", short_description="Golf"))
    marker = offer_json(Offer.objects.create(hotel=maire.hotel, title="Marker", short_description="Marker"))
    boards = open_board(maire, "a"), open_board(sean, "b")
    for board in boards:
        expect(board.offer(offer["id"]).locator(".offer-title")).to_have_text("Golf Break")
    trigger = DirectTrigger(realtime, "hotel-killarney")
    later = after_the_snapshot(5)

    trigger.updated(offer, "evt-first", later, title="First")
    trigger.updated(offer, "evt-second", later, title="Second")  # same change time: not stale
    trigger.updated(offer, "evt-first", later, title="First")  # a redelivery of evt-first
    # Older than what is shown: ignored, though its id is new.
    trigger.updated(offer, "evt-stale", later - datetime.timedelta(seconds=1), title="Stale")
    # Events on a channel arrive in order: once this shows, the page has handled all of the above.
    trigger.updated(marker, "evt-marker", later, title="Marker seen")
    for board in boards:
        expect(board.offer(marker["id"]).locator(".offer-title")).to_have_text("Marker seen", timeout=LIVE_TIMEOUT_MS)
        expect(board.offer(offer["id"]).locator(".offer-title")).to_have_text("Second")
        expect(board.activity(event_id="evt-first")).to_have_count(1)
        expect(board.activity(event_id="evt-stale")).to_contain_text("ignored: older than shown")
        assert board.page.locator("#activity > li").evaluate_all("items => items.map(i => i.dataset.eventId)") == [
            "evt-marker",
            "evt-stale",
            "evt-second",
            "evt-first",
        ]


def test_a_photo_event_never_hides_a_field_change(realtime, open_board, staff):
    """Issue 10 item 5: a later photo event must not make an earlier title change look stale."""
    maire, sean, _ = staff
    offer = offer_json(Offer.objects.create(hotel=maire.hotel, title="Spa Weekend", short_description="Two nights"))
    marker = offer_json(Offer.objects.create(hotel=maire.hotel, title="Marker", short_description="Marker"))
    boards = open_board(maire, "a"), open_board(sean, "b")
    trigger = DirectTrigger(realtime, "hotel-killarney")
    t = after_the_snapshot(5)
    second = datetime.timedelta(seconds=1)

    # Saved in this order by two workers: title (t), photo (t+2s); delivered photo first.
    trigger.image(offer, "/media/offers/new.png", "evt-photo", t + 2 * second)
    trigger.updated(offer, "evt-title", t, title="Spa Weekend for Two", photo_url=None)
    # An older change of the title still loses to the newer one, and an older photo to the newer photo.
    trigger.updated(offer, "evt-older-title", t - second, title="Spa Weekend (old)", photo_url=None)
    trigger.image(offer, "/media/offers/old.png", "evt-older-photo", t + second)
    trigger.updated(marker, "evt-marker", t, title="Marker seen")
    for board in boards:
        expect(board.offer(marker["id"]).locator(".offer-title")).to_have_text("Marker seen", timeout=LIVE_TIMEOUT_MS)
        card = board.offer(offer["id"])
        expect(card.locator(".offer-title")).to_have_text("Spa Weekend for Two")
        expect(card.locator("img.offer-photo")).to_have_attribute("src", "/media/offers/new.png")
        expect(board.activity(event_id="evt-older-title")).to_contain_text("ignored: older than shown")
        expect(board.activity(event_id="evt-older-photo")).to_contain_text("ignored: older than shown")
        expect(board.activity(event_id="evt-title")).not_to_contain_text("ignored")

    # A cleared photo comes as offer-updated with photo_url null: newer than the photo, it clears it.
    trigger.updated(offer, "evt-cleared", t + 3 * second, title="Spa Weekend for Two", photo_url=None)
    for board in boards:
        expect(board.offer(offer["id"]).locator("img.offer-photo")).to_be_hidden(timeout=LIVE_TIMEOUT_MS)


def test_a_delete_wins_over_older_updates_and_a_later_create_brings_the_offer_back(realtime, open_board, staff):
    maire, _, _ = staff
    offer = offer_json(Offer.objects.create(hotel=maire.hotel, title="Golf Break", short_description="Golf"))
    marker = offer_json(Offer.objects.create(hotel=maire.hotel, title="Marker", short_description="Marker"))
    board = open_board(maire, "a")
    trigger = DirectTrigger(realtime, "hotel-killarney")
    t = after_the_snapshot(5)
    second = datetime.timedelta(seconds=1)

    # Moved to another hotel at t (offer-deleted here); an edit and a photo from before arrive late.
    trigger.deleted(offer, "evt-moved-away", t)
    trigger.updated(offer, "evt-late-edit", t - second, title="Golf Break (edited)")
    trigger.image(offer, "/media/offers/late.png", "evt-late-photo", t - second)
    trigger.created(offer, "evt-late-create", t - 2 * second)
    trigger.updated(marker, "evt-marker-1", t, title="Marker 1")
    expect(board.offer(marker["id"]).locator(".offer-title")).to_have_text("Marker 1", timeout=LIVE_TIMEOUT_MS)
    expect(board.offer(offer["id"])).to_have_count(0)
    for event_id in ("evt-late-edit", "evt-late-photo", "evt-late-create"):
        expect(board.activity(event_id=event_id)).to_contain_text("ignored: older than shown")

    # Moved back at t+2s: offer-created here, newer than the delete; then its photo.
    trigger.image(offer, "/media/offers/back.png", "evt-back-photo", t + 3 * second)
    trigger.created(offer, "evt-moved-back", t + 2 * second, title="Golf Break is back", photo_url=None)
    expect(board.offer(offer["id"]).locator(".offer-title")).to_have_text("Golf Break is back", timeout=LIVE_TIMEOUT_MS)
    expect(board.offer(offer["id"]).locator("img.offer-photo")).to_have_attribute("src", "/media/offers/back.png")


def test_an_event_older_than_the_fetched_list_is_checked_with_the_api(realtime, open_board, staff):
    """An event from before the page's list fetch may or may not be in it: the page asks the API."""
    maire, _, _ = staff
    offer = Offer.objects.create(hotel=maire.hotel, title="Current title", short_description="Now")
    board = open_board(maire, "a")
    fetched = []
    board.page.on("request", lambda r: fetched.append(r.url) if r.method == "GET" and "/api/staff/" in r.url else None)
    trigger = DirectTrigger(realtime, "hotel-killarney")
    long_ago = timezone.now() - datetime.timedelta(seconds=30)

    with board.page.expect_response(lambda r: r.url.endswith(f"/api/staff/hotel/killarney/offers/{offer.pk}/")):
        trigger.updated(offer_json(offer), "evt-ancient", long_ago, title="Ancient title")
    expect(board.activity(event_id="evt-ancient")).to_contain_text("fetched from the API")
    expect(board.offer(offer.pk).locator(".offer-title")).to_have_text("Current title")
    # The same old data, when it is what is shown, needs no fetch at all.
    trigger.updated(offer_json(offer), "evt-ancient-same", long_ago)
    expect(board.activity(event_id="evt-ancient-same")).to_have_count(1, timeout=LIVE_TIMEOUT_MS)
    expect(board.activity(event_id="evt-ancient-same")).not_to_contain_text("fetched")
    board.page.evaluate("() => new Promise((done) => setTimeout(done, 0))")  # any fetch it started has been sent
    assert len(fetched) == 1


def test_offers_updated_fetches_the_offer_or_the_list(realtime, settings, open_board, staff, api):
    maire, sean, aoife = staff
    boards = open_board(maire, "a"), open_board(sean, "b")
    galway = open_board(aoife, "galway")
    details = " ".join(["Breakfast in bed, late checkout."] * 372)  # ~12 KB: over Pusher's 10 KB limit
    assert len(details.encode()) > 12_000

    # Too large for Pusher: offers-updated {"action": "sync", "offer_id"} comes instead, the page fetches.
    offer = api(maire).create(title="The Long Stay", details_text=details)
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator(".offer-title")).to_have_text("The Long Stay", timeout=ms),
    )
    for board in boards:
        assert board.offer(offer["id"]).locator(".offer-details").text_content() == details
        expect(board.activity(event="offers-updated")).to_contain_text("fetched from the API")

    api(maire).update(offer["id"], title="The Longer Stay", details_text=details + " Spa included.")
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator(".offer-title")).to_have_text("The Longer Stay", timeout=ms),
    )
    for board in boards:
        assert board.offer(offer["id"]).locator(".offer-details").text_content().endswith("Spa included.")
        expect(board.activity(event="offers-updated")).to_have_count(2)
    expect(galway.cards).to_have_count(0)

    # A sync for an offer that is gone removes it; one without an id fetches the whole list.
    settings.OFFER_REALTIME = {"ENABLED": False}  # changes the pages hear of only through the syncs below
    Offer.objects.filter(pk=offer["id"]).delete()
    added = Offer.objects.create(hotel=maire.hotel, title="Added quietly", short_description="No event")
    trigger = DirectTrigger(realtime, "hotel-killarney")
    trigger.sync(offer["id"], "evt-sync-gone")
    for board in boards:
        expect(board.offer(offer["id"])).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
        expect(board.offer(added.pk)).to_have_count(0)
    syncs = [board.syncs() for board in boards]
    trigger.sync(None, "evt-sync-all")
    for board, before in zip(boards, syncs, strict=True):
        expect(board.offer(added.pk).locator(".offer-title")).to_have_text("Added quietly", timeout=LIVE_TIMEOUT_MS)
        assert board.syncs() == before + 1


def test_private_channels_subscribe_through_the_auth_endpoint(realtime, settings, open_board, staff, api):
    settings.OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}
    maire, sean, aoife = staff
    boards = open_board(maire, "a"), open_board(sean, "b")
    galway = open_board(aoife, "galway")
    for board, slug in ((boards[0], "killarney"), (boards[1], "killarney"), (galway, "galway")):
        config = board.page.evaluate("() => JSON.parse(document.getElementById('board-config').textContent)")
        assert (config["private"], config["channel"]) == (True, f"private-hotel-{slug}")
        # pusher-js asked the auth endpoint (with the session and CSRF token) before subscribing:
        # once for the private channel, once for the hotel's presence channel (who is online).
        # The board is ready once the private channel is subscribed; the presence channel's
        # subscription may still be on its way, so wait for it before counting the requests.
        expect(board.page.locator("#online")).to_have_attribute("data-subscribed", "true")
        assert (
            board.page.evaluate(
                "() => performance.getEntriesByType('resource')"
                ".filter(e => e.name.endsWith('/api/realtime/pusher/auth/')).length"
            )
            == 2
        )
        assert config["presenceChannel"] == f"presence-hotel-{slug}"
    expect(galway.page.locator("#online")).to_have_attribute("data-members", "aoife")

    offer = api(maire).create(title="Private Dining")
    expect_everywhere(
        boards,
        lambda b, ms: expect(b.offer(offer["id"]).locator(".offer-title")).to_have_text("Private Dining", timeout=ms),
    )
    api(maire).delete(offer["id"])
    expect_everywhere(boards, lambda b, ms: expect(b.offer(offer["id"])).to_have_count(0, timeout=ms))
    expect(galway.page.locator("#activity > li")).to_have_count(0)


def test_reconnect_after_soketi_restart_resyncs_the_list(realtime, settings, open_board, staff, api):
    # Inline delivery: a write while soketi is down is lost for good (no retry delivers it
    # later), so only the page's resync can bring it.
    settings.OFFER_REALTIME = {"DELIVERY": "inline"}
    maire, sean, _ = staff
    kept = api(maire).create(title="Kept")
    gone = api(maire).create(title="Deleted while offline")
    boards = open_board(maire, "a"), open_board(sean, "b")
    for board in boards:
        expect(board.cards).to_have_count(2)
    syncs_before = [board.syncs() for board in boards]

    realtime.stop(graceful=False)
    for board in boards:
        expect(board.connection).to_have_attribute("data-state", "reconnecting", timeout=LIVE_TIMEOUT_MS)
    added = api(maire).create(title="Added while offline")
    api(maire).update(kept["id"], title="Kept, renamed while offline")
    api(maire).delete(gone["id"])
    realtime.start()

    for board, syncs in zip(boards, syncs_before, strict=True):
        # pusher-js retries a dropped connection after ~1 s; that attempt finds the port closed
        # and pusher-js waits out its 15 s attempt timeout before the next one.
        expect(board.connection).to_have_attribute("data-state", "connected", timeout=25_000)
        expect(board.offer(added["id"]).locator(".offer-title")).to_have_text("Added while offline", timeout=5_000)
        expect(board.offer(kept["id"]).locator(".offer-title")).to_have_text("Kept, renamed while offline")
        expect(board.offer(gone["id"])).to_have_count(0)
        expect(board.activity(event="resynced")).to_have_count(1)
        assert board.syncs() > syncs
    # And live again afterwards.
    again = api(maire).create(title="After the reconnect")
    for board in boards:
        expect(board.offer(again["id"])).to_have_count(1, timeout=LIVE_TIMEOUT_MS)


def test_board_screenshot(realtime, open_board, staff, api):
    """A board with a few offers and photos: saved as an artifact, and as docs/board.png on request.

    ``UPDATE_DOCS_SCREENSHOT=1 pytest tests/browser -k screenshot`` refreshes the README's picture.
    """
    maire = staff[0]
    killarney = api(maire)
    spa = killarney.create(
        title="Spa Weekend",
        short_description="Two nights with breakfast and a spa treatment",
        details_text="Thermal suite, one 50-minute treatment each, late checkout on Sunday.",
        tag="Spa",
        valid_to="2027-03-31",
        sort_order=1,
    )
    killarney.upload_photo(spa["id"], photo_bytes())
    killarney.create(
        title="Midweek Escape",
        short_description="Any two nights Sunday to Thursday",
        tag="Midweek",
        is_active=False,
        sort_order=3,
    )
    board = open_board(maire, "docs", viewport=(1200, 640))
    expect(board.cards).to_have_count(2)
    # These two arrive live, while the page is open.
    golf = killarney.create(
        title="Golf Break",
        short_description="Three nights and two rounds at the lakeside course",
        tag="Golf",
        book_now_url="https://example.com/book/golf",
        sort_order=2,
    )
    killarney.upload_photo(golf["id"], photo_bytes(colours=((120, 60, 140), (250, 120, 80))))
    killarney.update(spa["id"], tag="Spa · 10% off")
    expect(board.cards).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
    expect(board.offer(golf["id"]).locator("img.offer-photo")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(board.offer(spa["id"]).locator(".offer-tag")).to_have_text("Spa · 10% off", timeout=LIVE_TIMEOUT_MS)
    assert board.shown() == shown(killarney.list(), staff=True)
    board.page.wait_for_function(
        "() => [...document.querySelectorAll('img.offer-photo:not([hidden])')].every(i => i.complete && i.naturalWidth)"
    )
    path = board.screenshot("board", full_page=False)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / "board.png")
    assert path.parent == ARTIFACTS and path.stat().st_size > 10_000
