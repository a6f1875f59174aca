"""The real backend: Pusher Channels (or a Pusher-compatible server such as soketi)."""

from __future__ import annotations

from collections.abc import Sequence

import pusher
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder

from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import MAX_BATCH_SIZE, Event
from offer_realtime.settings import PusherCredentials, get_pusher_credentials, get_settings


def make_client(credentials: PusherCredentials, timeout: float) -> pusher.Pusher:
    """A ``pusher.Pusher`` client for ``credentials``; raises ImproperlyConfigured if incomplete."""
    if not credentials.complete:
        raise ImproperlyConfigured(
            "The Pusher backend needs " + ", ".join(credentials.missing) + " in settings."
        )
    options = {
        "app_id": credentials.app_id,
        "key": credentials.key,
        "secret": credentials.secret,
        "ssl": credentials.ssl,
        "timeout": timeout,
        "json_encoder": DjangoJSONEncoder,
    }
    if credentials.host:
        options.update(host=credentials.host, port=credentials.port)
    elif credentials.cluster:
        options.update(cluster=credentials.cluster)
    return pusher.Pusher(**options)


def _batch_entry(event: Event) -> dict:
    entry = {"channel": event.channel, "name": event.name, "data": event.encoded()}
    if event.socket_id:
        entry["socket_id"] = event.socket_id
    return entry


class PusherBackend(BaseBackend):
    """Sends events with the ``pusher`` library's HTTP client.

    One event is sent with ``trigger``; several with ``trigger_batch`` in batches of at
    most ten, Pusher's limit. The client (and its HTTP connection) is reused.
    """

    def __init__(self) -> None:
        self.client = make_client(get_pusher_credentials(), get_settings().timeout)

    def send(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order."""
        # Data goes out as the exact JSON text whose size was checked against the limit.
        if len(events) == 1:
            event = events[0]
            self.client.trigger(event.channel, event.name, event.encoded(), socket_id=event.socket_id)
            return
        for start in range(0, len(events), MAX_BATCH_SIZE):
            chunk = events[start : start + MAX_BATCH_SIZE]
            self.client.trigger_batch([_batch_entry(event) for event in chunk])

    def close(self) -> None:
        """Close the pooled HTTP connection."""
        session = getattr(getattr(self.client, "_pusher_client", None), "http", None)
        session = getattr(session, "session", None)
        if session is not None:
            session.close()
