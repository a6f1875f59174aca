"""The real backend: Pusher Channels (or a Pusher-compatible server such as soketi)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pusher
import pusher.util
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder

from offer_realtime.backends import transport
from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import MAX_BATCH_SIZE, Event, batches, channel_name_problem
from offer_realtime.settings import PusherCredentials, get_pusher_credentials, get_settings

#: Pusher's limit on an event name's length.
MAX_EVENT_NAME_LENGTH = 200


def make_client(credentials: PusherCredentials, timeout: float) -> pusher.Pusher:
    """A ``pusher.Pusher`` client for ``credentials``; raises ImproperlyConfigured if incomplete."""
    if not credentials.complete:
        raise ImproperlyConfigured("The Pusher backend needs " + ", ".join(credentials.missing) + " in settings.")
    options = {
        "app_id": credentials.app_id,
        "key": credentials.key,
        "secret": credentials.secret,
        "ssl": credentials.ssl,
        "timeout": timeout,
        "json_encoder": DjangoJSONEncoder,
        "backend": transport.http_backend,
    }
    if credentials.host:
        options.update(host=credentials.host, port=credentials.port)
    elif credentials.cluster:
        options.update(cluster=credentials.cluster)
    return pusher.Pusher(**options)


class EventRefused(ValueError):
    """An event Pusher would refuse (too big, bad channel or event name, bad socket id),
    found before sending it."""


def batch_entry(event: Event, max_payload_bytes: int) -> dict[str, Any]:
    """``event`` as an entry of Pusher's batch API; raises :class:`EventRefused` if Pusher
    would refuse it.

    These are the checks the ``pusher`` library makes, made in Pusher's own units: the
    library sizes data with ``sys.getsizeof`` (CPython's object size: up to 4 bytes a
    character plus a header), so one emoji in 5 KB of text made it refuse an event Pusher
    takes, and with it every other event of its batch. Pusher counts UTF-8 bytes.
    """
    where = f"{event.name} on {event.channel} for offer {event.offer_id}"
    problem = channel_name_problem(event.channel)
    if problem:
        raise EventRefused(f"{where}: channel name refused: {problem}")
    if event.channel.startswith("private-encrypted-"):
        # Sent as it is, the data would go out unencrypted; the backend holds no master key.
        raise EventRefused(f"{where}: end-to-end encrypted channels are not supported")
    if len(event.name) > MAX_EVENT_NAME_LENGTH:
        raise EventRefused(f"{where}: event name longer than {MAX_EVENT_NAME_LENGTH} characters")
    # The exact text whose size is checked is the text sent.
    data = event.encoded()
    size = len(data.encode("utf-8"))
    if size > max_payload_bytes:
        raise EventRefused(f"{where}: data is {size} bytes, over the {max_payload_bytes}-byte limit")
    entry = {"channel": event.channel, "name": event.name, "data": data}
    if event.socket_id:
        try:
            entry["socket_id"] = pusher.util.validate_socket_id(event.socket_id)
        except ValueError as exc:
            raise EventRefused(f"{where}: bad socket id: {exc}") from None
    return entry


class PusherBackend(BaseBackend):
    """Sends events with the ``pusher`` library's HTTP client.

    Events go out with ``trigger_batch``, at most ten per call (Pusher's limit), one event
    included; the client (and its HTTP connection) is reused. Each event is checked here
    against Pusher's limits as Pusher measures them (:func:`batch_entry`) and handed over
    with ``already_encoded=True``, which skips the library's own checks: they measure the
    data's size in CPython object bytes, not UTF-8 bytes, and so refused events Pusher takes.
    """

    def __init__(self) -> None:
        conf = get_settings()
        self.client = make_client(get_pusher_credentials(), conf.timeout)
        # The client and its connection pool (one connection per call under way) are
        # thread-safe: a backlog goes out CONCURRENT_CALLS calls at a time.
        self.concurrent_calls = conf.concurrent_calls

    def send(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order; raises :class:`EventRefused` before sending anything if
        one of them would be refused."""
        limit = get_settings().max_payload_bytes
        entries = {id(event): batch_entry(event, limit) for event in events}
        # A change's events for every audience go in one call (events.batches).
        for chunk in batches(events, MAX_BATCH_SIZE):
            self.client.trigger_batch([entries[id(event)] for event in chunk], already_encoded=True)

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        http = getattr(getattr(self.client, "_pusher_client", None), "http", None)
        closable: Any = getattr(http, "session", http)  # requests' Session, or our Urllib3Backend
        if callable(getattr(closable, "close", None)):
            closable.close()
