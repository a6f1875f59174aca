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
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from django.db import models

logger = logging.getLogger("offer_realtime")

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
    # Audiences (README, "Audiences"): a dotted path of a DRF serializer for guests.
    # None: off (one audience, CHANNEL). Set: CHANNEL (make it private) carries the
    # staff events, and PUBLIC_CHANNEL the events of active offers, built with it.
    "PUBLIC_SERIALIZER": None,
    # Audiences: the guests' channel template (a public channel); {hotel_slug} as in CHANNEL.
    "PUBLIC_CHANNEL": "hotel-{hotel_slug}",
    # Audiences: the boolean field of the offer model that says whether guests see it.
    "ACTIVE_FIELD": "is_active",
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
    # (The same number as events.MAX_PAYLOAD_BYTES; settings imports nothing of the package.)
    "MAX_PAYLOAD_BYTES": 10_240,
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
    # background: Pusher HTTP calls the sender may have under way at once when it holds
    # more than one call's worth (a backlog, a bulk change); one offer's events are never
    # in two calls at once, so each offer's events still arrive in order. 1: one at a time.
    "CONCURRENT_CALLS": 4,
    # task: which task backend (alias in TASKS) and queue deliver the events.
    "TASK_BACKEND": "default",
    "TASK_QUEUE": "default",
    # Presence channels ("presence-hotel-{hotel_slug}"): dotted path to a callable
    # (request) -> (user_id, user_info dict) giving the member's identity; None: the
    # user's pk and {"name": full name or username} (offer_realtime.identity.presence_user).
    "PRESENCE_USER": None,
    # The staff's presence channel per hotel (who is online, "X is editing" client events),
    # signed by the channel-authorization view for that hotel's staff; {hotel_slug} as in
    # CHANNEL. None: no presence channel is signed (unless CHANNEL is one).
    "PRESENCE_CHANNEL": "presence-hotel-{hotel_slug}",
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


# -- Validation: a bad value is reported by a system check and replaced by its default ---
#
# Each parser returns the value to use or raises ValueError saying what is expected.
# get_settings() never raises: an unusable value is replaced by the default, logged once
# (per configuration) and kept in ``problems`` for checks.py to report under its own id.

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})
_ATTRIBUTE_PATH_RE = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
_HEADER_NAME_RE = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")  # an HTTP token (RFC 9110)


def _boolean(value: Any) -> bool:
    # Settings built from environment variables often carry "false"/"0" strings.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("must be True or False (or a string such as 'true', 'false', '1', '0')")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError
    number = float(value)  # ValueError for "3s"
    if not math.isfinite(number):
        raise ValueError
    return number


def _seconds(minimum_exclusive: bool) -> Callable[[Any], float]:
    expected = "a positive number of seconds" if minimum_exclusive else "a number of seconds, 0 or more"

    def parse(value: Any) -> float:
        try:
            number = _number(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be {expected}") from None
        if number < 0 or (minimum_exclusive and number == 0):
            raise ValueError(f"must be {expected}")
        return number

    return parse


def _whole(minimum: int, what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = _number(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be {what}") from None
        if number != int(number) or number < minimum:
            raise ValueError(f"must be {what}")
        return int(number)

    return parse


#: The most ``CONCURRENT_CALLS`` may be: the connections the Pusher backend keeps per host
#: (``backends.transport.POOL_SIZE``), so no call waits for, or discards, a connection.
MAX_CONCURRENT_CALLS = 10


def _calls(value: Any) -> int:
    calls = _whole(1, f"a whole number of HTTP calls from 1 to {MAX_CONCURRENT_CALLS}")(value)
    if calls > MAX_CONCURRENT_CALLS:
        raise ValueError(f"must be a whole number of HTTP calls from 1 to {MAX_CONCURRENT_CALLS}")
    return calls


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string")
    return value


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("must be a string (or None)")
    return value


def _attribute_path(value: Any) -> str:
    if not isinstance(value, str) or not _ATTRIBUTE_PATH_RE.match(value):
        raise ValueError("must be a dotted attribute path such as 'hotel.slug'")
    return value


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ValueError("must be a field name")
    return value


def _optional_dotted_path(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _ATTRIBUTE_PATH_RE.match(value) or "." not in value:
        raise ValueError("must be a dotted path to a callable such as 'myapp.realtime.function' (or None)")
    return value


def _optional_class_path(value: Any) -> str | None:
    if value == "":
        return None  # e.g. an unset environment variable
    try:
        return _optional_dotted_path(value)
    except ValueError:
        raise ValueError("must be a dotted path such as 'hotel.serializers.OfferPublicSerializer' (or None)") from None


def _backend(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"must be one of {', '.join(BACKEND_ALIASES)}, a dotted path, or None")
    return value


def _field_names(value: Any) -> tuple[str, ...]:
    # A bare string is refused rather than split into characters.
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list or tuple of field names")
    return tuple(value)


def _header_name(value: Any) -> str:
    if not isinstance(value, str) or not _HEADER_NAME_RE.match(value):
        raise ValueError("must be an HTTP header name such as 'X-Pusher-Socket-ID'")
    return value


def _delivery(value: Any) -> str:
    if not isinstance(value, str) or value not in DELIVERY_MODES:
        raise ValueError(f"is not one of {', '.join(DELIVERY_MODES)}")
    return value


def _app_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return value
    raise ValueError("must be the numeric app id from the Pusher dashboard")


def _port(value: Any) -> int | None:
    if value is None or value == "":
        return None
    port = _whole(1, "a port number from 1 to 65535")(value)
    if port > 65535:
        raise ValueError("must be a port number from 1 to 65535")
    return port


#: Per ``OFFER_REALTIME`` key: the system check id that reports an unusable value, and
#: its parser. Ids are stable (see checks.py); a new key gets a new id.
VALIDATORS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "ENABLED": ("offer_realtime.E101", _boolean),
    "MODEL": ("offer_realtime.E102", _text),
    "SERIALIZER": ("offer_realtime.E103", _text),
    "HOTEL_SLUG": ("offer_realtime.E104", _attribute_path),
    "PHOTO_FIELD": ("offer_realtime.E105", _identifier),
    "PHOTO_URL": ("offer_realtime.E122", _optional_dotted_path),
    "CHANNEL": ("offer_realtime.E106", _text),
    "BACKEND": ("offer_realtime.E107", _backend),
    "TIMEOUT": ("offer_realtime.E108", _seconds(minimum_exclusive=True)),
    "IGNORE_FIELDS": ("offer_realtime.E109", _field_names),
    "MAX_PAYLOAD_BYTES": ("offer_realtime.E110", _whole(1, "a positive whole number of bytes")),
    "SOCKET_ID_HEADER": ("offer_realtime.E111", _header_name),
    "USER_HOTEL_SLUG": ("offer_realtime.E112", _attribute_path),
    "DELIVERY": ("offer_realtime.E009", _delivery),
    "QUEUE_SIZE": ("offer_realtime.E113", _whole(1, "a positive whole number of events")),
    "QUEUE_PUT_TIMEOUT": ("offer_realtime.E114", _seconds(minimum_exclusive=False)),
    # 0 is accepted and means one attempt, as before.
    "RETRY_ATTEMPTS": ("offer_realtime.E115", _whole(0, "a whole number of attempts, 0 or more")),
    "RETRY_BASE_DELAY": ("offer_realtime.E116", _seconds(minimum_exclusive=False)),
    "RETRY_MAX_DELAY": ("offer_realtime.E117", _seconds(minimum_exclusive=False)),
    "FLUSH_TIMEOUT": ("offer_realtime.E118", _seconds(minimum_exclusive=False)),
    "CONCURRENT_CALLS": ("offer_realtime.E128", _calls),
    "TASK_BACKEND": ("offer_realtime.E119", _text),
    "TASK_QUEUE": ("offer_realtime.E120", _text),
    "PRESENCE_USER": ("offer_realtime.E121", _optional_dotted_path),
    "PRESENCE_CHANNEL": ("offer_realtime.E127", _optional_text),
    "ORDERING": ("offer_realtime.E123", _boolean),
    "PUBLIC_SERIALIZER": ("offer_realtime.E124", _optional_class_path),
    "PUBLIC_CHANNEL": ("offer_realtime.E125", _text),
    "ACTIVE_FIELD": ("offer_realtime.E126", _identifier),
}

#: The same for the top-level ``PUSHER_*`` settings.
PUSHER_VALIDATORS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "PUSHER_APP_ID": ("offer_realtime.E131", _app_id),
    "PUSHER_KEY": ("offer_realtime.E132", _optional_text),
    "PUSHER_SECRET": ("offer_realtime.E133", _optional_text),
    "PUSHER_CLUSTER": ("offer_realtime.E134", _optional_text),
    "PUSHER_HOST": ("offer_realtime.E135", _optional_text),
    "PUSHER_PORT": ("offer_realtime.E136", _port),
    "PUSHER_SSL": ("offer_realtime.E137", _boolean),
}


@dataclass(frozen=True)
class SettingProblem:
    """A setting whose value cannot be used; its default is used instead."""

    #: How a user writes it: ``OFFER_REALTIME['TIMEOUT']`` or ``PUSHER_PORT``.
    setting: str
    #: ``repr`` of the value, shortened.
    value: str
    #: What the value must be.
    expected: str
    #: The system check id that reports it.
    id: str

    @property
    def message(self) -> str:
        """One line naming the setting, its value and what is expected."""
        return f"{self.setting} = {self.value} {self.expected}."


def _parse_all(
    raw: dict[str, Any],
    defaults: dict[str, Any],
    validators: dict[str, tuple[str, Callable[[Any], Any]]],
    label: Callable[[str], str],
) -> tuple[dict[str, Any], tuple[SettingProblem, ...]]:
    """Parse every value; an unusable one is replaced by its (parsed) default, logged once."""
    values, problems = {}, []
    for key, default in defaults.items():
        check_id, parse = validators.get(key, ("", lambda value: value))
        try:
            values[key] = parse(raw[key])
            continue
        except Exception as exc:  # noqa: BLE001 - a parser must never make settings raise
            expected = str(exc) or "is not a valid value"
        shown = repr(raw[key])
        problem = SettingProblem(label(key), shown if len(shown) <= 80 else shown[:77] + "...", expected, check_id)
        problems.append(problem)
        values[key] = parse(default)
        logger.error("%s; using the default %r instead (%s).", problem.message.rstrip("."), default, check_id)
    return values, tuple(problems)


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
    presence_user: str | None = None
    #: Pusher calls the background sender may have under way at once.
    concurrent_calls: int = 4
    #: The staff's presence channel template (None: off).
    presence_channel: str | None = "presence-hotel-{hotel_slug}"
    ordering: bool = True
    #: Audiences: the guests' serializer (None: off), channel template and active field.
    public_serializer: str | None = None
    public_channel: str = "hotel-{hotel_slug}"
    active_field: str = "is_active"
    #: Keys the project set that the app does not know (reported by a system check).
    unknown_keys: tuple[str, ...] = ()
    #: Values that could not be used (their defaults are used instead); reported by checks.
    problems: tuple[SettingProblem, ...] = ()

    @property
    def invalid_keys(self) -> frozenset[str]:
        """``OFFER_REALTIME`` keys whose value was replaced by the default."""
        return frozenset(p.setting[len("OFFER_REALTIME['") : -2] for p in self.problems)

    @property
    def hotel_slug_path(self) -> tuple[str, ...]:
        """``HOTEL_SLUG`` split into attribute names."""
        return tuple(self.hotel_slug.split("."))

    @property
    def audiences(self) -> bool:
        """Whether the public audience is on: a ``PUBLIC_SERIALIZER`` and a ``PUBLIC_CHANNEL``
        other than ``CHANNEL`` (the same template would give guests the staff events;
        the system check ``offer_realtime.E032`` reports it)."""
        return bool(self.public_serializer) and self.public_channel != self.channel

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
    #: Values that could not be used (their defaults are used instead); reported by checks.
    problems: tuple[SettingProblem, ...] = field(default=(), compare=False)

    @property
    def missing(self) -> list[str]:
        """Names of the required ``PUSHER_*`` settings that are empty."""
        return [
            name
            for name, value in zip(REQUIRED_PUSHER_SETTINGS, (self.app_id, self.key, self.secret), strict=True)
            if not value
        ]

    @property
    def complete(self) -> bool:
        """True when app id, key and secret are all set."""
        return not self.missing


@functools.cache
def get_pusher_credentials() -> PusherCredentials:
    """Pusher credentials from the top-level ``PUSHER_*`` settings; never raises."""
    raw = {name: getattr(django_settings, name, default) for name, default in PUSHER_SETTINGS.items()}
    values, problems = _parse_all(raw, PUSHER_SETTINGS, PUSHER_VALIDATORS, label=str)
    return PusherCredentials(
        app_id=values["PUSHER_APP_ID"],
        key=values["PUSHER_KEY"],
        secret=values["PUSHER_SECRET"],
        cluster=values["PUSHER_CLUSTER"],
        host=values["PUSHER_HOST"],
        port=values["PUSHER_PORT"],
        ssl=values["PUSHER_SSL"],
        problems=problems,
    )


def resolve_backend_path(value: str | None) -> str:
    """Turn ``OFFER_REALTIME["BACKEND"]`` (alias, dotted path or None) into a dotted path."""
    if not value:
        value = "pusher" if get_pusher_credentials().complete else "logging"
    return BACKEND_ALIASES.get(value, value)


@functools.cache
def get_settings() -> OfferRealtimeSettings:
    """The project's ``OFFER_REALTIME`` merged over :data:`DEFAULTS`; never raises.

    A value that cannot be used is replaced by its default, logged once at ERROR and
    listed in ``problems`` (``manage.py check`` reports each under its own id).
    """
    user = getattr(django_settings, "OFFER_REALTIME", None) or {}
    if not isinstance(user, dict):
        # checks.py reports this; meanwhile behave as if nothing was set.
        user = {}
    unknown = tuple(sorted(str(key) for key in set(user) - set(DEFAULTS)))
    merged = {**DEFAULTS, **{key: value for key, value in user.items() if key in DEFAULTS}}
    values, problems = _parse_all(merged, DEFAULTS, VALIDATORS, label=lambda key: f"OFFER_REALTIME[{key!r}]")
    values["BACKEND"] = resolve_backend_path(values["BACKEND"])
    values["RETRY_ATTEMPTS"] = max(1, values["RETRY_ATTEMPTS"])
    return OfferRealtimeSettings(
        **{key.lower(): value for key, value in values.items()}, unknown_keys=unknown, problems=problems
    )


def get_model() -> type[models.Model]:
    """The configured offer model class (raises LookupError/ValueError if it is not installed)."""
    from django.apps import apps

    return apps.get_model(get_settings().model)


@functools.cache
def _import_cached(path: str) -> Any:
    return import_string(path)


def get_serializer_class() -> Any:
    """The configured DRF serializer class (raises ImportError if it cannot be imported)."""
    return _import_cached(get_settings().serializer)


def get_public_serializer_class() -> Any:
    """The audiences' public serializer class (raises ImportError if it cannot be imported)."""
    return _import_cached(get_settings().public_serializer)


#: The Django settings this module reads. Other modules that cache something built from
#: them (the backend, the signal receivers, the background sender) subscribe to
#: ``setting_changed`` themselves and check against this set.
WATCHED_SETTINGS = frozenset({"OFFER_REALTIME", *PUSHER_SETTINGS})


@receiver(setting_changed)
def _reload_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in WATCHED_SETTINGS:
        get_settings.cache_clear()
        get_pusher_credentials.cache_clear()
