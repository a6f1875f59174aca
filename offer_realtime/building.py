"""Building: committed changes -> events. The one place an event is built.

It reads the committed offers (one query per call, whatever the number of offers) and
builds every event a change gives, for every audience: offer-created, offer-updated,
offer-image-updated, offer-deleted (from what :meth:`Change.deleted
<offer_realtime.changes.Change.deleted>` captured before the row was gone), and in place
of an event too large for Pusher, the ``offers-updated`` sync (:func:`within_limits`).
The payloads and channel names themselves are :mod:`offer_realtime.events`'s value types.
Sending is :mod:`offer_realtime.sending`'s.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import serializers

from offer_realtime import events, metrics, ordering, photos
from offer_realtime.changes import Action, Change, event_id, group_key
from offer_realtime.settings import get_model, get_public_serializer_class, get_serializer_class, get_settings

logger = logging.getLogger("offer_realtime")

#: Channels only authorized subscribers read: the only ones whose events say who changed an offer.
PRIVATE_PREFIXES = ("private-", "presence-")


def resolve_attribute_path(obj: Any, path: Sequence[str]) -> Any:
    """Follow ``path`` (e.g. ``("hotel", "slug")``) from ``obj``; None if a link is None."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


def channel_for_offer(offer: models.Model, template: str | None = None) -> str:
    """The channel an offer's events go to (raises InvalidChannelName or AttributeError).

    ``template``: another audience's channel template; default ``CHANNEL``.
    """
    conf = get_settings()
    slug = resolve_attribute_path(offer, conf.hotel_slug_path)
    if slug is None:
        raise events.InvalidChannelName(f"offer {offer.pk} has no hotel slug ({conf.hotel_slug} is None)")
    return events.channel_for(conf.channel if template is None else template, str(slug))


def photo_url(offer: models.Model) -> str | None:
    """The URL of the offer's photo as the host's serializer gives it, or None when there is none."""
    conf = get_settings()
    return photos.photo_url(offer, conf.photo_field, conf.photo_url)


def _related_path(model: type[models.Model], path: Sequence[str] | None = None) -> list[str]:
    """``("hotel", "slug")`` -> ``["hotel"]``: select_related so the slug costs no extra query."""
    related = []
    for name in (get_settings().hotel_slug_path if path is None else path)[:-1]:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            break  # a property or another attribute: getattr resolves it later
        if not (field.many_to_one or field.one_to_one):
            break
        related.append(name)
        model = field.related_model  # type: ignore[assignment]  # a forward relation: always a model
    return ["__".join(related)] if related else []


def _load_offers(ids: set[Any], using: str) -> dict[Any, models.Model]:
    if not ids:
        return {}
    model = get_model()
    queryset = _joined(model._base_manager.using(using).filter(pk__in=ids), _related_path(model))
    return {offer.pk: offer for offer in queryset}


def _joined(queryset: models.QuerySet[Any], related: list[str]) -> models.QuerySet[Any]:
    # select_related() with no names would follow every non-null foreign key (and is
    # deprecated from Django 6.1): join only when the slug path has a relation to follow.
    return queryset.select_related(*related) if related else queryset


def _hotel_link(model: type[models.Model]) -> Any:
    """The first link of ``HOTEL_SLUG`` as a concrete field of the offer model (the
    ``hotel`` foreign key for ``"hotel.slug"``), or None."""
    try:
        field = model._meta.get_field(get_settings().hotel_slug_path[0])
    except FieldDoesNotExist:
        return None
    return field if getattr(field, "concrete", False) else None


def _previous_slugs(values: set[Any], link: Any, using: str) -> dict[Any, str]:
    """``{old value of the hotel link: that hotel's slug}`` for offers that moved.

    One query for all of them (none when ``HOTEL_SLUG`` is a field of the offer itself);
    a hotel deleted since is left out.
    """
    path = get_settings().hotel_slug_path
    values = {value for value in values if value is not None}
    if not values or link is None:
        return {}
    if len(path) == 1:
        slugs = {value: value for value in values}
    elif link.many_to_one or link.one_to_one:
        related, key, rest = link.related_model, link.target_field.attname, path[1:]
        queryset = _joined(
            related._base_manager.using(using).filter(**{f"{key}__in": values}), _related_path(related, rest)
        )
        slugs = {getattr(hotel, key): resolve_attribute_path(hotel, rest) for hotel in queryset}
    else:
        return {}
    return {value: str(slug) for value, slug in slugs.items() if slug is not None}


def _previous_channel(template: str, slugs: dict[Any, str], value: Any) -> str | None:
    """The channel (from ``template``) of the hotel an offer left, or None (gone, invalid)."""
    slug = slugs.get(value)
    if slug is None:
        return None
    try:
        return events.channel_for(template, slug)
    except events.InvalidChannelName as exc:
        logger.error("An offer left hotel %s, whose channel is invalid: %s", value, exc)
        return None


@dataclass(frozen=True)
class Audience:
    """Who gets a change's events: a channel template, a serializer, and whether only
    active offers are shown to it (README, "Audiences")."""

    #: None for the staff audience (the only one without audiences): event ids as always.
    name: str | None
    channel: str
    public: bool = False

    def serializer_class(self) -> Any:
        """The serializer whose data goes into this audience's offer-created/updated."""
        return get_public_serializer_class() if self.public else get_serializer_class()


def audiences() -> list[Audience]:
    """The staff audience on ``CHANNEL``, and with ``PUBLIC_SERIALIZER`` the public one."""
    conf = get_settings()
    staff = Audience(None, conf.channel)
    return [staff, Audience("public", conf.public_channel, public=True)] if conf.audiences else [staff]


def within_limits(event: events.Event) -> events.Event | None:
    """``event`` if Pusher will take it, else an ``offers-updated`` sync in its place (a
    WARNING); None (an ERROR) if even that is too large for ``MAX_PAYLOAD_BYTES``.

    A partial payload is never sent: the frontend applies ``offer`` as a whole, so a
    stub would replace the card. ``offers-updated`` makes it refetch instead. The sync
    keeps the event's channel, ``event_id``, ``changed_at`` and socket id.
    """
    limit = get_settings().max_payload_bytes
    size = event.size()
    if size <= limit:
        return event
    extra = {"event": event.name, "channel": event.channel, "offer_id": event.offer_id}
    sync = events.offers_sync(event.channel, event.offer_id)
    sync = replace(
        sync,
        data={**sync.data, **{key: event.data[key] for key in events.IDENTITY_KEYS if key in event.data}},
        socket_id=event.socket_id,
        group=event.group,
    )
    if sync.size() <= limit:
        logger.warning(
            "%s for offer %s is %d bytes, over the %d-byte limit; sending %s "
            '{"action": "sync"} instead so the frontend refetches the offers.',
            event.name,
            event.offer_id,
            size,
            limit,
            events.OFFERS_UPDATED,
            extra=extra,
        )
        return sync
    metrics.increment("dropped_oversize")
    logger.error(
        "%s for offer %s is %d bytes, over the %d-byte limit; not sent.",
        event.name,
        event.offer_id,
        size,
        limit,
        extra=extra,
    )
    return None


def build_events(changes: Sequence[Change], using: str) -> list[events.Event]:
    """Events for already coalesced, committed ``changes``, from the committed rows."""
    built = _build_events(changes, using)
    return [fitted for event in built if (fitted := within_limits(event)) is not None]


def _finish(event: events.Event, change: Change, audience: Audience) -> events.Event:
    # What every event carries besides its contract payload: identity and origin; with
    # audiences, the group that keeps a change's events of every audience in one call.
    # (One replace() for all of it: a replace cost as much as the rest of _finish.)
    event = events.with_identity(
        event,
        event_id(change, event.name, audience.name),
        change.changed_at,
        socket_id=change.socket_id,
        group=group_key(change) if get_settings().audiences else None,
    )
    if change.changed_by is not None and not audience.public and audience.channel.startswith(PRIVATE_PREFIXES):
        # Who made the change, for staff only: only private channels are staff only.
        event = replace(event, data={**event.data, "changed_by": dict(change.changed_by)})
    return event


@dataclass
class _Batch:
    """What the events of one build share: the slugs of the hotels moved offers left
    (by the old hotel's key), and one serializer per serializer class."""

    previous: dict[Any, str]
    serializers: dict[type, Any] = field(default_factory=dict)

    def offer_data(self, offer: Any, audience: Audience) -> dict[str, Any]:
        """``offer`` serialized for ``audience``'s events: ``Serializer(offer, context={}).data``."""
        cls = audience.serializer_class()
        serializer = self.serializers.get(cls)
        if serializer is None:
            serializer = cls(offer, context={})
            # One serializer for every offer of the build, as DRF's ListSerializer reuses
            # its child: a ModelSerializer builds its fields per instance, which cost most
            # of building an offer's event. Only where ``.data`` is DRF's own is it the
            # same as to_representation(); any other class is called per offer.
            if getattr(cls, "data", None) is serializers.Serializer.data:
                self.serializers[cls] = serializer
            data = dict(serializer.data)
        else:
            serializer.instance = offer  # for serializers that read it
            data = dict(serializer.to_representation(offer))
        return events.public_offer_data(data) if audience.public else data


def _build_events(changes: Sequence[Change], using: str) -> list[events.Event]:
    offers = _load_offers({c.offer_id for c in changes if c.action is not Action.DELETED}, using)
    link = _hotel_link(get_model()) if any(c.hotel_changed for c in changes) else None
    # Offers whose committed hotel is another than the one the transaction started from
    # (moved back there is no move), and offers moved then deleted.
    moves = [
        c
        for c in changes
        if c.hotel_changed
        and link is not None
        and (
            c.action is Action.DELETED
            or (c.offer_id in offers and getattr(offers[c.offer_id], link.attname) != c.previous_hotel)
        )
    ]
    batch = _Batch(_previous_slugs({c.previous_hotel for c in moves}, link, using) if moves else {})
    moved = {id(c) for c in moves}
    built: list[events.Event] = []
    every_audience = audiences()
    for change in changes:
        for audience in every_audience:
            # Every audience's events of one change are next to each other (one Pusher call).
            builder = _public_events if audience.public else _staff_events
            out: list[events.Event] = []
            try:
                builder(change, offers.get(change.offer_id), audience, batch, id(change) in moved, out)
            except Exception as exc:  # one bad offer must not stop the others
                logger.error(
                    "Could not build the %s event for offer %s%s: %s",
                    change.action.value,
                    change.offer_id,
                    f" ({audience.name} audience)" if audience.name else "",
                    exc,
                    exc_info=not isinstance(exc, events.InvalidChannelName),
                    extra={"offer_id": change.offer_id, "action": change.action.value},
                )
            built.extend(out)
    return built


def _staff_events(
    change: Change, offer: Any, audience: Audience, batch: _Batch, moved: bool, out: list[events.Event]
) -> None:
    """The staff audience's events (the only audience without audiences): every offer."""
    if change.action is Action.DELETED:
        # Moved, then deleted: the board that still shows it is the old hotel's.
        moved_from = _previous_channel(audience.channel, batch.previous, change.previous_hotel) if moved else None
        channel = moved_from or change.channel
        if channel is None:  # a deletion always records its channel and title
            raise events.InvalidChannelName(f"offer {change.offer_id} was deleted without a channel")
        out.append(_finish(events.offer_deleted(channel, change.offer_id, change.offer_title or ""), change, audience))
        return
    if offer is None:
        # Deleted by another transaction since; its own offer-deleted follows.
        logger.debug("Offer %s is gone; no %s event.", change.offer_id, change.action.value)
        return
    title = getattr(offer, "title", str(offer))
    moved_from = _previous_channel(audience.channel, batch.previous, change.previous_hotel) if moved else None
    try:
        channel = channel_for_offer(offer, audience.channel)
    except Exception:
        if moved_from is not None:
            # Gone from the old board, even though the new hotel cannot get events.
            out.append(_finish(events.offer_deleted(moved_from, offer.pk, title), change, audience))
        raise
    if moved and moved_from != channel:
        # Moved to another hotel: gone from the old board, created (whole) on the new.
        if moved_from is not None:
            out.append(_finish(events.offer_deleted(moved_from, offer.pk, title), change, audience))
        data = batch.offer_data(offer, audience)
        out.append(_finish(events.offer_created(channel, offer.pk, data), change, audience))
        return
    # (Another hotel on the same channel is still a change for that board.)
    _update_events(change, offer, audience, batch, channel, title, change.fields_changed or moved, out)


def _update_events(
    change: Change,
    offer: Any,
    audience: Audience,
    batch: _Batch,
    channel: str,
    title: str,
    fields_changed: bool,
    out: list[events.Event],
) -> None:
    """offer-created, or offer-updated and/or offer-image-updated, for an offer this audience sees."""
    url = photo_url(offer) if change.action is not Action.CREATED and change.photo_changed else None
    # A cleared photo is not an image event (the frontend would show "null?t=..."):
    # the whole offer, with its null photo_url, goes in offer-updated.
    if change.action is Action.CREATED or fields_changed or (change.photo_changed and url is None):
        data = batch.offer_data(offer, audience)
        builder = events.offer_created if change.action is Action.CREATED else events.offer_updated
        out.append(_finish(builder(channel, offer.pk, data), change, audience))
    if url is not None:
        image = events.offer_image_updated(channel, offer.pk, title, url, change.changed_at)
        out.append(_finish(image, change, audience))


def _public_events(
    change: Change, offer: Any, audience: Audience, batch: _Batch, moved: bool, out: list[events.Event]
) -> None:
    """The public audience's events: active offers only, built with the public serializer.

    What guests saw is the offer's active state before the transaction (``was_active``,
    from the loaded values); what they should see is the committed row's. Becoming
    active is an offer-created, becoming inactive an offer-deleted; an offer that stays
    inactive sends nothing. When the state before is unknown (a deferred field, a write
    that bypassed signals), an active offer gets offer-updated (the public view adds or
    replaces it) and an inactive one offer-deleted without its title.
    """
    conf = get_settings()
    if change.action is Action.DELETED:
        if change.was_active is False:
            return  # guests never saw it
        slug = batch.previous.get(change.previous_hotel) if moved else None
        if slug is None:
            slug = events.hotel_slug_from_channel(conf.channel, change.channel or "")
        channel = events.channel_for(audience.channel, slug) if slug is not None else None
        if channel is None:
            raise events.InvalidChannelName(f"no public channel for the hotel of {change.channel!r}")
        title = (change.offer_title or "") if change.was_active else ""
        out.append(_finish(events.offer_deleted(channel, change.offer_id, title), change, audience))
        return
    if offer is None:
        return
    title = getattr(offer, "title", str(offer))
    now = bool(getattr(offer, conf.active_field))
    if change.action is Action.CREATED:
        before: bool | None = False
    else:
        before = change.was_active if change.active_changed else now
    # Never show guests the title of an offer they may not have seen.
    gone_title = title if before else ""
    moved_from = _previous_channel(audience.channel, batch.previous, change.previous_hotel) if moved else None
    try:
        channel = channel_for_offer(offer, audience.channel)
    except Exception:
        if moved_from is not None and before is not False:
            out.append(_finish(events.offer_deleted(moved_from, offer.pk, gone_title), change, audience))
        raise
    if moved and moved_from != channel:
        if moved_from is not None and before is not False:
            out.append(_finish(events.offer_deleted(moved_from, offer.pk, gone_title), change, audience))
        if now:
            data = batch.offer_data(offer, audience)
            out.append(_finish(events.offer_created(channel, offer.pk, data), change, audience))
        return
    if not now:
        if before is not False:
            out.append(_finish(events.offer_deleted(channel, offer.pk, gone_title), change, audience))
        return
    if before is False:
        data = batch.offer_data(offer, audience)
        out.append(_finish(events.offer_created(channel, offer.pk, data), change, audience))
        return
    if before is None:
        data = batch.offer_data(offer, audience)
        out.append(_finish(events.offer_updated(channel, offer.pk, data), change, audience))
        return
    _update_events(change, offer, audience, batch, channel, title, change.fields_changed or moved, out)


#: The events a change can give (an ``offers-updated`` sync keeps its event's id).
_EVENT_NAMES = (events.OFFER_CREATED, events.OFFER_UPDATED, events.OFFER_DELETED, events.OFFER_IMAGE_UPDATED)


def still_to_send(changes: Sequence[Change], retry: Sequence[events.Event]) -> tuple[list[Change], set[str]]:
    """For a retry: the changes behind the ``retry`` events, and those events' ids.

    The next attempt builds these changes again from the rows as they are then and sends
    only the events with these ids (:func:`only_events`): what was sent is not sent again,
    and an offer deleted meanwhile gives no created/updated event (deleted wins).
    """
    ids = {event.data["event_id"] for event in retry if "event_id" in event.data}
    names = [(name, audience.name) for name in _EVENT_NAMES for audience in audiences()]
    return [c for c in changes if any(event_id(c, name, audience) in ids for name, audience in names)], ids


def only_events(built: list[events.Event], ids: set[str] | None) -> list[events.Event]:
    """``built`` restricted to the event ids ``ids`` (all when None); a DEBUG line for the
    events of offers deleted since the previous attempt, which are not sent."""
    if ids is None:
        return built
    kept = [event for event in built if event.data.get("event_id") in ids]
    if len(kept) < len(ids):
        logger.debug(
            "%d event(s) to retry not sent: their offers were deleted since the last attempt.", len(ids) - len(kept)
        )
    return kept


#: How long a delivery waits for an offer's lock held by another process's delivery, in
#: multiples of ``TIMEOUT``: that delivery holds it for one attempt (a read and one or two
#: Pusher calls of at most ``TIMEOUT`` each).
LOCK_WAIT_TIMEOUTS = 4


def offers_in_order(
    changes: Sequence[Change], using: str, *, max_wait: float | None = None
) -> contextlib.AbstractContextManager[Any]:
    """The cross-process locks of the offers of ``changes`` on ``using`` (:mod:`offer_realtime.ordering`).

    Every delivery mode holds them around one attempt: read the committed rows, build the
    events, send them. So one offer's events reach Pusher in the order of its committed
    states, whichever processes send them, and a created/updated event read after the
    offer's delete is not sent. Released between retries (the rows are read again).
    The wait is at most ``LOCK_WAIT_TIMEOUTS * TIMEOUT`` seconds, or ``max_wait``. No
    lock with ``ORDERING`` off.
    """
    conf = get_settings()
    if not conf.ordering:
        return contextlib.nullcontext()
    try:
        label = get_model()._meta.label_lower
    except Exception:  # noqa: BLE001 - a bad MODEL setting: building reports it
        return contextlib.nullcontext()
    timeout = LOCK_WAIT_TIMEOUTS * conf.timeout
    if max_wait is not None:
        timeout = min(timeout, max_wait)
    return ordering.offers_locked(using, label, [c.offer_id for c in changes], timeout=timeout)
