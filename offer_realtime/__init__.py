"""offer_realtime: live offer updates for Django hotel backends over Pusher Channels.

Add ``"offer_realtime"`` to ``INSTALLED_APPS``; every create, update, photo change and
delete of the configured offer model is broadcast after its transaction commits.

The pipeline flows one way: :mod:`~offer_realtime.receivers` record changes,
:mod:`~offer_realtime.transactions` hold them until commit, :mod:`~offer_realtime.delivery`
hands them to the configured mode (inline, the background :mod:`~offer_realtime.sender`
or the :mod:`~offer_realtime.tasks` worker), :mod:`~offer_realtime.building` turns them
into events, :mod:`~offer_realtime.sending` sends those through
:mod:`~offer_realtime.backends`. Configuration: :mod:`offer_realtime.settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db import models

    from offer_realtime.changes import Action

__version__ = "0.1.0"
__all__ = ["__version__", "broadcast"]


def broadcast(offer: models.Model, action: Action | str, *, using: str | None = None) -> None:
    """Broadcast a change that bypassed model signals.

    ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()`` and raw SQL send no
    signals; call this for each offer they touched. ``action`` is ``"created"``,
    ``"updated"``, ``"image-updated"`` or ``"deleted"`` (for ``"deleted"`` pass the
    instance before it is gone). Like signal-driven changes, the event goes out when
    the current transaction commits and is coalesced with the offer's other changes.
    """
    from django.db import router

    from offer_realtime import receivers, transactions
    from offer_realtime.changes import Action, Change
    from offer_realtime.identity import current_changed_by
    from offer_realtime.middleware import current_socket_id
    from offer_realtime.settings import get_settings

    action = Action(action)
    using = using or router.db_for_write(type(offer), instance=offer)
    if not get_settings().enabled:
        return
    if action is Action.DELETED:
        receivers.record_deletion(offer, using)
        return
    if action is Action.CREATED:
        change = Change.created(offer.pk, socket_id=current_socket_id(), changed_by=current_changed_by())
    else:
        photo = action is Action.IMAGE_UPDATED
        # Audiences: what guests saw before a write that bypassed signals is unknown.
        unknown_active = get_settings().audiences and not photo
        change = Change.updated(
            offer.pk,
            fields_changed=not photo,
            photo_changed=photo,
            active_changed=unknown_active,
            socket_id=current_socket_id(),
            changed_by=current_changed_by(),
        )
    transactions.record(change, using)
