"""Cheap change tracking on offer instances.

A snapshot of the loaded field values is taken when an instance is initialised and
refreshed after each save; comparing against it tells which fields a save changed.
It reads ``instance.__dict__`` only, never field descriptors, so it adds no query and
never loads a deferred field (a deferred field is simply not in the snapshot).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.files import File
from django.db import models
from django.db.models.fields.files import FieldFile

SNAPSHOT_ATTR = "_offer_realtime_snapshot"
NEW_FILE_ATTR = "_offer_realtime_new_file"


@dataclass(frozen=True)
class TrackedFields:
    """Which attributes of a model are compared, and which one is the photo."""

    attnames: tuple[str, ...]
    photo_attname: str | None


def tracked_fields(model: type[models.Model], photo_field: str, ignore: Iterable[str] = ()) -> TrackedFields:
    """The concrete fields whose change is meaningful to a viewer.

    ``auto_now`` fields are left out: every save changes them, so they would turn
    a save that changes nothing into an update.
    """
    ignored = set(ignore)
    attnames = tuple(
        f.attname
        for f in model._meta.concrete_fields
        if not f.primary_key
        and not getattr(f, "auto_now", False)
        and f.name not in ignored
        and f.attname not in ignored
    )
    photo = next((f.attname for f in model._meta.concrete_fields if f.name == photo_field), None)
    return TrackedFields(attnames, photo)


def _comparable(value: Any, is_file: bool = False) -> Any:
    if is_file:
        # "", None, an empty FieldFile and a saved name all compare by name; an
        # assigned upload compares by its (new) name until storage renames it.
        return getattr(value, "name", value) or ""
    if isinstance(value, (dict, list)):
        # JSON-ish values are mutated in place; keep a copy to compare against.
        return copy.deepcopy(value)
    return value


def take_snapshot(instance: models.Model, fields: TrackedFields) -> None:
    """Remember the current values of the loaded tracked fields on ``instance``."""
    loaded = instance.__dict__
    instance.__dict__[SNAPSHOT_ATTR] = {
        name: _comparable(loaded[name], name == fields.photo_attname) for name in fields.attnames if name in loaded
    }


def refresh_snapshot(instance: models.Model, fields: TrackedFields, update_fields: Iterable[str] | None) -> None:
    """After a save, make the saved values the new baseline."""
    snapshot = instance.__dict__.get(SNAPSHOT_ATTR)
    if snapshot is None or update_fields is None:
        take_snapshot(instance, fields)
        return
    loaded = instance.__dict__
    for name in _attnames_of(instance, update_fields):
        if name in loaded and name in fields.attnames:
            snapshot[name] = _comparable(loaded[name], name == fields.photo_attname)


def _attnames_of(instance: models.Model, names: Iterable[str]) -> set[str]:
    # update_fields may name a ForeignKey by field name ("hotel"); compare by attname.
    meta = instance._meta
    result = set()
    for name in names:
        try:
            result.add(meta.get_field(name).attname)
        except FieldDoesNotExist:  # already an attname ("hotel_id")
            result.add(name)
    return result


def mark_new_file(instance: models.Model, fields: TrackedFields) -> None:
    """Before a save: note whether a new, not yet stored file was assigned to the photo.

    A new upload can end up under the same name as the old file (storages that
    overwrite), so the name alone cannot tell that the photo changed.
    """
    if fields.photo_attname is None:
        return
    value = instance.__dict__.get(fields.photo_attname)
    if isinstance(value, FieldFile):
        is_new = bool(value) and not value._committed
    else:
        is_new = isinstance(value, File)
    instance.__dict__[NEW_FILE_ATTR] = is_new


def changed_fields(
    instance: models.Model, fields: TrackedFields, update_fields: Iterable[str] | None
) -> set[str]:
    """Attribute names of the tracked fields that this save wrote with a new value."""
    snapshot = instance.__dict__.get(SNAPSHOT_ATTR, {})
    loaded = instance.__dict__
    candidates: Iterable[str] = fields.attnames
    if update_fields is not None:
        saved = _attnames_of(instance, update_fields)
        candidates = [name for name in fields.attnames if name in saved]
    changed = set()
    for name in candidates:
        if name not in loaded:
            continue  # deferred and never assigned: not written
        if name not in snapshot or _comparable(loaded[name], name == fields.photo_attname) != snapshot[name]:
            changed.add(name)
    if fields.photo_attname and loaded.pop(NEW_FILE_ATTR, False):
        if update_fields is None or fields.photo_attname in candidates:
            changed.add(fields.photo_attname)
    return changed
