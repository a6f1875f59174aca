"""System checks (``manage.py check``) that name each misconfiguration.

Ids are stable; a retired id is never reused.

- ``offer_realtime.E001`` ``OFFER_REALTIME`` is not a dict, or has unknown keys.
- ``offer_realtime.E002`` ``MODEL`` is not an installed model.
- ``offer_realtime.E003`` ``SERIALIZER`` cannot be imported.
- ``offer_realtime.E004`` ``PHOTO_FIELD`` is not a field of the model, or not a FileField, ImageField or
  CloudinaryField and no ``PHOTO_URL`` is set, or ``PHOTO_URL`` is not an importable callable.
- ``offer_realtime.E005`` ``HOTEL_SLUG`` does not lead from the model to a field.
- ``offer_realtime.E006`` ``BACKEND`` cannot be imported or is not a backend.
- ``offer_realtime.E007`` The Pusher backend is selected but credentials are missing.
- ``offer_realtime.E008`` ``CHANNEL`` cannot produce a valid Pusher channel name.
- ``offer_realtime.E009`` ``DELIVERY`` is not one of "inline", "background", "task".
- ``offer_realtime.E010`` ``DELIVERY = "task"`` but no task framework, no such ``TASK_BACKEND``,
  or a ``TASK_QUEUE`` that backend does not accept.
- ``offer_realtime.E030`` (audiences) ``PUBLIC_SERIALIZER`` cannot be imported.
- ``offer_realtime.E031`` (audiences) ``PUBLIC_CHANNEL`` is a private or presence channel: guests cannot subscribe.
- ``offer_realtime.E032`` (audiences) ``PUBLIC_CHANNEL`` cannot produce a valid channel name of its own per
  hotel (cannot be rendered, refused characters or length, no ``{hotel_slug}``, or the same as ``CHANNEL``).
- ``offer_realtime.E033`` (audiences) ``ACTIVE_FIELD`` is not a field of the model.
- ``offer_realtime.W001`` The hotel slug field can hold values Pusher refuses in a channel name.
- ``offer_realtime.W002`` (deploy) Events are only logged, not sent: no Pusher credentials.
- ``offer_realtime.W003`` (deploy) Channels are public: anyone with the Pusher key can read them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.module_loading import import_string

from offer_realtime import events, photos
from offer_realtime.settings import (
    BACKEND_ALIASES,
    DEFAULTS,
    DELIVERY_MODES,
    get_model,
    get_pusher_credentials,
    get_settings,
)

# A slug of typical shape, to see what the channel template produces.
_SAMPLE_SLUG = "killarney"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list:
    """E001: the settings dict itself."""
    user = getattr(django_settings, "OFFER_REALTIME", None)
    if user is not None and not isinstance(user, dict):
        return [Error("OFFER_REALTIME must be a dict.", id="offer_realtime.E001")]
    unknown = get_settings().unknown_keys
    if unknown:
        return [
            Error(
                f"OFFER_REALTIME has unknown key(s): {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(DEFAULTS)}.",
                id="offer_realtime.E001",
            )
        ]
    return []


@register(Tags.models)
def check_model(app_configs: Any = None, **kwargs: Any) -> list:
    """E002, E004, E005, W001: the offer model, its photo field and the slug path."""
    conf = get_settings()
    try:
        model = get_model()
    except (LookupError, ValueError) as exc:
        return [
            Error(
                f"OFFER_REALTIME['MODEL'] {conf.model!r} is not an installed model: {exc}",
                hint="Set it to 'app_label.ModelName' of your offer model.",
                id="offer_realtime.E002",
            )
        ]
    errors = _check_photo_field(model, conf.photo_field, conf.photo_url)
    errors.extend(_check_slug_path(model, conf.hotel_slug_path, conf.channel))
    return errors


def _check_photo_field(model: type[models.Model], name: str, url_function: str | None) -> list:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    kind = photos.kind_of(field)
    if kind is None:
        return [
            Error(
                f"OFFER_REALTIME['PHOTO_FIELD'] {name!r} is not a field of {model._meta.label}.",
                hint="Name the model field that holds the offer's photo.",
                id="offer_realtime.E004",
            )
        ]
    if url_function:
        problem = photos.url_function_problem(url_function)
        if problem:
            return [
                Error(
                    f"OFFER_REALTIME['PHOTO_URL'] {url_function!r} {problem}.",
                    hint="A dotted path to a callable taking an offer and returning its photo's URL or None.",
                    id="offer_realtime.E004",
                )
            ]
        return []
    if kind is photos.PhotoKind.OTHER:
        return [
            Error(
                f"OFFER_REALTIME['PHOTO_FIELD'] {name!r} of {model._meta.label} is a "
                f"{type(field).__name__}, not a FileField, ImageField or CloudinaryField, so its URL "
                "is unknown.",
                hint="Set OFFER_REALTIME['PHOTO_URL'] to the dotted path of a callable "
                "offer -> str | None giving the photo's URL (as your serializer gives it).",
                id="offer_realtime.E004",
            )
        ]
    return []


def _check_slug_path(model: type[models.Model], path: tuple[str, ...], template: str) -> list:
    current = model
    for position, name in enumerate(path):
        try:
            field = current._meta.get_field(name)
        except FieldDoesNotExist:
            if position == len(path) - 1 and hasattr(current, name):
                return []  # a property: nothing more can be checked statically
            return [
                Error(
                    f"OFFER_REALTIME['HOTEL_SLUG'] {'.'.join(path)!r}: {current._meta.label} has no "
                    f"field {name!r}.",
                    id="offer_realtime.E005",
                )
            ]
        if position < len(path) - 1:
            if not (field.many_to_one or field.one_to_one):
                return [
                    Error(
                        f"OFFER_REALTIME['HOTEL_SLUG'] {'.'.join(path)!r}: {name!r} on "
                        f"{current._meta.label} is not a foreign key or one-to-one field.",
                        id="offer_realtime.E005",
                    )
                ]
            current = field.related_model
    return _check_slug_field(field, template)


def _check_slug_field(field: Any, template: str) -> list:
    warnings = []
    if getattr(field, "allow_unicode", False):
        warnings.append(
            Warning(
                f"{field.model._meta.label}.{field.name} allows unicode slugs, which Pusher refuses "
                "in channel names; such hotels get no events (an error is logged).",
                hint="Use allow_unicode=False, or a CHANNEL built from an ASCII attribute.",
                id="offer_realtime.W001",
            )
        )
    max_length = getattr(field, "max_length", None)
    if max_length and _rendered_length(template, max_length) > events.CHANNEL_NAME_MAX_LENGTH:
        warnings.append(
            Warning(
                f"{field.model._meta.label}.{field.name} allows {max_length} characters, so a channel "
                f"name from {template!r} can exceed Pusher's {events.CHANNEL_NAME_MAX_LENGTH}.",
                id="offer_realtime.W001",
            )
        )
    return warnings


def _rendered_length(template: str, slug_length: int) -> int:
    try:
        return len(template.format(hotel_slug="x" * slug_length))
    except (KeyError, IndexError, ValueError):
        return 0  # reported by check_channel


@register(Tags.compatibility)
def check_serializer(app_configs: Any = None, **kwargs: Any) -> list:
    """E003: the serializer can be imported."""
    path = get_settings().serializer
    try:
        import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"OFFER_REALTIME['SERIALIZER'] {path!r} cannot be imported: {exc}",
                id="offer_realtime.E003",
            )
        ]
    return []


@register(Tags.compatibility)
def check_channel(app_configs: Any = None, **kwargs: Any) -> list:
    """E008: the channel template renders to a valid Pusher channel name."""
    template = get_settings().channel
    try:
        sample = template.format(hotel_slug=_SAMPLE_SLUG)
    except (KeyError, IndexError, ValueError) as exc:
        return [
            Error(
                f"OFFER_REALTIME['CHANNEL'] {template!r} cannot be rendered ({type(exc).__name__}: {exc}).",
                hint="The only placeholder is {hotel_slug}.",
                id="offer_realtime.E008",
            )
        ]
    problem = events.channel_name_problem(sample)
    if problem or sample == template:
        return [
            Error(
                f"OFFER_REALTIME['CHANNEL'] {template!r} gives {sample!r} for a hotel "
                + (f"slug {_SAMPLE_SLUG!r}, which Pusher refuses: {problem}." if problem else
                   "no matter the hotel: every hotel would share one channel."),
                id="offer_realtime.E008",
            )
        ]
    return []


@register(Tags.compatibility)
def check_audiences(app_configs: Any = None, **kwargs: Any) -> list:
    """E030-E033: the public audience, when ``PUBLIC_SERIALIZER`` turns it on."""
    conf = get_settings()
    if not conf.public_serializer:
        return []
    errors = []
    try:
        import_string(conf.public_serializer)
    except ImportError as exc:
        errors.append(
            Error(
                f"OFFER_REALTIME['PUBLIC_SERIALIZER'] {conf.public_serializer!r} cannot be imported: {exc}",
                hint="A dotted path to the DRF serializer of what guests may see.",
                id="offer_realtime.E030",
            )
        )
    template = conf.public_channel
    if template.startswith(("private-", "presence-")):
        errors.append(
            Error(
                f"OFFER_REALTIME['PUBLIC_CHANNEL'] {template!r} is a private channel: guests cannot subscribe to it.",
                hint="Use a public name such as 'hotel-{hotel_slug}', and a private CHANNEL for staff.",
                id="offer_realtime.E031",
            )
        )
    else:
        problem = _public_channel_problem(template, conf.channel)
        if problem:
            errors.append(
                Error(
                    f"OFFER_REALTIME['PUBLIC_CHANNEL'] {template!r} {problem}.",
                    hint="Use 'hotel-{hotel_slug}' for guests and 'private-hotel-{hotel_slug}' as CHANNEL for staff.",
                    id="offer_realtime.E032",
                )
            )
    try:
        model = get_model()
    except (LookupError, ValueError):
        return errors  # E002
    try:
        model._meta.get_field(conf.active_field)
    except FieldDoesNotExist:
        errors.append(
            Error(
                f"OFFER_REALTIME['ACTIVE_FIELD'] {conf.active_field!r} is not a field of {model._meta.label}.",
                hint="Name the boolean field that says whether guests see an offer.",
                id="offer_realtime.E033",
            )
        )
    return errors


def _public_channel_problem(template: str, staff_template: str) -> str | None:
    try:
        sample = template.format(hotel_slug=_SAMPLE_SLUG)
    except (KeyError, IndexError, ValueError) as exc:
        return f"cannot be rendered ({type(exc).__name__}: {exc}); the only placeholder is {{hotel_slug}}"
    problem = events.channel_name_problem(sample)
    if problem:
        return f"gives {sample!r} for a hotel slug {_SAMPLE_SLUG!r}, which Pusher refuses: {problem}"
    if sample == template:
        return "has no {hotel_slug}: every hotel would share one channel"
    if template == staff_template:
        return "is the same as CHANNEL: guests would get the staff events; set CHANNEL to a private template"
    return None


@register(Tags.compatibility)
def check_backend(app_configs: Any = None, **kwargs: Any) -> list:
    """E006, E007: the backend imports, and the Pusher backend has credentials."""
    from offer_realtime.backends.base import BaseBackend

    path = get_settings().backend
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        return [
            Error(
                f"OFFER_REALTIME['BACKEND'] {path!r} cannot be imported: {exc}",
                hint=f"Use one of {', '.join(BACKEND_ALIASES)} or a dotted path.",
                id="offer_realtime.E006",
            )
        ]
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        return [
            Error(
                f"OFFER_REALTIME['BACKEND'] {path!r} is not a subclass of "
                "offer_realtime.backends.BaseBackend.",
                id="offer_realtime.E006",
            )
        ]
    if path == BACKEND_ALIASES["pusher"]:
        missing = get_pusher_credentials().missing
        if missing:
            return [
                Error(
                    f"The Pusher backend is selected but {', '.join(missing)} "
                    f"{'is' if len(missing) == 1 else 'are'} not set.",
                    hint="Set them in settings (from the environment), or choose another BACKEND.",
                    id="offer_realtime.E007",
                )
            ]
    return []


@register(Tags.compatibility, deploy=True)
def check_deploy_backend(app_configs: Any = None, **kwargs: Any) -> list:
    """W002: a deployment whose events only go to the log."""
    user = getattr(django_settings, "OFFER_REALTIME", None)
    user_backend = user.get("BACKEND") if isinstance(user, dict) else None
    if get_settings().backend == BACKEND_ALIASES["logging"] and not user_backend:
        return [
            Warning(
                "No Pusher credentials are set, so offer events are only logged, not sent.",
                hint="Set PUSHER_APP_ID, PUSHER_KEY and PUSHER_SECRET, or set "
                "OFFER_REALTIME['BACKEND'] explicitly to silence this.",
                id="offer_realtime.W002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_deploy_public_channels(app_configs: Any = None, **kwargs: Any) -> list:
    """W003: public channels in production."""
    if get_settings().private:
        return []
    return [
        Warning(
            f"Offer events go to public channels ({get_settings().channel!r}): anyone holding the "
            "(public) Pusher key can subscribe and read every hotel's offers, drafts included.",
            hint="Set OFFER_REALTIME['CHANNEL'] = 'private-hotel-{hotel_slug}' and include "
            "offer_realtime.urls for the channel-authorization endpoint; to keep a live public page, "
            "also set PUBLIC_SERIALIZER (README, \"Audiences\").",
            id="offer_realtime.W003",
        )
    ]


@register(Tags.compatibility)
def check_delivery(app_configs: Any = None, **kwargs: Any) -> list:
    """E009, E010: the delivery mode, and for "task" the task framework and backend."""
    conf = get_settings()
    if conf.delivery not in DELIVERY_MODES:
        return [
            Error(
                f"OFFER_REALTIME['DELIVERY'] {conf.delivery!r} is not one of {', '.join(DELIVERY_MODES)}.",
                id="offer_realtime.E009",
            )
        ]
    if conf.delivery != "task":
        return []
    try:
        from offer_realtime.tasks import deliver_offer_changes, task_backends
    except ImportError:
        return [
            Error(
                "OFFER_REALTIME['DELIVERY'] is 'task' but Django's task framework is not available.",
                hint='On Django 5.2 install the backport: pip install "django-offer-realtime[tasks]".',
                id="offer_realtime.E010",
            )
        ]
    try:
        # Everything enqueueing would check: the backend alias, the queue name (a backend
        # accepts only the queues in its QUEUES), and that the backend can run the task.
        task = deliver_offer_changes.using(backend=conf.task_backend, queue_name=conf.task_queue)
        task_backends[conf.task_backend].validate_task(task)
    except Exception as exc:  # noqa: BLE001 - InvalidTaskBackend, InvalidTask and import errors alike
        return [
            Error(
                f"Offer events cannot be enqueued on TASK_BACKEND {conf.task_backend!r}, "
                f"TASK_QUEUE {conf.task_queue!r}: {exc}",
                hint="Name an alias of the TASKS setting and a queue listed in its QUEUES.",
                id="offer_realtime.E010",
            )
        ]
    return []
