"""A round trip to Pusher with the configured backend, explained for an operator."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pusher.errors
import requests
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from offer_realtime.backends import get_backend
from offer_realtime.events import Event, InvalidChannelName, channel_for
from offer_realtime.redaction import redact_exception
from offer_realtime.settings import get_pusher_credentials, get_settings

PING_EVENT = "offer-realtime-ping"


@dataclass(frozen=True)
class PingResult:
    """What happened to the ping: success and round-trip time, or the explained error."""

    ok: bool
    channel: str
    backend: str
    elapsed_ms: float | None = None
    error: str | None = None


def _where() -> str:
    creds = get_pusher_credentials()
    if creds.host:
        return f"{creds.host}:{creds.port or ('443' if creds.ssl else '80')} (PUSHER_HOST/PUSHER_PORT)"
    if creds.cluster:
        return f"api-{creds.cluster}.pusher.com (PUSHER_CLUSTER={creds.cluster!r})"
    return "api.pusherapp.com (no PUSHER_CLUSTER set)"


def explain(exc: Exception) -> str:
    """An operator's reading of a send failure (with no signed Pusher URL in it)."""
    redact_exception(exc)
    timeout = get_settings().timeout
    if isinstance(exc, ImproperlyConfigured):
        return f"Misconfigured: {exc}"
    if isinstance(exc, pusher.errors.PusherBadAuth):
        return f"Bad credentials: Pusher answered 401 ({exc}). Check PUSHER_KEY and PUSHER_SECRET."
    if isinstance(exc, pusher.errors.PusherForbidden):
        return f"Forbidden: Pusher answered 403 ({exc}). The app may be disabled or over its quota."
    if isinstance(exc, pusher.errors.PusherBadRequest):
        return f"Bad request: Pusher answered 400 ({exc})."
    if isinstance(exc, pusher.errors.PusherBadStatus):
        if str(exc).startswith("404"):
            return f"Not found: {exc}. Wrong PUSHER_APP_ID, or the app lives on another cluster than {_where()}."
        return f"Pusher answered {exc}."
    if isinstance(exc, requests.Timeout):
        return f"Timed out: no answer from {_where()} within {timeout:g} s (OFFER_REALTIME['TIMEOUT'])."
    if isinstance(exc, requests.ConnectionError):
        return f"Unreachable: cannot connect to {_where()}: {exc}. Check the host, port, cluster and network."
    return f"{type(exc).__name__}: {exc}"


def ping(hotel_slug: str = "ping") -> PingResult:
    """Send one test event on ``hotel_slug``'s channel with the configured backend; never raise."""
    conf = get_settings()
    backend_name = conf.backend.rsplit(".", 1)[-1]
    try:
        channel = channel_for(conf.channel, hotel_slug)
    except InvalidChannelName as exc:
        return PingResult(False, f"{hotel_slug!r}", backend_name, error=str(exc))
    event = Event(PING_EVENT, channel, {"message": "ping", "sent_at": timezone.now().isoformat()})
    started = time.perf_counter()
    try:
        get_backend().send([event])
    except Exception as exc:  # noqa: BLE001 - every failure is explained, not raised
        return PingResult(False, channel, backend_name, error=explain(exc))
    return PingResult(True, channel, backend_name, elapsed_ms=(time.perf_counter() - started) * 1000)
