"""Turning committed changes into events and sending them.

This runs after the transaction committed (or in the task worker). It reads the
committed offers (one query per transaction, whatever the number of offers), builds the
events with :mod:`offer_realtime.events` and hands them to the configured delivery mode,
which sends them through :func:`send_batch`. Nothing here raises to the caller: a
failure is logged on the ``offer_realtime`` logger, counted in
:mod:`offer_realtime.metrics` and signalled (:mod:`offer_realtime.signals`); the write
that caused it has already succeeded.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from offer_realtime import backends, events, metrics, sender, signals
from offer_realtime.backends import get_backend
from offer_realtime.retry import is_transient
from offer_realtime.changes import Action, Change, event_id
from offer_realtime.redaction import redact_exception
from offer_realtime.settings import get_model, get_serializer_class, get_settings

logger = logging.getLogger("offer_realtime")


def resolve_attribute_path(obj: Any, path: Sequence[str]) -> Any:
    """Follow ``path`` (e.g. ``("hotel", "slug")``) from ``obj``; None if a link is None."""
    for name in path:
        if obj is None:
            return None
        obj = getattr(obj, name)
    return obj


def channel_for_offer(offer: models.Model) -> str:
    """The channel an offer's events go to (raises InvalidChannelName or AttributeError)."""
    conf = get_settings()
    slug = resolve_attribute_path(offer, conf.hotel_slug_path)
    if slug is None:
        raise events.InvalidChannelName(f"offer {offer.pk} has no hotel slug ({conf.hotel_slug} is None)")
    return events.channel_for(conf.channel, str(slug))


def photo_url(offer: models.Model) -> str | None:
    """The URL a browser can load for the offer's photo, or None when there is none."""
    file = getattr(offer, get_settings().photo_field)
    if not file:
        return None
    return file.url


def _related_path(model: type[models.Model]) -> list[str]:
    """``("hotel", "slug")`` -> ``["hotel"]``: select_related so the slug costs no extra query."""
    related = []
    for name in get_settings().hotel_slug_path[:-1]:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            break  # a property or another attribute: getattr resolves it later
        if not (field.many_to_one or field.one_to_one):
            break
        related.append(name)
        model = field.related_model
    return ["__".join(related)] if related else []


def _load_offers(ids: set[Any], using: str) -> dict[Any, models.Model]:
    if not ids:
        return {}
    model = get_model()
    queryset = model._base_manager.using(using).filter(pk__in=ids).select_related(*_related_path(model))
    return {offer.pk: offer for offer in queryset}


def within_limits(event: events.Event) -> events.Event | None:
    """``event`` if Pusher will take it; the truncated fallback or None (logged) if not."""
    limit = get_settings().max_payload_bytes
    size = event.size()
    if size <= limit:
        return event
    if event.name in (events.OFFER_CREATED, events.OFFER_UPDATED):
        logger.warning(
            "%s for offer %s is %d bytes, over the %d-byte limit; sending the truncated "
            "fallback so the frontend refetches the offer.",
            event.name, event.offer_id, size, limit,
            extra={"event": event.name, "channel": event.channel, "offer_id": event.offer_id},
        )
        fallback = events.truncated(event)
        if fallback.size() <= limit:
            return fallback
    metrics.increment("dropped_oversize")
    logger.error(
        "%s for offer %s is %d bytes, over the %d-byte limit; not sent.",
        event.name, event.offer_id, size, limit,
        extra={"event": event.name, "channel": event.channel, "offer_id": event.offer_id},
    )
    return None


def build_events(changes: Sequence[Change], using: str) -> list[events.Event]:
    """Events for already coalesced, committed ``changes``, from the committed rows."""
    built = _build_events(changes, using)
    return [fitted for event in built if (fitted := within_limits(event)) is not None]


def _finish(event: events.Event, change: Change) -> events.Event:
    # What every event carries besides its contract payload: identity and origin.
    event = events.with_identity(event, event_id(change, event.name), change.changed_at)
    return replace(event, socket_id=change.socket_id)


def _build_events(changes: Sequence[Change], using: str) -> list[events.Event]:
    offers = _load_offers({c.offer_id for c in changes if c.action is not Action.DELETED}, using)
    serializer_class = None
    built: list[events.Event] = []
    for change in changes:
        try:
            if change.action is Action.DELETED:
                built.append(_finish(events.offer_deleted(change.channel, change.offer_id, change.offer_title), change))
                continue
            offer = offers.get(change.offer_id)
            if offer is None:
                # Deleted by another transaction since; its own offer-deleted follows.
                logger.debug("Offer %s is gone; no %s event.", change.offer_id, change.action.value)
                continue
            channel = channel_for_offer(offer)
            if change.action is Action.CREATED or change.fields_changed:
                serializer_class = serializer_class or get_serializer_class()
                data = serializer_class(offer, context={}).data
                builder = events.offer_created if change.action is Action.CREATED else events.offer_updated
                built.append(_finish(builder(channel, offer.pk, data), change))
            if change.action is not Action.CREATED and change.photo_changed:
                title = getattr(offer, "title", str(offer))
                event = events.offer_image_updated(channel, offer.pk, title, photo_url(offer), change.changed_at)
                built.append(_finish(event, change))
        except Exception as exc:  # noqa: BLE001 - one bad offer must not stop the others
            logger.error(
                "Could not build the %s event for offer %s: %s",
                change.action.value,
                change.offer_id,
                exc,
                exc_info=not isinstance(exc, events.InvalidChannelName),
                extra={"offer_id": change.offer_id, "action": change.action.value},
            )
    return built


class Outcome(enum.Enum):
    """What became of a batch handed to the backend."""

    SENT = "sent"
    RETRY = "retry"
    GIVEN_UP = "given up"


def send_batch(batch: Sequence[events.Event], *, attempt: int = 1, may_retry: bool = False) -> Outcome:
    """Send ``batch`` with the configured backend; log, count and signal the outcome; never raise.

    ``may_retry``: the caller will try again after a transient failure (the background
    sender and the task worker do; inline delivery does not).
    """
    if not batch:
        return Outcome.SENT
    backend = get_backend()
    try:
        backend.send(batch)
    except Exception as exc:  # noqa: BLE001 - a broadcast failure must never fail the write
        redact_exception(exc)  # no signed Pusher URL in the log lines and signal below
        retry = may_retry and is_transient(exc)
        metrics.increment("failed", len(batch))
        metrics.increment("retried" if retry else "given_up", len(batch))
        for event in batch:
            logger.log(
                logging.WARNING if retry else logging.ERROR,
                "Broadcast of %s on %s for offer %s failed: %s: %s (attempt %d; %s).",
                event.name,
                event.channel,
                event.offer_id,
                type(exc).__name__,
                exc,
                attempt,
                "will retry" if retry else "given up",
                extra={"event": event.name, "channel": event.channel, "offer_id": event.offer_id,
                       "attempt": attempt},
            )
        signals.broadcast_failed.send_robust(
            sender=type(backend), events=list(batch), attempt=attempt, backend=backend, error=exc, final=not retry
        )
        return Outcome.RETRY if retry else Outcome.GIVEN_UP
    metrics.increment("sent", len(batch))
    for event in batch:
        logger.debug("Sent %s on %s for offer %s (attempt %d).", event.name, event.channel, event.offer_id, attempt)
    signals.broadcast_sent.send_robust(sender=type(backend), events=list(batch), attempt=attempt, backend=backend)
    return Outcome.SENT


def deliver(changes: Sequence[Change], using: str, *, enqueued: bool = False) -> None:
    """After commit: hand committed changes to the configured delivery mode; never raise.

    ``inline`` builds and sends here; ``background`` queues the changes for the sender
    thread, which builds and sends; ``task`` enqueues them for the task worker, which
    builds and sends (``enqueued``: an outbox already enqueued them inside the
    transaction). When the task framework or backend fails, the changes fall back to
    the background sender (:func:`fall_back_to_background`). The testing helpers (a
    backend override) always deliver inline.
    """
    conf = get_settings()
    if not conf.enabled:
        return
    mode = "inline" if backends.overridden() else conf.delivery
    if mode == "task":
        if enqueued:
            return
        try:
            from offer_realtime import tasks
        except ImportError:
            fall_back_to_background(changes, using, "Django's task framework is not installed")
            return
        if not tasks.enqueue_changes(changes, using):
            fall_back_to_background(changes, using, "the task backend failed")
        return
    if mode == "background":
        sender.get_sender().submit_changes(changes, using)
        return
    try:
        batch = build_events(changes, using)
    except Exception:  # noqa: BLE001 - e.g. the offer query failed after commit
        logger.exception("Could not build offer events for %d change(s).", len(changes))
        return
    send_batch(batch)


def fall_back_to_background(changes: Sequence[Change], using: str, reason: str) -> None:
    """Task mode could not take committed ``changes``: send them from this process's
    background sender instead (an ERROR line; counted as ``task_fallback``)."""
    if not changes:
        return
    metrics.increment("task_fallback", len(changes))
    logger.error(
        "Task delivery failed (%s): %d committed change(s) of offer(s) %s go to the background sender "
        "of this process instead (lost if it dies before sending them).",
        reason, len(changes), ", ".join(str(c.offer_id) for c in changes[:10]),
        extra={"offer_ids": [c.offer_id for c in changes]},
    )
    sender.get_sender().submit_changes(changes, using)
