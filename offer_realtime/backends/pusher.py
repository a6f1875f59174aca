"""The real backend: Pusher Channels (or a Pusher-compatible server such as soketi)."""

from __future__ import annotations

from collections.abc import Sequence

import pusher
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder

from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import Event
from offer_realtime.settings import PusherCredentials, get_pusher_credentials, get_settings

#: Pusher's limit on events per batch call.
MAX_BATCH_SIZE = 10


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


class PusherBackend(BaseBackend):
    """Sends events with the ``pusher`` library's HTTP client.

    One event is sent with ``trigger``; several with ``trigger_batch`` in batches of at
    most ten, Pusher's limit. The client (and its HTTP connection) is reused.
    """

    def __init__(self) -> None:
        self.client = make_client(get_pusher_credentials(), get_settings().timeout)

    def send(self, events: Sequence[Event]) -> None:
        """Send ``events`` in order."""
        if len(events) == 1:
            event = events[0]
            self.client.trigger(event.channel, event.name, event.data)
            return
        for start in range(0, len(events), MAX_BATCH_SIZE):
            chunk = events[start : start + MAX_BATCH_SIZE]
            # trigger_batch encodes 'data' in place, so it gets fresh dicts.
            self.client.trigger_batch([{"channel": e.channel, "name": e.name, "data": e.data} for e in chunk])

    def close(self) -> None:
        """Close the pooled HTTP connection."""
        session = getattr(getattr(self.client, "_pusher_client", None), "http", None)
        session = getattr(session, "session", None)
        if session is not None:
            session.close()
