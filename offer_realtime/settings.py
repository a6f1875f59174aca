"""Settings for offer_realtime, read in one place.

Everything the app reads from ``django.conf.settings`` goes through :func:`get_settings`
and :func:`get_pusher_credentials`. Both are cached and cleared when a relevant setting
changes (``override_settings`` in tests), so no other module reads Django settings.

Host projects configure the app through one dict::

    OFFER_REALTIME = {
        "MODEL": "hotel.Offer",
        "SERIALIZER": "hotel.serializers.OfferStaffSerializer",
        ...
    }

and Pusher credentials through the top-level ``PUSHER_*`` settings that Pusher's own
Django examples (and the seed project's ``chat/utils.py``) already use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from offer_realtime import events

#: Short names accepted for ``OFFER_REALTIME["BACKEND"]``, besides any dotted path.
BACKEND_ALIASES: dict[str, str] = {
    "pusher": "offer_realtime.backends.pusher.PusherBackend",
    "memory": "offer_realtime.backends.memory.MemoryBackend",
    "logging": "offer_realtime.backends.logging.LoggingBackend",
    "null": "offer_realtime.backends.null.NullBackend",
}

#: Every key ``OFFER_REALTIME`` accepts, with its default.
DEFAULTS: dict[str, Any] = {
    # Kill switch, read on every signal: False records and sends nothing.
    "ENABLED": True,
    # The offer model, as "app_label.ModelName".
    "MODEL": "hotel.Offer",
    # Dotted path of the DRF serializer whose data goes into offer-created/updated.
    "SERIALIZER": "hotel.serializers.OfferStaffSerializer",
    # Attribute path from an offer to its hotel's slug.
    "HOTEL_SLUG": "hotel.slug",
    # Name of the offer's photo field; its changes send offer-image-updated. A FileField,
    # ImageField or cloudinary.models.CloudinaryField needs nothing more.
    "PHOTO_FIELD": "photo",
    # Dotted path to a callable offer -> str | None giving the photo's URL, as the host's
    # serializer gives it. Needed for any other kind of PHOTO_FIELD; when set, it is used
    # for every kind. None: the field's own URL (offer.photo.url).
    "PHOTO_URL": None,
    # Channel name template; {hotel_slug} is the only placeholder.
    "CHANNEL": "hotel-{hotel_slug}",
    # Dotted path or alias (see BACKEND_ALIASES). None picks "pusher" when the
    # PUSHER_* credentials are set and "logging" when they are not.
    "BACKEND": None,
    # Seconds an HTTP call to Pusher may take before it counts as failed.
    "TIMEOUT": 3.0,
    # Extra model fields whose changes alone should not send offer-updated
    # (auto_now fields are always ignored: every save changes them).
    "IGNORE_FIELDS": (),
    # Pusher's limit on one event's data in UTF-8 bytes; raise it for a dedicated
    # cluster. A larger event is replaced by offers-updated {"action": "sync"}.
    "MAX_PAYLOAD_BYTES": events.MAX_PAYLOAD_BYTES,
    # Request header carrying the originating browser's Pusher socket id, read by
    # offer_realtime.middleware.SocketIdMiddleware ("to others").
    "SOCKET_ID_HEADER": "X-Pusher-Socket-ID",
    # Attribute path from a user to the slug of the hotel they are staff of; the
    # channel-authorization view signs private channels of that hotel only.
    "USER_HOTEL_SLUG": "staff_profile.hotel.slug",
    # How events leave the process after commit: "inline" (in the committing thread),
    # "background" (an in-process sender thread; the request never waits on Pusher)
    # or "task" (Django's task framework: durable, retried by the host's task worker).
    "DELIVERY": "background",
    # background: events the sender may hold; a full queue blocks a writer for at
    # most QUEUE_PUT_TIMEOUT seconds, then the event is dropped (logged, counted).
    "QUEUE_SIZE": 10_000,
    "QUEUE_PUT_TIMEOUT": 0.1,
    # background and task: attempts for a transient failure (timeout, refused
    # connection, 5xx), waiting RETRY_BASE_DELAY * 2**(n-1) seconds, at most
    # RETRY_MAX_DELAY, between attempts. 4xx answers are not retried.
    "RETRY_ATTEMPTS": 5,
    "RETRY_BASE_DELAY": 0.5,
    "RETRY_MAX_DELAY": 10.0,
    # background: seconds the sender may use at interpreter exit to send what it holds.
    "FLUSH_TIMEOUT": 5.0,
    # task: which task backend (alias in TASKS) and queue deliver the events.
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # Per-offer locks on the database (PostgreSQL advisory locks, SQLite lock files)
    # around each delivery attempt, so one offer's events sent by several processes reach
    # Pusher in order (offer_realtime.ordering). Turn off behind a transaction-pooling
    # PgBouncer, which breaks session locks.
    "ORDERING": True,
}

DELIVERY_MODES = ("inline", "background", "task")

#: Top-level Django settings holding Pusher credentials, with their defaults.
PUSHER_SETTINGS: dict[str, Any] = {
    "PUSHER_APP_ID": None,
    "PUSHER_KEY": None,
    "PUSHER_SECRET": None,
    "PUSHER_CLUSTER": None,
    "PUSHER_HOST": None,
    "PUSHER_PORT": None,
    "PUSHER_SSL": True,
}

REQUIRED_PUSHER_SETTINGS = ("PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET")


@dataclass(frozen=True)
class OfferRealtimeSettings:
    """The merged ``OFFER_REALTIME`` settings (defaults overlaid with the project's)."""

    enabled: bool
    model: str
    serializer: str
    hotel_slug: str
    photo_field: str
    photo_url: str | None
    channel: str
    backend: str
    timeout: float
    ignore_fields: tuple[str, ...]
    max_payload_bytes: int
    socket_id_header: str
    user_hotel_slug: str
    delivery: str
    queue_size: int
    queue_put_timeout: float
    retry_attempts: int
    retry_base_delay: float
    retry_max_delay: float
    flush_timeout: float
    task_backend: str
    task_queue: str
    ordering: bool = True
    #: Keys the project set that the app does not know (reported by a system check).
    unknown_keys: tuple[str, ...] = ()

    @property
    def hotel_slug_path(self) -> tuple[str, ...]:
        """``HOTEL_SLUG`` split into attribute names."""
        return tuple(self.hotel_slug.split("."))

    @property
    def private(self) -> bool:
        """Whether channels are private (subscriptions need the authorization view)."""
        return self.channel.startswith(("private-", "presence-"))


@dataclass(frozen=True)
class PusherCredentials:
    """Connection settings for the Pusher HTTP API (hosted Pusher or soketi)."""

    app_id: str | None
    key: str | None
    secret: str | None
    cluster: str | None
    host: str | None
    port: int | None
    ssl: bool

    @property
    def missing(self) -> list[str]:
        """Names of the required ``PUSHER_*`` settings that are empty."""
        return [
            name
            for name, value in zip(REQUIRED_PUSHER_SETTINGS, (self.app_id, self.key, self.secret))
            if not value
        ]

    @property
    def complete(self) -> bool:
        """True when app id, key and secret are all set."""
        return not self.missing


def _as_bool(value: Any) -> bool:
    # Settings built from environment variables often carry "false"/"0" strings.
    if isinstance(value, str):
        return value.strip().lower() not in {"", "0", "false", "no", "off"}
    return bool(value)


@functools.cache
def get_pusher_credentials() -> PusherCredentials:
    """Pusher credentials from the top-level ``PUSHER_*`` settings."""
    raw = {name: getattr(django_settings, name, default) for name, default in PUSHER_SETTINGS.items()}
    port = raw["PUSHER_PORT"]
    return PusherCredentials(
        app_id=str(raw["PUSHER_APP_ID"]) if raw["PUSHER_APP_ID"] else None,
        key=raw["PUSHER_KEY"] or None,
        secret=raw["PUSHER_SECRET"] or None,
        cluster=raw["PUSHER_CLUSTER"] or None,
        host=raw["PUSHER_HOST"] or None,
        port=int(port) if port not in (None, "") else None,
        ssl=_as_bool(raw["PUSHER_SSL"]),
    )


def resolve_backend_path(value: str | None) -> str:
    """Turn ``OFFER_REALTIME["BACKEND"]`` (alias, dotted path or None) into a dotted path."""
    if not value:
        value = "pusher" if get_pusher_credentials().complete else "logging"
    return BACKEND_ALIASES.get(value, value)


@functools.cache
def get_settings() -> OfferRealtimeSettings:
    """The project's ``OFFER_REALTIME`` merged over :data:`DEFAULTS`."""
    user = getattr(django_settings, "OFFER_REALTIME", None) or {}
    if not isinstance(user, dict):
        # checks.py reports this; meanwhile behave as if nothing was set.
        user = {}
    merged = {**DEFAULTS, **user}
    return OfferRealtimeSettings(
        enabled=_as_bool(merged["ENABLED"]),
        model=merged["MODEL"],
        serializer=merged["SERIALIZER"],
        hotel_slug=merged["HOTEL_SLUG"],
        photo_field=merged["PHOTO_FIELD"],
        photo_url=merged["PHOTO_URL"] or None,
        channel=merged["CHANNEL"],
        backend=resolve_backend_path(merged["BACKEND"]),
        timeout=float(merged["TIMEOUT"]),
        ignore_fields=tuple(merged["IGNORE_FIELDS"]),
        max_payload_bytes=int(merged["MAX_PAYLOAD_BYTES"]),
        socket_id_header=merged["SOCKET_ID_HEADER"],
        user_hotel_slug=merged["USER_HOTEL_SLUG"],
        delivery=merged["DELIVERY"],
        queue_size=int(merged["QUEUE_SIZE"]),
        queue_put_timeout=float(merged["QUEUE_PUT_TIMEOUT"]),
        retry_attempts=max(1, int(merged["RETRY_ATTEMPTS"])),
        retry_base_delay=float(merged["RETRY_BASE_DELAY"]),
        retry_max_delay=float(merged["RETRY_MAX_DELAY"]),
        flush_timeout=float(merged["FLUSH_TIMEOUT"]),
        task_backend=merged["TASK_BACKEND"],
        task_queue=merged["TASK_QUEUE"],
        ordering=_as_bool(merged["ORDERING"]),
        unknown_keys=tuple(sorted(set(user) - set(DEFAULTS))),
    )


def get_model():
    """The configured offer model class (raises LookupError/ValueError if it is not installed)."""
    from django.apps import apps

    return apps.get_model(get_settings().model)


@functools.cache
def _import_cached(path: str) -> Any:
    return import_string(path)


def get_serializer_class():
    """The configured DRF serializer class (raises ImportError if it cannot be imported)."""
    return _import_cached(get_settings().serializer)


_WATCHED = {"OFFER_REALTIME", *PUSHER_SETTINGS}


@receiver(setting_changed)
def _reload_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting not in _WATCHED:
        return
    get_settings.cache_clear()
    get_pusher_credentials.cache_clear()
    # The backend and the signal receivers depend on these settings too.
    from offer_realtime import backends, receivers, sender

    sender.reset_sender()
    backends.reset_backend()
    receivers.reconnect()
