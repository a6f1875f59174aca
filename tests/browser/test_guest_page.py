"""The public guest page in Chromium: active offers only, live from the hotel's public channel.

Changes made through the staff API reach the guest page of that hotel (and never another
hotel's) with the real public view's rules: an inactive offer is not shown, a deactivated
one goes, a reactivated one comes back; after each change the page equals the public API.
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
from tests.browser.conftest import ARTIFACTS, LIVE_TIMEOUT_MS, REPO, DirectTrigger, photo_bytes, public_offers, shown

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def expect_same_as_public_api(guest, base_url: str, hotel_slug: str, timeout_ms: int = LIVE_TIMEOUT_MS) -> list:
    """Wait (bounded) until the guest page shows exactly what the public API lists; return that."""
    expected = shown(public_offers(base_url, hotel_slug), staff=False)
    deadline = time.monotonic() + timeout_ms / 1000
    while (actual := guest.shown()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert actual == expected
    return expected


def test_changes_reach_the_guest_page_and_never_another_hotels(realtime, open_guest, staff, api, live_server):
    maire, _, aoife = staff
    killarney = api(maire)
    spa = killarney.create(title="Spa Weekend", tag="Spa", valid_to="2027-03-31")
    draft = killarney.create(title="Winter Draft", is_active=False)
    guest = open_guest("killarney", "killarney")
    galway = open_guest("galway", "galway")
    requested = []
    guest.page.on("request", lambda r: requested.append(r.url) if "/api/" in r.url else None)
    assert [offer["id"] for offer in expect_same_as_public_api(guest, live_server.url, "killarney")] == [spa["id"]]

    golf = killarney.create(title="Golf Break", short_description="Two rounds", book_now_url="https://example.com/g")
    expect(guest.offer(golf["id"]).locator(".offer-title")).to_have_text("Golf Break", timeout=LIVE_TIMEOUT_MS)
    expect_same_as_public_api(guest, live_server.url, "killarney")

    hidden = killarney.create(title="Staff only", is_active=False)  # created inactive: never shown

    photo_url = killarney.upload_photo(golf["id"])
    expect(guest.offer(golf["id"]).locator("img.offer-photo")).to_have_attribute(
        "src", photo_url, timeout=LIVE_TIMEOUT_MS
    )
    assert guest.offer(golf["id"]).locator("img.offer-photo").evaluate("img => img.naturalWidth") > 0
    expect_same_as_public_api(guest, live_server.url, "killarney")

    killarney.update(spa["id"], is_active=False)  # deactivated: removed
    expect(guest.offer(spa["id"])).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    expect_same_as_public_api(guest, live_server.url, "killarney")

    killarney.update(draft["id"], is_active=True, title="Winter Escape")  # activated: added, whole
    expect(guest.offer(draft["id"]).locator(".offer-title")).to_have_text("Winter Escape", timeout=LIVE_TIMEOUT_MS)
    expect_same_as_public_api(guest, live_server.url, "killarney")

    killarney.delete(golf["id"])
    expect(guest.offer(golf["id"])).to_have_count(0, timeout=LIVE_TIMEOUT_MS)
    final = expect_same_as_public_api(guest, live_server.url, "killarney")
    assert [offer["id"] for offer in final] == [draft["id"]]
    expect(guest.offer(hidden["id"])).to_have_count(0)
    # Six killarney events, applied from the events themselves: only the public API was read, and
    # only the list (on load and on subscribing, before this test's changes).
    assert guest.events() == 6
    assert not any("/api/staff/" in url for url in requested)
    assert not any(url.rstrip("/").split("/")[-1].isdigit() for url in requested), requested

    # Galway's guest page heard none of it, and is live for its own hotel.
    assert galway.events() == 0 and galway.cards.count() == 0
    seafood = api(aoife).create(title="Seafood Supper")
    expect(galway.offer(seafood["id"]).locator(".offer-title")).to_have_text("Seafood Supper", timeout=LIVE_TIMEOUT_MS)
    expect_same_as_public_api(galway, live_server.url, "galway")
    assert galway.events() == 1
    expect(guest.offer(seafood["id"])).to_have_count(0)
    assert guest.events() == 6


def offer_json(offer: Offer) -> dict:
    return to_json_data(OfferStaffSerializer(offer).data)


def test_out_of_order_and_repeated_events_on_the_guest_page(realtime, open_guest, staff):
    maire = staff[0]
    offer = offer_json(Offer.objects.create(hotel=maire.hotel, title="Spa Weekend", short_description="Spa"))
    other = offer_json(Offer.objects.create(hotel=maire.hotel, title="Golf Break", short_description="Golf"))
    guest = open_guest("killarney", "killarney")
    trigger = DirectTrigger(realtime, "hotel-killarney")
    t = timezone.now() + datetime.timedelta(seconds=5)
    second = datetime.timedelta(seconds=1)

    # A photo (t+2s) arrives before an earlier title change (t): both show.
    trigger.image(offer, "/media/offers/spa.png", "evt-photo", t + 2 * second)
    trigger.updated(offer, "evt-title", t, title="Spa Weekend for Two")
    # Deactivated at t+3s, but an older "active" update arrives after it: stays hidden.
    trigger.updated(other, "evt-off", t + 3 * second, is_active=False)
    trigger.updated(other, "evt-old-on", t + second, is_active=True, title="Golf (old)")
    # A new offer, its created event delivered twice: one card.
    new = {**offer, "id": offer["id"] + 1000, "title": "Midweek Escape"}
    trigger.created(new, "evt-new", t)
    trigger.created(new, "evt-new", t)
    expect(guest.offer(new["id"]).locator(".offer-title")).to_have_text("Midweek Escape", timeout=LIVE_TIMEOUT_MS)
    expect(guest.cards).to_have_count(2)
    expect(guest.offer(offer["id"]).locator(".offer-title")).to_have_text("Spa Weekend for Two")
    expect(guest.offer(offer["id"]).locator("img.offer-photo")).to_have_attribute("src", "/media/offers/spa.png")
    expect(guest.offer(other["id"])).to_have_count(0)
    assert guest.events() == 5  # the repeated event_id was not applied again

    # Deleted (t+4s) with an older update after it: gone for good.
    trigger.deleted(new, "evt-gone", t + 4 * second)
    trigger.updated(new, "evt-late", t + 2 * second, title="Midweek (late)")
    trigger.updated(offer, "evt-marker", t + 5 * second, title="Marker")
    expect(guest.offer(offer["id"]).locator(".offer-title")).to_have_text("Marker", timeout=LIVE_TIMEOUT_MS)
    expect(guest.offer(new["id"])).to_have_count(0)


def test_guest_page_screenshot(realtime, open_guest, staff, api):
    """The guest page with a few offers: an artifact, and docs/guest-page.png on request.

    ``UPDATE_DOCS_SCREENSHOT=1 pytest tests/browser -k screenshot`` refreshes the README's picture.
    """
    killarney = api(staff[0])
    spa = killarney.create(
        title="Spa Weekend",
        tag="Spa",
        sort_order=1,
        valid_to="2027-03-31",
        short_description="Two nights with breakfast and a spa treatment",
        details_text="Thermal suite, one 50-minute treatment each, late checkout on Sunday.",
        book_now_url="https://example.com/book/spa",
    )
    killarney.upload_photo(spa["id"], photo_bytes())
    killarney.create(title="Staff draft", is_active=False)
    guest = open_guest("killarney", "docs", viewport=(1200, 720))
    # These arrive live, while the page is open.
    golf = killarney.create(
        title="Golf Break",
        tag="Golf",
        sort_order=2,
        valid_from="2027-04-01",
        short_description="Three nights and two rounds at the lakeside course",
        book_now_url="https://example.com/book/golf",
    )
    killarney.upload_photo(golf["id"], photo_bytes(colours=((120, 60, 140), (250, 120, 80))))
    midweek = killarney.create(
        title="Midweek Escape",
        tag="Midweek",
        sort_order=3,
        short_description="Any two nights Sunday to Thursday, dinner on the first evening",
    )
    killarney.upload_photo(midweek["id"], photo_bytes(colours=((200, 120, 60), (255, 240, 200))))
    expect(guest.cards).to_have_count(3, timeout=LIVE_TIMEOUT_MS)
    expect(guest.offer(midweek["id"]).locator("img.offer-photo")).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    guest.page.wait_for_function(
        "() => [...document.querySelectorAll('img.offer-photo:not([hidden])')].length === 3"
        " && [...document.querySelectorAll('img.offer-photo')].every(i => i.complete && i.naturalWidth)"
    )
    assert guest.shown() == shown(public_offers(guest.base_url, "killarney"), staff=False)
    path = guest.screenshot("guest-page", full_page=False)
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, REPO / "docs" / "guest-page.png")
    assert path.parent == ARTIFACTS and path.stat().st_size > 10_000
