"""The real frontend's two offer views, as a test oracle (REAL-CLIENT.md).

The hotel's live React frontend applies our Pusher events to two lists with the rules
below. These classes apply the same rules to what a real pusher-js client received, so
a test can assert that after any flow each view shows what the API says, which is the
only thing a user of that frontend cares about.

Staff view (every offer of the hotel):

- ``offer-created``: put ``data.offer`` first unless an offer with its id is listed.
- ``offer-updated``: replace the listed offer with ``data.offer`` as a whole (an id that
  is not listed is ignored); when its ``photo_url`` differs, a cache-buster ``?t=<now>``
  is appended to it.
- ``offer-deleted``: remove the offer with id ``data.offer_id``.
- ``offer-image-updated``: set the listed offer's ``photo_url`` to
  ``f"{data.photo_url}?t=<now>"`` (JavaScript string interpolation: a null becomes the
  text ``"null?t=..."``, a broken image).
- ``offers-updated``: refetch the list from the API.

Public view (the guest page, active offers only): the same, except that
``offer-created`` adds only when ``data.offer.is_active``; ``offer-updated`` removes the
offer when ``is_active`` is false (a missing ``is_active`` counts as false), adds it
when true and not listed, replaces it otherwise; a refetch keeps active offers only.

Neither view dedupes by ``event_id`` nor orders by time: events apply in arrival order.
Where REAL-CLIENT.md is silent, the reading taken here is the one a literal JavaScript
implementation has: the cache-buster of ``offer-updated`` is appended only to a URL
(a cleared photo stays ``null``), and ``offer-image-updated`` for an offer that is not
listed changes nothing.

Pure Python: the refetch is a callable the caller supplies, the clock too.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "NOT_COMPARED",
    "PublicView",
    "StaffView",
    "expected_public",
    "expected_staff",
    "strip_cache_buster",
    "view_diff",
]

Offer = dict[str, Any]
Fetch = Callable[[], list[Offer]]

_CACHE_BUSTER = re.compile(r"\?t=\d+\Z")

#: Keys of an offer that :func:`view_diff` leaves out by default. ``photo`` is the raw
#: stored value (``image/upload/v<version>/<public_id>.<format>``): ``offer-image-updated``
#: carries only ``photo_url``, so after a photo-only change the frontend's copy of ``photo``
#: is stale by design. The frontend neither shows it nor sends it back (its form sends
#: ``photo_url``), so the photo is compared through ``photo_url`` alone.
NOT_COMPARED = frozenset({"photo"})


def _now_ms() -> int:
    return int(time.time() * 1000)


def strip_cache_buster(url: Any) -> Any:
    """``url`` without a trailing ``?t=<digits>``; anything else unchanged.

    ``"null?t=17"`` becomes the string ``"null"``, which never equals the API's ``None``:
    that is how the oracle catches an ``offer-image-updated`` with a null ``photo_url``.
    """
    if isinstance(url, str):
        return _CACHE_BUSTER.sub("", url)
    return url


class StaffView:
    """The staff settings page's offer list, kept current from events alone.

    Args:
        offers: the list as first fetched from the API.
        fetch: returns the hotel's offers from the API (every page), for a refetch.
        clock: milliseconds since the epoch, for cache-busters.
    """

    def __init__(self, offers: Iterable[Offer], fetch: Fetch, clock: Callable[[], int] = _now_ms) -> None:
        self.offers: list[Offer] = [copy.deepcopy(o) for o in self._keep(offers)]
        self._fetch = fetch
        self._clock = clock
        #: Names of the events applied, in order (unknown names included).
        self.applied: list[str] = []
        #: How many times the view refetched the list.
        self.refetches = 0

    # -- the rules ---------------------------------------------------------------------

    def apply(self, name: str, data: dict[str, Any]) -> None:
        """Apply one event as the frontend does; unknown events change nothing."""
        self.applied.append(name)
        handler = {
            "offer-created": self._created,
            "offer-updated": self._updated,
            "offer-deleted": self._deleted,
            "offer-image-updated": self._image_updated,
            "offers-updated": self._refetch,
        }.get(name)
        if handler is not None:
            handler(data)

    def apply_all(self, events: Iterable[dict[str, Any]]) -> None:
        """Apply pusher-js messages (``{"event": name, "data": {...}}``) in order."""
        for event in events:
            self.apply(event["event"], event["data"])

    def _created(self, data: dict[str, Any]) -> None:
        offer = data["offer"]
        if self._index(offer.get("id")) is None and self._admits(offer):
            self.offers.insert(0, copy.deepcopy(offer))

    def _updated(self, data: dict[str, Any]) -> None:
        offer = copy.deepcopy(data["offer"])
        index = self._index(offer.get("id"))
        if index is None:
            return
        old_url = self.offers[index].get("photo_url")
        if offer.get("photo_url") and offer.get("photo_url") != old_url:
            offer["photo_url"] = f"{offer['photo_url']}?t={self._clock()}"
        self.offers[index] = offer

    def _deleted(self, data: dict[str, Any]) -> None:
        self.offers = [o for o in self.offers if o.get("id") != data.get("offer_id")]

    def _image_updated(self, data: dict[str, Any]) -> None:
        index = self._index(data.get("offer_id"))
        if index is not None:
            self.offers[index]["photo_url"] = f"{_js_string(data.get('photo_url'))}?t={self._clock()}"

    def _refetch(self, data: dict[str, Any]) -> None:
        self.refetches += 1
        self.offers = [copy.deepcopy(o) for o in self._keep(self._fetch())]

    # -- what a subclass changes ---------------------------------------------------------

    def _admits(self, offer: Offer) -> bool:
        return True

    def _keep(self, offers: Iterable[Offer]) -> list[Offer]:
        return list(offers)

    # -- reading --------------------------------------------------------------------------

    def _index(self, offer_id: Any) -> int | None:
        for index, offer in enumerate(self.offers):
            if offer.get("id") == offer_id:
                return index
        return None

    def shown(self) -> dict[Any, Offer]:
        """What the view shows, by offer id, photo URLs without their cache-buster.

        Duplicate cards would be lost in a dict, so they are reported as such.
        """
        ids = [o.get("id") for o in self.offers]
        duplicates = sorted({i for i in ids if ids.count(i) > 1}, key=str)
        if duplicates:
            raise AssertionError(f"{type(self).__name__} shows duplicate cards for offer ids {duplicates}")
        return {o.get("id"): _without_cache_buster(o) for o in self.offers}


class PublicView(StaffView):
    """The public hotel page's offer section: active offers only."""

    def _admits(self, offer: Offer) -> bool:
        return offer.get("is_active") is True

    def _keep(self, offers: Iterable[Offer]) -> list[Offer]:
        return [o for o in offers if self._admits(o)]

    def _updated(self, data: dict[str, Any]) -> None:
        offer = data["offer"]
        index = self._index(offer.get("id"))
        if not self._admits(offer):
            if index is not None:
                del self.offers[index]
        elif index is None:
            self.offers.insert(0, copy.deepcopy(offer))
        else:
            super()._updated(data)


def _without_cache_buster(offer: Offer) -> Offer:
    if "photo_url" not in offer:
        return dict(offer)
    return {**offer, "photo_url": strip_cache_buster(offer["photo_url"])}


def _js_string(value: Any) -> str:
    """How a JavaScript template literal renders a JSON value."""
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def expected_staff(api_offers: Iterable[Offer]) -> dict[Any, Offer]:
    """What the staff view must show for the API's list: every offer, by id."""
    return {o["id"]: o for o in api_offers}


def expected_public(api_offers: Iterable[Offer]) -> dict[Any, Offer]:
    """What the public view must show for the API's list: active offers, by id."""
    return {o["id"]: o for o in api_offers if o.get("is_active") is True}


def view_diff(shown: dict[Any, Offer], expected: dict[Any, Offer], ignore: Iterable[str] = NOT_COMPARED) -> list[str]:
    """Readable differences between a view and the API (empty when they agree), except ``ignore``d keys."""
    ignored = set(ignore)
    problems = []
    for offer_id in sorted(set(shown) - set(expected), key=str):
        problems.append(f"offer {offer_id} is shown but the API does not have it: {shown[offer_id].get('title')!r}")
    for offer_id in sorted(set(expected) - set(shown), key=str):
        problems.append(f"offer {offer_id} is missing from the view: {expected[offer_id].get('title')!r}")
    for offer_id in sorted(set(shown) & set(expected), key=str):
        a, b = shown[offer_id], expected[offer_id]
        for key in sorted((set(a) | set(b)) - ignored):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                problems.append(
                    f"offer {offer_id} field {key!r}: view has {a.get(key, '<absent>')!r}, "
                    f"API has {b.get(key, '<absent>')!r}"
                )
    return problems
