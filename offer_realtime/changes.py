"""What happened to an offer, and how a transaction's changes coalesce.

A :class:`Change` is recorded by the signal receivers (or by :func:`offer_realtime.broadcast`)
while the transaction is open. When it commits, :func:`coalesce` reduces the changes
to what a viewer needs, per offer, and only then are events built and sent.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from django.utils import timezone


class Action(str, enum.Enum):
    """The kinds of change that produce events."""

    CREATED = "created"
    UPDATED = "updated"
    IMAGE_UPDATED = "image-updated"
    DELETED = "deleted"


@dataclass
class Change:
    """One recorded change of one offer.

    For deletions the channel and title are captured before the row is gone;
    for the other actions the events are built from the committed row.
    """

    action: Action
    offer_id: Any
    changed_at: datetime.datetime
    #: For UPDATED: whether any field other than the photo changed.
    fields_changed: bool = False
    #: For UPDATED: whether the photo was set, replaced or cleared.
    photo_changed: bool = False
    #: For UPDATED and DELETED: the offer's hotel changed (the first link of HOTEL_SLUG,
    #: e.g. ``hotel_id``) in this transaction; ``previous_hotel`` is that link's value
    #: before the transaction (e.g. the old hotel's pk). It is resolved to the old
    #: hotel's channel where events are built, so the write runs no query for it.
    hotel_changed: bool = False
    previous_hotel: Any = None
    #: Audiences (only recorded when the public audience is on): for UPDATED, whether
    #: ACTIVE_FIELD may have changed in this transaction, and ``was_active`` its value
    #: before (from the loaded values, no query; None: unknown). For DELETED,
    #: ``was_active`` is its value when deleted (None: unknown).
    active_changed: bool = False
    was_active: bool | None = None
    #: For DELETED: captured before the row is removed.
    offer_title: str | None = None
    channel: str | None = None
    #: Pusher socket id of the browser whose request made the change, if it sent one.
    socket_id: str | None = None
    #: ``{"id", "name"}`` of the staff member whose request made the change
    #: (:func:`offer_realtime.identity.current_changed_by`); None: unknown (a shell, a
    #: script, an anonymous write, public channels). Only private staff events carry it.
    changed_by: dict[str, str] | None = None
    #: Identifies the transaction that made the change; with the offer id and the
    #: event name it gives the event's id, the same for every delivery attempt.
    transaction_key: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: Set when Django runs this change's on_commit callback: the change committed.
    committed: bool = field(default=False, compare=False)

    # -- Named constructors: how the receivers and broadcast() record what happened --------

    @classmethod
    def created(
        cls, offer_id: Any, *, socket_id: str | None = None, changed_by: dict[str, str] | None = None
    ) -> Change:
        """The offer was created (its events are built from the committed row)."""
        return cls(Action.CREATED, offer_id, timezone.now(), socket_id=socket_id, changed_by=changed_by)

    @classmethod
    def updated(
        cls,
        offer_id: Any,
        *,
        fields_changed: bool = False,
        photo_changed: bool = False,
        hotel_changed: bool = False,
        previous_hotel: Any = None,
        active_changed: bool = False,
        was_active: bool | None = None,
        socket_id: str | None = None,
        changed_by: dict[str, str] | None = None,
    ) -> Change:
        """The offer was saved with changes (which ones: the flags, see the fields above)."""
        return cls(
            Action.UPDATED,
            offer_id,
            timezone.now(),
            fields_changed=fields_changed,
            photo_changed=photo_changed,
            hotel_changed=hotel_changed,
            previous_hotel=previous_hotel,
            active_changed=active_changed,
            was_active=was_active,
            socket_id=socket_id,
            changed_by=changed_by,
        )

    @classmethod
    def deleted(
        cls,
        offer_id: Any,
        *,
        title: str,
        channel: str,
        was_active: bool | None = None,
        socket_id: str | None = None,
        changed_by: dict[str, str] | None = None,
    ) -> Change:
        """The offer is being deleted; ``title`` and ``channel`` are captured while it exists."""
        return cls(
            Action.DELETED,
            offer_id,
            timezone.now(),
            offer_title=title,
            channel=channel,
            was_active=was_active,
            socket_id=socket_id,
            changed_by=changed_by,
        )

    # -- JSON (task arguments) ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """This change as JSON data (task arguments): every field but ``committed``."""
        data = {f.name: getattr(self, f.name) for f in _JSON_FIELDS}
        data["action"] = self.action.value
        data["changed_at"] = self.changed_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Change:
        """The inverse of :meth:`to_json`. A key missing (a task enqueued by an older version,
        e.g. before moves or audiences) takes the field's default."""
        values = {f.name: data[f.name] for f in _JSON_FIELDS if f.name in data}
        values["action"] = Action(data["action"])
        values["changed_at"] = datetime.datetime.fromisoformat(data["changed_at"])
        return cls(**values)

    def mark_committed(self) -> None:
        """on_commit callback: the savepoint holding this change was not rolled back."""
        self.committed = True

    def signature(self) -> tuple[Any, ...]:
        """What decides this change's events (the committed row gives the rest): two
        changes with the same signature give the same events."""
        return (
            self.action,
            self.fields_changed,
            self.photo_changed,
            self.hotel_changed,
            self.previous_hotel,
            self.active_changed,
            self.was_active,
            self.changed_by,
        )


#: The fields a change carries across processes (``committed`` is this process's bookkeeping).
_JSON_FIELDS = tuple(f for f in dataclasses.fields(Change) if f.name != "committed")


def _merge(earlier: Change, later: Change) -> list[Change]:
    """Combine two consecutive changes of one offer into what a viewer needs."""
    if earlier.socket_id != later.socket_id:
        # Changes from two browsers: the merged event must reach both.
        later = replace(later, socket_id=None)
        earlier = replace(earlier, socket_id=None)
    if later.action is Action.DELETED:
        # The viewer never saw an offer created in this transaction.
        if earlier.action is Action.CREATED:
            return []
        if earlier.hotel_changed and not later.hotel_changed:
            # Moved, then deleted: the board that still shows it is the first hotel's.
            later = replace(later, hotel_changed=True, previous_hotel=earlier.previous_hotel)
        if earlier.active_changed:
            # (De)activated, then deleted: guests saw it as it was before the transaction.
            later = replace(later, was_active=earlier.was_active)
        return [later]
    if earlier.action is Action.CREATED:
        # Created, then changed: one offer-created with the final (committed) state.
        if later.action is Action.CREATED:
            return [earlier, later]
        return [replace(earlier, changed_at=later.changed_at, socket_id=later.socket_id, changed_by=later.changed_by)]
    if earlier.action is Action.DELETED:
        # Deleted, then created again under the same key: both happened.
        return [earlier, later]
    if later.action is Action.CREATED:
        return [earlier, later]
    return [
        replace(
            earlier,
            action=Action.UPDATED,
            socket_id=later.socket_id,
            # Who made the state the event shows: the last writer.
            changed_by=later.changed_by,
            changed_at=later.changed_at,
            fields_changed=earlier.fields_changed or later.fields_changed,
            photo_changed=earlier.photo_changed or later.photo_changed,
            # Moved several times: from the hotel the transaction started in. Moved back
            # there shows when events are built (the committed row's hotel is that one).
            hotel_changed=earlier.hotel_changed or later.hotel_changed,
            previous_hotel=earlier.previous_hotel if earlier.hotel_changed else later.previous_hotel,
            # Likewise the active state guests saw: the one before the transaction.
            active_changed=earlier.active_changed or later.active_changed,
            was_active=earlier.was_active if earlier.active_changed else later.was_active,
        )
    ]


def coalesce(changes: list[Change]) -> list[Change]:
    """Reduce a committed transaction's changes, keeping the order offers first changed in.

    Rules, per offer: created + updates -> created (final state); several updates -> one
    update (offer-updated if any non-photo field changed, offer-image-updated if the photo
    did; moved to another hotel: offer-deleted on the first hotel, offer-created on the
    last); created + deleted -> nothing; anything + deleted -> deleted (on the first hotel
    if it was moved).
    """
    per_offer: dict[Any, list[Change]] = {}
    for change in changes:
        history = per_offer.setdefault(change.offer_id, [])
        if history:
            history[-1:] = _merge(history[-1], change)
        else:
            history.append(change)
    return [change for history in per_offer.values() for change in history]


_EVENT_ID_NAMESPACE = uuid.UUID("0b7e1f62-6a9a-4d55-9a43-2f0c3e5a8d11")


def event_id(change: Change, event_name: str, audience: str | None = None) -> str:
    """The id of the ``event_name`` event for ``change``: unique, and stable across retries.

    ``audience``: None for the staff (or only) audience, whose ids are as they always
    were; another audience's events get ids of their own.
    """
    key = f"{change.transaction_key}:{change.offer_id}:{event_name}"
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, key if audience is None else f"{key}:{audience}"))


def group_key(change: Change) -> str:
    """The :attr:`~offer_realtime.events.Event.group` of ``change``'s events (every audience's),
    which go to Pusher in one call."""
    return f"{change.transaction_key}:{change.offer_id}"
