"""Who a staff member is: the presence member and the ``changed_by`` of their changes.

One hook, ``OFFER_REALTIME["PRESENCE_USER"]`` (default :func:`presence_user`), names a
person in both places, so the board can match "changed by" to the member it lists as
online. The channel-authorization view asks it for ``channel_data``; the signal receivers
ask it, through :func:`current_changed_by`, for the user of the request that made a
change (held by :class:`~offer_realtime.middleware.SocketIdMiddleware`). ``changed_by`` is
put only into staff events on private and presence channels (see
:mod:`offer_realtime.building`), never into public ones: who edits an offer is not
guests' business.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.functional import LazyObject, empty
from django.utils.module_loading import import_string

from offer_realtime.middleware import current_request
from offer_realtime.settings import get_settings

logger = logging.getLogger("offer_realtime")


def presence_user(request: Any) -> tuple[str, dict[str, Any]]:
    """The default ``PRESENCE_USER``: the user's pk and ``{"name": full name or username}``.

    A ``PRESENCE_USER`` hook has this signature: it gets a request of an authenticated
    user (``request.user``) and returns ``(user_id, user_info)``: a member id unique per
    person (pusher-js's ``members.me.id``; one person in two tabs is one member) and a
    JSON-ready dict every member sees (``members.me.info``). Keep ``user_info`` small:
    Pusher refuses channel data over 1 KB. For the channel-authorization view the request
    is DRF's; for ``changed_by`` it is the Django request of the write (DRF has set its
    ``user``), so a hook should read only what both have: ``user``, ``headers``, ``META``.
    """
    user = request.user
    get_full_name = getattr(user, "get_full_name", None)
    name = (get_full_name() if callable(get_full_name) else "") or user.get_username()
    return str(user.pk), {"name": name}


def member(request: Any) -> tuple[str, dict[str, Any]]:
    """``(user_id, user_info)`` of the request's user, from the ``PRESENCE_USER`` hook.

    Raises ImproperlyConfigured when the hook answers anything else.
    """
    path = get_settings().presence_user
    hook = import_string(path) if path else presence_user
    result = hook(request)
    if not (isinstance(result, (tuple, list)) and len(result) == 2 and isinstance(result[1], dict)):
        raise ImproperlyConfigured(
            f"OFFER_REALTIME['PRESENCE_USER'] {path or 'presence_user'} must return (user_id, user_info dict), "
            f"not {type(result).__name__}."
        )
    user_id, user_info = result
    if user_id is None or str(user_id) == "":
        raise ImproperlyConfigured(f"OFFER_REALTIME['PRESENCE_USER'] {path} returned an empty user_id.")
    return str(user_id), user_info


def current_changed_by() -> dict[str, str] | None:
    """``{"id", "name"}`` of the user whose request is making the current change, or None.

    None without private channels (nothing would carry it), outside a request (a shell, a
    script), without ``SocketIdMiddleware``, for an anonymous user, and when the hook
    fails (logged: a hook's error never fails a write). A user Django has not loaded yet
    (the session's lazy user, never touched by the view) is left alone: loading it would
    cost the write a query or two for a label.
    """
    if not get_settings().private:
        return None
    request = current_request()
    user = getattr(request, "user", None) if request is not None else None
    if user is None or (isinstance(user, LazyObject) and user._wrapped is empty):
        return None
    try:
        if not user.is_authenticated:
            return None
        user_id, user_info = member(request)
    except Exception as exc:  # the write goes on; only the label is missing
        logger.exception("No changed_by for this change: OFFER_REALTIME['PRESENCE_USER'] failed: %s", exc)
        return None
    name = user_info.get("name")
    return {"id": user_id, "name": name if isinstance(name, str) and name else user_id}
