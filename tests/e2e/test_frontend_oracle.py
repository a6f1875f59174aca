"""Unit tests of the frontend oracle (pure Python, no server, no database)."""

from __future__ import annotations

import pytest

from tests.e2e.frontend_oracle import (
    PublicView,
    StaffView,
    expected_public,
    expected_staff,
    strip_cache_buster,
    view_diff,
)

URL = "https://res.cloudinary.com/demo/image/upload/v1/a.jpg"
NEW_URL = "https://res.cloudinary.com/demo/image/upload/v2/b.jpg"


def offer(offer_id: int, **fields) -> dict:
    base = {"id": offer_id, "title": f"Offer {offer_id}", "is_active": True, "photo_url": None, "tag": ""}
    return {**base, **fields}


def no_fetch():
    raise AssertionError("this view must not refetch")


def clock():
    return 1700000000123


def created(o):
    return "offer-created", {"offer": o, "action": "created"}


def updated(o):
    return "offer-updated", {"offer": o, "action": "updated"}


def deleted(offer_id, title="x"):
    return "offer-deleted", {"offer_id": offer_id, "offer_title": title, "action": "deleted"}


def image(offer_id, url):
    data = {"offer_id": offer_id, "offer_title": "x", "photo_url": url, "action": "image-updated"}
    return "offer-image-updated", data


def sync(offer_id=None):
    return "offers-updated", {"action": "sync", "offer_id": offer_id, "reason": "too-large"}


def apply(view, *events):
    for name, data in events:
        view.apply(name, data)
    return view


class TestStaffView:
    def test_created_is_prepended_once(self):
        view = apply(StaffView([offer(1)], no_fetch), created(offer(2)), created(offer(2, title="dup")))
        assert [o["id"] for o in view.offers] == [2, 1]
        assert view.offers[0]["title"] == "Offer 2"  # a duplicate create does not replace it

    def test_updated_replaces_the_whole_offer(self):
        view = StaffView([offer(1, tag="old", extra="stale")], no_fetch)
        apply(view, updated({"id": 1, "title": "New", "is_active": True, "photo_url": None}))
        assert view.offers == [{"id": 1, "title": "New", "is_active": True, "photo_url": None}]

    def test_updated_for_an_unlisted_offer_is_ignored(self):
        view = apply(StaffView([offer(1)], no_fetch), updated(offer(9)))
        assert [o["id"] for o in view.offers] == [1]

    def test_updated_with_a_new_photo_url_gets_a_cache_buster(self):
        view = apply(StaffView([offer(1, photo_url=URL)], no_fetch, clock), updated(offer(1, photo_url=NEW_URL)))
        assert view.offers[0]["photo_url"] == f"{NEW_URL}?t=1700000000123"

    def test_updated_with_the_same_photo_url_keeps_it(self):
        view = apply(StaffView([offer(1, photo_url=URL)], no_fetch, clock), updated(offer(1, photo_url=URL, tag="x")))
        assert view.offers[0]["photo_url"] == URL

    def test_updated_clearing_the_photo_shows_none(self):
        view = apply(StaffView([offer(1, photo_url=URL)], no_fetch, clock), updated(offer(1, photo_url=None)))
        assert view.offers[0]["photo_url"] is None

    def test_deleted_removes_by_offer_id(self):
        view = apply(StaffView([offer(1), offer(2)], no_fetch), deleted(1), deleted(7))
        assert [o["id"] for o in view.offers] == [2]

    def test_image_updated_sets_the_url_with_a_cache_buster(self):
        view = apply(StaffView([offer(1)], no_fetch, clock), image(1, NEW_URL), image(5, URL))
        assert view.offers == [offer(1, photo_url=f"{NEW_URL}?t=1700000000123")]

    def test_image_updated_with_null_is_the_broken_image_text(self):
        view = apply(StaffView([offer(1, photo_url=URL)], no_fetch, clock), image(1, None))
        assert view.offers[0]["photo_url"] == "null?t=1700000000123"
        # ... and the comparison with the API (photo cleared: null) catches it.
        assert view_diff(view.shown(), expected_staff([offer(1, photo_url=None)])) == [
            "offer 1 field 'photo_url': view has 'null', API has None"
        ]

    def test_offers_updated_refetches(self):
        fetched = [offer(3), offer(1, is_active=False)]
        view = apply(StaffView([offer(1)], lambda: fetched), sync(1))
        assert view.offers == fetched and view.refetches == 1
        fetched.append(offer(4))  # the view holds its own copy
        assert len(view.offers) == 2

    def test_unknown_events_change_nothing(self):
        view = apply(StaffView([offer(1)], no_fetch), ("offer-realtime-ping", {}))
        assert view.offers == [offer(1)] and view.applied == ["offer-realtime-ping"]

    def test_events_apply_in_arrival_order(self):
        # An update that overtakes its create is lost for good: the frontend neither
        # queues nor orders events, so the create's own payload is what stays.
        view = apply(StaffView([], no_fetch), updated(offer(1, title="Edited")), created(offer(1, title="Created")))
        assert view.offers == [offer(1, title="Created")]

    def test_apply_all_reads_pusher_js_messages(self):
        view = StaffView([], no_fetch)
        view.apply_all([{"type": "event", "event": "offer-created", "data": {"offer": offer(1)}}])
        assert [o["id"] for o in view.offers] == [1]


class TestPublicView:
    def test_initial_list_and_refetch_keep_active_offers(self):
        view = PublicView([offer(1), offer(2, is_active=False)], lambda: [offer(3, is_active=False), offer(4)])
        assert [o["id"] for o in view.offers] == [1]
        apply(view, sync())
        assert [o["id"] for o in view.offers] == [4]

    def test_created_adds_only_active_offers(self):
        view = apply(PublicView([], no_fetch), created(offer(1, is_active=False)), created(offer(2)))
        assert [o["id"] for o in view.offers] == [2]

    def test_updated_removes_an_offer_that_became_inactive(self):
        view = apply(PublicView([offer(1), offer(2)], no_fetch), updated(offer(1, is_active=False)))
        assert [o["id"] for o in view.offers] == [2]

    def test_updated_adds_an_offer_that_became_active(self):
        view = apply(PublicView([offer(2)], no_fetch), updated(offer(1, title="Now on")))
        assert [o["id"] for o in view.offers] == [1, 2]

    def test_updated_replaces_a_listed_active_offer(self):
        view = apply(PublicView([offer(1)], no_fetch), updated(offer(1, title="Renamed")))
        assert view.offers == [offer(1, title="Renamed")]

    def test_a_stub_offer_without_is_active_removes_the_card(self):
        # Why every offer-updated must carry the whole offer (the old truncated stub did not).
        view = apply(PublicView([offer(1)], no_fetch), updated({"id": 1}))
        assert view.offers == []

    def test_image_updated_and_deleted(self):
        view = apply(PublicView([offer(1), offer(2)], no_fetch, clock), image(1, URL), deleted(2))
        assert view.offers == [offer(1, photo_url=f"{URL}?t=1700000000123")]


class TestComparison:
    def test_strip_cache_buster(self):
        assert strip_cache_buster(f"{URL}?t=123") == URL
        assert strip_cache_buster(URL) == URL
        assert strip_cache_buster("null?t=5") == "null"
        assert strip_cache_buster(None) is None
        assert strip_cache_buster("https://x/a.jpg?t=abc") == "https://x/a.jpg?t=abc"  # not ours

    def test_expected_views_from_the_api(self):
        api = [offer(1), offer(2, is_active=False)]
        assert set(expected_staff(api)) == {1, 2}
        assert set(expected_public(api)) == {1}

    def test_a_view_equal_to_the_api_has_no_diff(self):
        view = apply(StaffView([offer(1, photo_url=URL)], no_fetch, clock), image(1, NEW_URL))
        assert view_diff(view.shown(), expected_staff([offer(1, photo_url=NEW_URL)])) == []

    def test_diff_names_missing_extra_and_changed_offers(self):
        view = StaffView([offer(1), offer(2, tag="old")], no_fetch)
        problems = view_diff(view.shown(), expected_staff([offer(2, tag="new"), offer(3)]))
        assert problems == [
            "offer 1 is shown but the API does not have it: 'Offer 1'",
            "offer 3 is missing from the view: 'Offer 3'",
            "offer 2 field 'tag': view has 'old', API has 'new'",
        ]

    def test_a_missing_key_differs_from_null(self):
        view = apply(StaffView([offer(1)], no_fetch), updated({"id": 1, "title": "Offer 1", "is_active": True}))
        assert "offer 1 field 'photo_url': view has '<absent>', API has None" in view_diff(
            view.shown(), expected_staff([offer(1)])
        )

    def test_the_raw_photo_value_is_not_compared_unless_asked(self):
        # offer-image-updated carries photo_url only: the view's `photo` is stale by design.
        view = apply(StaffView([offer(1, photo="image/upload/v1/a.jpg")], no_fetch, clock), image(1, NEW_URL))
        api = expected_staff([offer(1, photo="image/upload/v2/b.jpg", photo_url=NEW_URL)])
        assert view_diff(view.shown(), api) == []
        assert view_diff(view.shown(), api, ignore=()) == [
            "offer 1 field 'photo': view has 'image/upload/v1/a.jpg', API has 'image/upload/v2/b.jpg'"
        ]

    def test_duplicate_cards_are_reported(self):
        view = StaffView([offer(1)], no_fetch)
        view.offers.append(offer(1))
        with pytest.raises(AssertionError, match="duplicate cards for offer ids \\[1\\]"):
            view.shown()
