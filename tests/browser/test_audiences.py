"""Audiences in Chromium (issue 13): the staff board on the private channel and the guest page
on the public one, side by side, each equal to its API after every change; the guest page
only ever hears about active offers, with the public serializer's fields."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LIVE_TIMEOUT_MS, public_offers, shown

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audiences(realtime, settings):
    settings.OFFER_REALTIME = {
        "CHANNEL": "private-hotel-{hotel_slug}",
        "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
    }


def wait_equal(read, expected_of, timeout_ms: int = LIVE_TIMEOUT_MS):
    """Wait (bounded) until ``read()`` equals ``expected_of()``; assert it."""
    deadline = time.monotonic() + timeout_ms / 1000
    while (actual := read()) != (expected := expected_of()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert actual == expected


def record_events(page) -> None:
    """Keep every event pusher-js delivers to the page, as (channel, name, data)."""
    page.evaluate(
        """() => {
          window.__heard = [];
          window.Pusher.instances[0].bind_global((name, data) => {
            if (!name.startsWith('pusher:')) window.__heard.push([name, data]);
          });
        }"""
    )


def test_board_private_and_guest_page_public_side_by_side(audiences, open_board, open_guest, staff, api, live_server):
    maire, _, _ = staff
    killarney = api(maire)
    spa = killarney.create(title="Spa Weekend", tag="Spa")
    draft = killarney.create(title="Winter Draft", is_active=False)
    board = open_board(maire, "board")
    guest = open_guest("killarney", "guest")
    board_config = board.page.evaluate("() => JSON.parse(document.getElementById('board-config').textContent)")
    guest_config = guest.page.evaluate("() => JSON.parse(document.getElementById('guest-config').textContent)")
    assert (board_config["channel"], board_config["private"]) == ("private-hotel-killarney", True)
    assert guest_config["channel"] == "hotel-killarney"
    record_events(guest.page)

    def board_equal():
        wait_equal(board.shown, lambda: shown(killarney.list(), staff=True))

    def guest_equal():
        wait_equal(guest.shown, lambda: shown(public_offers(live_server.url, "killarney"), staff=False))

    board_equal()
    guest_equal()
    assert [card["id"] for card in guest.shown()] == [spa["id"]]

    steps = [
        lambda: killarney.create(title="Golf Break", book_now_url="https://example.com/g"),
        lambda: killarney.create(title="Staff only", is_active=False),
        lambda: killarney.update(draft["id"], title="Winter Draft v2"),  # edit while inactive
        lambda: killarney.upload_photo(draft["id"]),  # photo while inactive
        lambda: killarney.update(draft["id"], is_active=True, title="Winter Escape"),  # activated
        lambda: killarney.upload_photo(spa["id"]),  # photo while active
        lambda: killarney.update(spa["id"], is_active=False),  # deactivated
        lambda: killarney.update(spa["id"], tag="Hidden tag"),  # edit while inactive
        lambda: killarney.delete(spa["id"]),  # deleted while inactive
        lambda: killarney.update(draft["id"], photo=None),  # photo cleared while active
    ]
    for step in steps:
        step()
        board_equal()
        guest_equal()

    # Everything the guest page heard was public: active offers, the public fields.
    heard = guest.page.evaluate("() => window.__heard")
    public_fields = {
        "id",
        "title",
        "short_description",
        "details_text",
        "details_html",
        "valid_from",
        "valid_to",
        "tag",
        "book_now_url",
        "photo_url",
        "sort_order",
        "is_active",
        "created_at",
    }
    offers = [data["offer"] for name, data in heard if "offer" in data]
    assert offers and all(set(o) == public_fields and o["is_active"] is True for o in offers)
    # (The activated draft keeps its short description "About Winter Draft": only the title changed.)
    assert "Hidden tag" not in str(heard) and "Staff only" not in str(heard) and "Winter Draft v2" not in str(heard)
    # golf created, draft activated (created), spa photo, spa deactivated (deleted), draft photo cleared.
    assert [name for name, _ in heard] == [
        "offer-created",
        "offer-created",
        "offer-image-updated",
        "offer-deleted",
        "offer-updated",
    ]
    expect(board.page.locator("#offers > li")).to_have_count(3)
