""" "To others": remember which browser made a change, so Pusher does not echo it back.

Add ``"offer_realtime.middleware.SocketIdMiddleware"`` to ``MIDDLEWARE`` and have the
frontend send its ``pusher.connection.socket_id`` in the ``X-Pusher-Socket-ID`` header
(``OFFER_REALTIME["SOCKET_ID_HEADER"]``) on writes. Events caused by that request are
then sent with that ``socket_id``, and Pusher skips that one connection.

It also holds the request itself while it is handled, so that on private and presence
channels the staff events say who made the change (``changed_by``, see
:mod:`offer_realtime.identity`).
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from offer_realtime.settings import get_settings

logger = logging.getLogger("offer_realtime")

# Pusher's socket id format, in ASCII digits only (\d would also take other scripts' digits).
_SOCKET_ID_RE = re.compile(r"\A[0-9]{1,30}\.[0-9]{1,30}\Z")

_socket_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("offer_realtime_socket_id", default=None)
_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar("offer_realtime_request", default=None)


def is_socket_id(value: str) -> bool:
    """Whether ``value`` has the form of a Pusher socket id (``"1234.5678"``)."""
    return bool(_SOCKET_ID_RE.match(value))


def current_socket_id() -> str | None:
    """The socket id of the request being handled, if it sent a valid one."""
    return _socket_id.get()


def current_request() -> HttpRequest | None:
    """The request being handled (None outside a request: a shell, a script, a task)."""
    return _request.get()


class SocketIdMiddleware:
    """Makes the request's Pusher socket id, and the request, available to the signal receivers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Hold the header's socket id and the request for the duration of the request."""
        value = request.headers.get(get_settings().socket_id_header)
        if value and not is_socket_id(value):
            # DEBUG only: any client (or scanner) can send this header, on any request.
            logger.debug("Ignoring malformed Pusher socket id %r; the event goes to every browser.", value[:40])
            value = None
        token = _socket_id.set(value or None)
        request_token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(request_token)
            _socket_id.reset(token)
