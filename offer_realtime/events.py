"""The event contract: names, channels and payloads, built by small pure functions.

This is the one place that knows what the frontend receives. Every builder takes plain
values and returns an :class:`Event`; nothing here touches the database or the network.

=====================  ===============================================================
event                  payload
=====================  ===============================================================
offer-created          ``{"offer": <serializer data>, "action": "created"}``
offer-updated          ``{"offer": <serializer data>, "action": "updated"}`` (also for a
                       cleared photo: ``offer.photo_url`` is then null)
offer-deleted          ``{"offer_id", "offer_title", "action": "deleted"}``
offer-image-updated    ``{"offer_id", "offer_title", "photo_url", "timestamp",
                       "action": "image-updated"}`` (photo set or replaced; ``photo_url``
                       is never null)
offers-updated         ``{"action": "sync", "offer_id", "reason": "too-large"}``: sent
                       instead of any event over ``MAX_PAYLOAD_BYTES``; the frontend
                       refetches the offers from the API
=====================  ===============================================================

Delivery adds ``event_id`` and ``changed_at`` to every payload (:func:`with_identity`).
An offer moved to another hotel is an ``offer-deleted`` on the old hotel's channel and an
``offer-created`` on the new one's.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

OFFER_CREATED = "offer-created"
OFFER_UPDATED = "offer-updated"
OFFER_DELETED = "offer-deleted"
OFFER_IMAGE_UPDATED = "offer-image-updated"
OFFERS_UPDATED = "offers-updated"

#: ``reason`` of an ``offers-updated`` sent instead of an event over the payload limit.
REASON_TOO_LARGE = "too-large"

#: Keys delivery adds to every payload (see :func:`with_identity`).
IDENTITY_KEYS = ("event_id", "changed_at")

#: Pusher's limit on an event's data, in bytes (dedicated clusters can have more).
MAX_PAYLOAD_BYTES = 10_240

#: Pusher's limit on events in one batch call.
MAX_BATCH_SIZE = 10

#: Pusher's documented channel name rule: at most 164 characters from this set.
CHANNEL_NAME_MAX_LENGTH = 164
_CHANNEL_NAME_RE = re.compile(r"\A[A-Za-z0-9_\-=@,.;]+\Z")


@dataclass(frozen=True)
class Event:
    """One message for Pusher: ``name`` sent on ``channel`` with JSON-ready ``data``."""

    name: str
    channel: str
    data: dict[str, Any]
    #: Primary key of the offer the event is about (for logs; not sent).
    offer_id: Any = field(default=None, compare=False)
    #: Pusher socket id of the browser that made the change; Pusher skips it ("to others").
    socket_id: str | None = field(default=None, compare=False)
    #: Events of one change share a group (every audience's); :func:`batches` never
    #: splits a group across two Pusher calls. None: a group of its own.
    group: str | None = field(default=None, compare=False)
    _encoded: str | None = field(default=None, init=False, repr=False, compare=False)

    def encoded(self) -> str:
        """``data`` as the JSON text Pusher receives (compact, UTF-8 characters kept).

        Encoded once per event: its size is checked where it is built and the same text
        is sent, so ``data`` is not to be changed once the event exists (build another
        with ``dataclasses.replace``).
        """
        if self._encoded is None:
            text = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)
            object.__setattr__(self, "_encoded", text)  # frozen: a cache, not a field change
        return self._encoded  # type: ignore[return-value]  # set just above

    def without_identity(self) -> dict[str, Any]:
        """``data`` without ``event_id`` and ``changed_at``: the contract payload, for asserting."""
        return {key: value for key, value in self.data.items() if key not in IDENTITY_KEYS}

    def size(self) -> int:
        """Size of the encoded data in UTF-8 bytes, the measure of Pusher's payload limit."""
        return len(self.encoded().encode("utf-8"))


def batches(events: Sequence[Event], size: int = MAX_BATCH_SIZE) -> Iterator[list[Event]]:
    """``events`` in order, in lists of at most ``size`` (Pusher's batch limit), each
    :attr:`Event.group` whole in one list (a group larger than ``size`` is split)."""
    batch: list[Event] = []
    index = 0
    while index < len(events):
        end = index + 1
        group = events[index].group
        while group is not None and end < len(events) and events[end].group == group:
            end += 1
        run = list(events[index:end])
        if batch and len(batch) + len(run) > size:
            yield batch
            batch = []
        while len(run) > size:
            yield run[:size]
            run = run[size:]
        batch.extend(run)
        index = end
    if batch:
        yield batch


class InvalidChannelName(ValueError):
    """A channel name Pusher would refuse."""


def channel_name_problem(name: str) -> str | None:
    """Why Pusher would refuse ``name`` as a channel name, or None if it is valid."""
    if not name:
        return "it is empty"
    if len(name) > CHANNEL_NAME_MAX_LENGTH:
        return f"it is {len(name)} characters long; Pusher allows at most {CHANNEL_NAME_MAX_LENGTH}"
    if not _CHANNEL_NAME_RE.match(name):
        return "it contains characters outside A-Z a-z 0-9 _ - = @ , . ;"
    return None


def channel_for(template: str, hotel_slug: str) -> str:
    """Render the channel template for one hotel; raise :class:`InvalidChannelName` if invalid."""
    name = template.format(hotel_slug=hotel_slug)
    problem = channel_name_problem(name)
    if problem:
        raise InvalidChannelName(f"Channel name {name!r} is invalid: {problem}.")
    return name


def hotel_slug_from_channel(template: str, channel: str) -> str | None:
    """The hotel slug a channel name was rendered from, or None if ``template`` cannot give it."""
    prefix, found, suffix = template.partition("{hotel_slug}")
    if not found:
        return None
    match = re.fullmatch(re.escape(prefix) + r"([A-Za-z0-9_\-=@,.;]+)" + re.escape(suffix), channel)
    return match.group(1) if match else None


#: The key the real public view reads to decide whether an offer is shown; always true in
#: the public audience's offer-created/offer-updated (only active offers reach it).
PUBLIC_ACTIVE_KEY = "is_active"


def public_offer_data(offer_data: dict[str, Any]) -> dict[str, Any]:
    """The public serializer's data of an active offer, with ``is_active: true`` (the real
    public view drops an offer whose ``is_active`` is missing or false)."""
    return {**offer_data, PUBLIC_ACTIVE_KEY: True}


def to_json_data(data: Any) -> Any:
    """``data`` as plain JSON types (what the browser will see), e.g. Decimal and UUID as str.

    Always a new value: the event owns its data (its encoded text is cached). Data that
    is already plain, as DRF serializers give it, is copied directly; anything else
    goes through a JSON round trip, which cost a tenth of building an offer's event.
    """
    try:
        return _plain_copy(data)
    except _NotPlain:
        return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


class _NotPlain(Exception):
    """Raised by :func:`_plain_copy` on the first value JSON would change."""


#: Exact types JSON gives back as they are (a subclass, e.g. an enum or SafeString, is not plain).
_PLAIN_SCALARS = frozenset({str, int, bool, type(None)})


def _plain_copy(value: Any) -> Any:
    """A copy of ``value`` if it is made of dicts with str keys, lists and JSON scalars
    only (then it equals ``json.loads(json.dumps(value))``, types included); else raise
    :class:`_NotPlain`."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind is float and math.isfinite(value):  # NaN and the infinities: the round trip decides
        return value
    if kind is dict:
        copy = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            copy[key] = _plain_copy(item)
        return copy
    if kind is list:
        return [_plain_copy(item) for item in value]
    raise _NotPlain


def offer_created(channel: str, offer_id: Any, offer_data: dict[str, Any]) -> Event:
    """``offer-created`` with the serialized offer."""
    return Event(OFFER_CREATED, channel, {"offer": to_json_data(offer_data), "action": "created"}, offer_id)


def offer_updated(channel: str, offer_id: Any, offer_data: dict[str, Any]) -> Event:
    """``offer-updated`` with the serialized offer."""
    return Event(OFFER_UPDATED, channel, {"offer": to_json_data(offer_data), "action": "updated"}, offer_id)


def offer_deleted(channel: str, offer_id: Any, offer_title: str) -> Event:
    """``offer-deleted`` with what the frontend needs to remove the offer."""
    data = {"offer_id": to_json_data(offer_id), "offer_title": offer_title, "action": "deleted"}
    return Event(OFFER_DELETED, channel, data, offer_id)


def offer_image_updated(
    channel: str,
    offer_id: Any,
    offer_title: str,
    photo_url: str,
    changed_at: datetime.datetime,
) -> Event:
    """``offer-image-updated`` for a photo set or replaced.

    The frontend appends a cache-buster to ``photo_url`` as it is, so there is no image
    event for a cleared photo (that is an ``offer-updated``); None here is a bug.
    """
    if not photo_url:
        raise ValueError(f"offer-image-updated for offer {offer_id} needs a photo_url")
    data = {
        "offer_id": to_json_data(offer_id),
        "offer_title": offer_title,
        "photo_url": photo_url,
        "timestamp": changed_at.isoformat(),
        "action": "image-updated",
    }
    return Event(OFFER_IMAGE_UPDATED, channel, data, offer_id)


def offers_sync(channel: str, offer_id: Any, reason: str = REASON_TOO_LARGE) -> Event:
    """``offers-updated`` ``{"action": "sync", "offer_id", "reason"}``: refetch the offers.

    The frontend's own "something changed, resync" signal; sent instead of an event it
    cannot be given whole (over Pusher's payload limit).
    """
    data = {"action": "sync", "offer_id": to_json_data(offer_id), "reason": reason}
    return Event(OFFERS_UPDATED, channel, data, offer_id)


def with_identity(event: Event, event_id: str, changed_at: datetime.datetime, **fields: Any) -> Event:
    """``event`` with ``event_id`` and ``changed_at`` added to its payload (and the other
    ``fields`` of :class:`Event` given, e.g. ``socket_id``, replaced in the same step).

    ``event_id`` is unique per event and the same for every delivery attempt of it, so
    a client drops duplicates from at-least-once delivery; ``changed_at`` (ISO 8601) is
    the offer's change time, so a client drops an update older than what it shows.
    """
    return replace(event, data={**event.data, "event_id": event_id, "changed_at": changed_at.isoformat()}, **fields)
