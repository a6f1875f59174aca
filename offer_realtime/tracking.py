"""Cheap change tracking on offer instances.

A snapshot of the loaded field values is taken when an instance is initialised and
refreshed after each save; comparing against it tells which fields a save changed.
Values compare by what the database would hold, never by object identity: the photo by
its stored value (see :mod:`offer_realtime.photos`), so a re-saved but unchanged photo is
no change, and a newly assigned upload always is.
It reads ``instance.__dict__`` only, never field descriptors, so it adds no query and
never loads a deferred field (a deferred field is simply not in the snapshot).

The snapshot is taken where Django's documentation records loaded values, in the
model's ``from_db()`` (wrapped by :func:`track_loads`), not in a ``post_init`` receiver:
``post_init`` is sent for every instance, loaded or built, and its dispatch alone cost
more than the snapshot. So only a loaded instance has a snapshot; an instance built in
code and saved with an existing pk overwrites a row whose values nobody knows, and all
its fields count as changed.

A snapshot is taken for every loaded instance (a list of 1,000 offers takes 1,000), and
most are never saved, so its cost is a read's. On load it is the row itself: the
``values`` (and ``field_names``) that ``from_db()`` received, held by reference and turned
into ``{attname: comparable value}`` only when a save first needs it (see
:func:`snapshot_of`). That is safe because a row's values are not changed in place: they
are immutable (str, int, date...), or a file's stored name (the descriptor wraps it in a
new ``FieldFile`` and leaves the row's str alone), or a loaded ``CloudinaryResource``,
which cloudinary replaces rather than changes. Only values that are changed in place
(JSON-ish and unknown fields) are copied at load time. Which field is which is decided
once per model in :func:`tracked_fields`, not per value.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from offer_realtime import photos

#: Django's own field classes whose values are immutable (str, int, bool, date, datetime,
#: Decimal, UUID, timedelta, float): their snapshot is the value itself. Exact classes
#: only: a subclass may hold anything (a list in a CharField subclass, for one), so it
#: goes through :meth:`TrackedFields.comparable` like JSONField, ArrayField, HStoreField
#: and every other field.
_IMMUTABLE_VALUE_FIELDS = frozenset(
    {
        models.AutoField,
        models.BigAutoField,
        models.SmallAutoField,
        models.IntegerField,
        models.BigIntegerField,
        models.SmallIntegerField,
        models.PositiveIntegerField,
        models.PositiveBigIntegerField,
        models.PositiveSmallIntegerField,
        models.BooleanField,
        models.FloatField,
        models.DecimalField,
        models.CharField,
        models.TextField,
        models.SlugField,
        models.EmailField,
        models.URLField,
        models.GenericIPAddressField,
        models.UUIDField,
        models.DateField,
        models.DateTimeField,
        models.TimeField,
        models.DurationField,
        models.ForeignKey,
        models.OneToOneField,
    }
)

SNAPSHOT_ATTR = "_offer_realtime_snapshot"
NEW_FILE_ATTR = "_offer_realtime_new_file"


@dataclass(frozen=True)
class TrackedFields:
    """Which attributes of a model are compared, and which one is the photo."""

    attnames: tuple[str, ...]
    photo_attname: str | None
    #: The photo field and how it stores values (None without a photo field).
    photo_field: models.Field[Any, Any] | None = None
    photo_kind: photos.PhotoKind | None = None
    #: The attribute that says which hotel an offer belongs to: the first link of
    #: HOTEL_SLUG (``hotel_id`` for ``"hotel.slug"``), when it is a concrete field.
    hotel_attname: str | None = None
    #: Audiences: the attribute of ACTIVE_FIELD (None when the public audience is off).
    active_attname: str | None = None
    #: Of ``attnames``: those whose values are immutable, snapshotted and compared as they
    #: are, and the others (the photo, JSON-ish and unknown fields), through comparable().
    plain_attnames: tuple[str, ...] = ()
    other_attnames: tuple[str, ...] = ()
    #: ``attname -> value -> comparable value`` for the other_attnames.
    converters: dict[str, Callable[[Any], Any]] = field(default_factory=dict, compare=False)
    #: The tracked attnames a loaded row's snapshot reads from the row when first used:
    #: ``attname -> converter`` (None: the value as it is). The plain ones, and the photo
    #: of a file or Cloudinary field.
    row_converters: dict[str, Callable[[Any], Any] | None] = field(default_factory=dict, compare=False)
    #: The other tracked attnames: their values may be changed in place, so they are
    #: copied when the row loads.
    copied_attnames: tuple[str, ...] = ()
    #: Every concrete attname of the model, in the order of a whole row's values.
    row_attnames: tuple[str, ...] = ()

    def comparable(self, attname: str, value: Any) -> Any:
        """``value`` of ``attname`` in a form that compares by stored value, never by identity."""
        return self.converters.get(attname, _copy_if_mutable)(value)


def _copy_if_mutable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        # JSON-ish values are mutated in place; keep a copy to compare against.
        return copy.deepcopy(value)
    return value


def tracked_fields(
    model: type[models.Model],
    photo_field: str,
    ignore: Iterable[str] = (),
    hotel_link: str | None = None,
    active_field: str | None = None,
) -> TrackedFields:
    """The concrete fields whose change is meaningful to a viewer.

    ``auto_now`` fields are left out: every save changes them, so they would turn
    a save that changes nothing into an update.
    """
    ignored = set(ignore)
    tracked = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key
        and not getattr(f, "auto_now", False)
        and f.name not in ignored
        and f.attname not in ignored
    ]
    attnames = tuple(f.attname for f in tracked)
    photo = next((f for f in model._meta.concrete_fields if f.name == photo_field), None)
    hotel = next((f for f in model._meta.concrete_fields if hotel_link in (f.name, f.attname)), None)
    active = next((f for f in model._meta.concrete_fields if active_field in (f.name, f.attname)), None)
    plain = tuple(f.attname for f in tracked if f is not photo and type(f) in _IMMUTABLE_VALUE_FIELDS)
    photo_kind = photos.kind_of(photo)
    converters = {
        f.attname: (
            photos.stored_value_function(f, photo_kind)
            if f is photo and photo_kind is not photos.PhotoKind.OTHER
            else _copy_if_mutable
        )
        for f in tracked
        if f.attname not in plain
    }
    row_converters: dict[str, Callable[[Any], Any] | None] = dict.fromkeys(plain)
    if (
        photo is not None
        and photo.attname in converters
        and photo_kind in (photos.PhotoKind.FILE, photos.PhotoKind.CLOUDINARY)
    ):
        row_converters[photo.attname] = converters[photo.attname]
    return TrackedFields(
        attnames,
        photo.attname if photo is not None else None,
        photo_field=photo,
        photo_kind=photo_kind,
        hotel_attname=hotel.attname if hotel is not None and hotel.attname in attnames else None,
        active_attname=active.attname if active is not None and active.attname in attnames else None,
        plain_attnames=plain,
        other_attnames=tuple(converters),  # the same order as attnames
        converters=converters,
        row_converters=row_converters,
        copied_attnames=tuple(name for name in converters if name not in row_converters),
        row_attnames=tuple(f.attname for f in model._meta.concrete_fields),
    )


def take_snapshot(instance: models.Model, fields: TrackedFields) -> None:
    """Remember the current values of the loaded tracked fields on ``instance``.

    Converted now (the photo to its stored value, JSON-ish values copied): after a save
    the instance's values are the host's objects (a ``FieldFile`` whose ``save()`` renames
    it in place), not a row's.
    """
    loaded = instance.__dict__
    loaded[SNAPSHOT_ATTR] = _comparable_values(loaded, fields, fields.attnames)


def _comparable_values(loaded: dict[str, Any], fields: TrackedFields, names: Iterable[str]) -> dict[str, Any]:
    return {name: fields.comparable(name, loaded[name]) for name in names if name in loaded}


class LoadedRow:
    """A loaded row's snapshot when it is not simply the row's values (see :func:`track_loads`):
    only some fields were loaded, the instance is of a subclass, or some values were copied."""

    __slots__ = ("copied", "field_names", "values")

    def __init__(self, field_names: Sequence[str], values: Sequence[Any], copied: dict[str, Any] | None) -> None:
        self.field_names = field_names
        self.values = values
        self.copied = copied

    # Plain names and values (no TrackedFields), so that an instance still pickles (e.g. into a cache).
    def __reduce__(self) -> tuple[Any, ...]:
        return (LoadedRow, (list(self.field_names), list(self.values), self.copied))


def _remember_row(loaded: dict[str, Any], fields: TrackedFields, field_names: Any, values: Any) -> None:
    copied = _comparable_values(loaded, fields, fields.copied_attnames) if fields.copied_attnames else None
    loaded[SNAPSHOT_ATTR] = LoadedRow(field_names, values, copied)


#: Models whose ``from_db`` and ``refresh_from_db`` are wrapped, with what their own
#: ``__dict__`` held for each before (None: it was inherited), put back by :func:`untrack_loads`.
_WRAPPED: dict[type[models.Model], dict[str, Any]] = {}


def track_loads(model: type[models.Model], fields: TrackedFields) -> None:
    """Snapshot every instance of ``model`` (and of its subclasses) loaded from the database,
    and again what ``refresh_from_db()`` reads.

    Wraps whichever ``from_db`` and ``refresh_from_db`` the model has, the host's own
    overrides included.
    """
    untrack_loads(model)
    original = inspect.getattr_static(model, "from_db")
    load = original.__func__ if isinstance(original, classmethod) else None
    # Django 6.1 passes from_db() a ``fetch_mode`` keyword when the method takes it; the
    # wrapper takes any, and hands on only what the wrapped method accepts.
    accepts_keywords = _accepts_keywords(original.__get__(None, model))
    # A whole row of this model has its values in the order of fields.row_attnames: the
    # snapshot is then the values alone. That list would be freed after the load; any
    # object kept per row on top of it (a tuple of names and values, say) counts towards
    # the garbage collector's next run, and a list of 1,000 offers measurably ran it more.
    whole = len(fields.row_attnames) if not fields.copied_attnames else -1

    # Runs for every loaded row: the common case (a classmethod, a whole row, nothing to
    # copy) is a call and one store, nothing more.
    def from_db(cls: type[models.Model], db: str | None, field_names: Any, values: Any, **kwargs: Any) -> models.Model:
        if load is None:
            instance: models.Model = original.__get__(None, cls)(
                db, field_names, values, **(kwargs if accepts_keywords else {})
            )
        elif accepts_keywords:
            instance = load(cls, db, field_names, values, **kwargs)
        else:
            instance = load(cls, db, field_names, values)
        if cls is model and len(values) == whole:
            instance.__dict__[SNAPSHOT_ATTR] = values
        else:
            _remember_row(instance.__dict__, fields, field_names, values)
        return instance

    _WRAPPED[model] = {name: model.__dict__.get(name) for name in ("from_db", "refresh_from_db")}
    model.from_db = classmethod(from_db)  # type: ignore[method-assign,assignment,arg-type]
    _track_refreshes(model, fields)


def _track_refreshes(model: type[models.Model], tracked: TrackedFields) -> None:
    """After ``refresh_from_db()`` (also what loads a deferred field on access), what it
    read is the baseline of the fields it read.

    Django reads a fresh instance (snapshotted by the ``from_db`` wrapper) and copies its
    values over, so without this the snapshot kept the values from before: a title put
    back to what it was before another writer's change looked unchanged, and sent nothing.
    """
    refresh = model.refresh_from_db  # the host's override, if it has one

    def refresh_from_db(
        self: models.Model, using: str | None = None, fields: Iterable[str] | None = None, *args: Any, **kwargs: Any
    ) -> None:
        if fields is not None:
            fields = list(fields)  # read twice: by Django, then here
        refresh(self, using, fields, *args, **kwargs)
        refresh_snapshot(self, tracked, fields)

    model.refresh_from_db = refresh_from_db  # type: ignore[method-assign]


def _accepts_keywords(function: Any) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_KEYWORD or p.name == "fetch_mode" for p in parameters)


def untrack_loads(model: type[models.Model]) -> None:
    """Undo :func:`track_loads`: ``model.from_db`` and ``refresh_from_db`` are what they were before."""
    own = _WRAPPED.pop(model, None)
    if own is None:
        return
    for name, value in own.items():
        if value is None:
            delattr(model, name)
        else:
            setattr(model, name, value)


def snapshot_of(instance: models.Model, fields: TrackedFields) -> dict[str, Any] | None:
    """The snapshot of ``instance`` as ``{attname: comparable value}`` (loaded tracked
    fields only), or None when none was taken."""
    loaded = instance.__dict__
    row = loaded.get(SNAPSHOT_ATTR)
    if row is None or isinstance(row, dict):
        return row
    if isinstance(row, LoadedRow):
        field_names, values, copied = row.field_names, row.values, row.copied
    else:  # a whole row's values, see track_loads
        field_names, values, copied = fields.row_attnames, row, None
    if len(field_names) != len(values):
        # Unpickled from a cache written when the model had other fields: nothing is known.
        del loaded[SNAPSHOT_ATTR]
        return None
    converters = fields.row_converters
    snapshot = {}
    for name, value in zip(field_names, values, strict=True):
        if name in converters:
            convert = converters[name]
            snapshot[name] = value if convert is None else convert(value)
    if copied:
        snapshot.update(copied)
    loaded[SNAPSHOT_ATTR] = snapshot
    return snapshot


def refresh_snapshot(instance: models.Model, fields: TrackedFields, written: Iterable[str] | None) -> None:
    """Make the current values of the fields ``written`` (all loaded tracked fields when
    None) the snapshot's: after a save wrote them, or a ``refresh_from_db()`` read them."""
    if written is None:
        take_snapshot(instance, fields)
        return
    snapshot = snapshot_of(instance, fields)
    if snapshot is None:
        # Never loaded (built in code): only what was just written or read is known.
        snapshot = instance.__dict__[SNAPSHOT_ATTR] = {}
    loaded = instance.__dict__
    for name in _attnames_of(instance, written):
        if name in loaded and name in fields.attnames:
            snapshot[name] = fields.comparable(name, loaded[name])


def _attnames_of(instance: models.Model, names: Iterable[str]) -> set[str]:
    # update_fields may name a ForeignKey by field name ("hotel"); compare by attname.
    meta = instance._meta
    result = set()
    for name in names:
        try:
            field = meta.get_field(name)
            result.add(getattr(field, "attname", name))  # a reverse relation has no column
        except FieldDoesNotExist:  # already an attname ("hotel_id")
            result.add(name)
    return result


def mark_new_file(instance: models.Model, fields: TrackedFields) -> None:
    """Before a save: note whether a new, not yet stored file was assigned to the photo.

    A new upload can end up with the same stored value as the old photo (storages that
    overwrite, a fixed Cloudinary public_id), so the value alone cannot tell that it changed.
    """
    if fields.photo_attname is None:
        return
    instance.__dict__[NEW_FILE_ATTR] = photos.is_new_upload(instance.__dict__.get(fields.photo_attname))


def changed_fields(instance: models.Model, fields: TrackedFields, update_fields: Iterable[str] | None) -> set[str]:
    """Attribute names of the tracked fields that this save wrote with a new value."""
    snapshot = snapshot_of(instance, fields) or {}
    loaded = instance.__dict__
    candidates: Iterable[str] = fields.attnames
    if update_fields is not None:
        saved = _attnames_of(instance, update_fields)
        candidates = [name for name in fields.attnames if name in saved]
    changed = set()
    for name in candidates:
        if name not in loaded:
            continue  # deferred and never assigned: not written
        if name not in snapshot or fields.comparable(name, loaded[name]) != snapshot[name]:
            changed.add(name)
    if (
        fields.photo_attname
        and loaded.pop(NEW_FILE_ATTR, False)
        and (update_fields is None or fields.photo_attname in candidates)
    ):
        changed.add(fields.photo_attname)
    return changed


def previous_value(instance: models.Model, fields: TrackedFields, attname: str) -> tuple[bool, Any]:
    """``(True, value)`` with the snapshot's value of ``attname`` (what the row held before
    this save), or ``(False, None)`` when it is unknown (the field was deferred)."""
    snapshot = snapshot_of(instance, fields) or {}
    if attname in snapshot:
        return True, snapshot[attname]
    return False, None
