"""Signal receivers: where offer changes are noticed.

They are connected in ``AppConfig.ready()`` with ``sender=`` the configured offer model
(reconnected when ``OFFER_REALTIME`` changes), so other models pay nothing. Each one
records a :class:`~offer_realtime.changes.Change`; nothing is sent before commit.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import setting_changed
from django.db import models
from django.db.models.signals import post_save, pre_delete, pre_save

from offer_realtime import building, tracking, transactions
from offer_realtime.changes import Change
from offer_realtime.identity import current_changed_by
from offer_realtime.middleware import current_socket_id
from offer_realtime.settings import WATCHED_SETTINGS, get_model, get_settings

logger = logging.getLogger("offer_realtime")

_connected: dict[str, Any] = {"model": None, "fields": None}


def _fields() -> tracking.TrackedFields:
    fields: tracking.TrackedFields = _connected["fields"]
    return fields


def on_pre_save(sender: type[models.Model], instance: models.Model, raw: bool, **kwargs: Any) -> None:
    """Note a newly assigned photo file before storage gives it its final name."""
    if not raw and get_settings().enabled:
        tracking.mark_new_file(instance, _fields())


def on_post_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool,
    using: str,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    """Record a create or an update that changed something."""
    if raw:  # loaddata: fixtures are not user activity
        return
    fields = _fields()
    try:
        if not get_settings().enabled:
            return
        if created:
            transactions.record(
                Change.created(instance.pk, socket_id=current_socket_id(), changed_by=current_changed_by()), using
            )
            return
        changed = tracking.changed_fields(instance, fields, update_fields)
        if not changed:
            return
        photo_changed = fields.photo_attname in changed
        # Moved to another hotel: remember the old hotel (a value the snapshot holds, no
        # query); its channel is found where the events are built. An unknown old value
        # (deferred field) leaves the change a plain update on the new hotel's channel.
        hotel_changed, previous_hotel = False, None
        if fields.hotel_attname in changed:
            hotel_changed, previous_hotel = tracking.previous_value(instance, fields, fields.hotel_attname)
        other_fields = changed - {fields.photo_attname} - ({fields.hotel_attname} if hotel_changed else set())
        # Audiences: whether guests saw it before (the loaded value, no query; None: unknown).
        active_changed, was_active = False, None
        if fields.active_attname is not None and fields.active_attname in changed:
            active_changed = True
            was_active = _as_active(*tracking.previous_value(instance, fields, fields.active_attname))
        transactions.record(
            Change.updated(
                instance.pk,
                fields_changed=bool(other_fields),
                photo_changed=photo_changed,
                hotel_changed=hotel_changed,
                previous_hotel=previous_hotel,
                active_changed=active_changed,
                was_active=was_active,
                socket_id=current_socket_id(),
                changed_by=current_changed_by(),
            ),
            using,
        )
    finally:
        tracking.refresh_snapshot(instance, fields, update_fields)


def on_pre_delete(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    """Capture what offer-deleted needs while the offer (and its hotel) still exist."""
    if get_settings().enabled:
        record_deletion(instance, using)


def record_deletion(instance: models.Model, using: str) -> None:
    """Record that ``instance`` is being deleted, capturing its title and channel now."""
    try:
        channel = building.channel_for_offer(instance)
    except Exception as exc:  # noqa: BLE001 - an unbroadcastable offer must still delete
        logger.error("Offer %s is deleted but no event can be sent: %s", instance.pk, exc)
        return
    title = getattr(instance, "title", str(instance))
    fields = _fields()
    was_active = None
    if fields is not None and fields.active_attname is not None:
        # As the row holds it (the loaded or last saved value), not an unsaved assignment.
        was_active = _as_active(*tracking.previous_value(instance, fields, fields.active_attname))
    transactions.record(
        Change.deleted(
            instance.pk,
            title=title,
            channel=channel,
            was_active=was_active,
            socket_id=current_socket_id(),
            changed_by=current_changed_by(),
        ),
        using,
    )


def _as_active(known: bool, value: Any) -> bool | None:
    return bool(value) if known else None


_RECEIVERS = (
    (pre_save, on_pre_save),
    (post_save, on_post_save),
    (pre_delete, on_pre_delete),
)


def connect() -> None:
    """Connect the receivers to the configured model; without a valid model, connect nothing.

    A missing or misnamed model is reported by the system checks rather than raised
    here, so ``manage.py check`` can still run and name it.
    """
    conf = get_settings()
    try:
        model = get_model()
    except (LookupError, ValueError):
        return
    _connected["fields"] = tracking.tracked_fields(
        model,
        conf.photo_field,
        conf.ignore_fields,
        hotel_link=conf.hotel_slug_path[0],
        active_field=conf.active_field if conf.audiences else None,
    )
    _connected["model"] = model
    # Loaded offers are snapshotted so a later save can tell what changed.
    tracking.track_loads(model, _connected["fields"])
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, sender=model, dispatch_uid=f"offer_realtime.{receiver.__name__}")


def disconnect() -> None:
    """Disconnect the receivers from the model they were connected to."""
    model = _connected["model"]
    if model is None:
        return
    tracking.untrack_loads(model)
    for signal, receiver in _RECEIVERS:
        signal.disconnect(receiver, sender=model, dispatch_uid=f"offer_realtime.{receiver.__name__}")
    _connected["model"] = None


def reconnect() -> None:
    """Follow a change of ``OFFER_REALTIME`` (e.g. ``override_settings`` in a test)."""
    disconnect()
    connect()


def _reconnect_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # MODEL, PHOTO_FIELD, IGNORE_FIELDS, ... decide what the receivers are connected to.
    if setting in WATCHED_SETTINGS:
        reconnect()


setting_changed.connect(_reconnect_on_setting_changed, dispatch_uid="offer_realtime.receivers.reconnect")
