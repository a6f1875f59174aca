"""System checks (``manage.py check``) that name each misconfiguration.

One id per problem. Ids are stable; a retired id is never reused.

- ``offer_realtime.E001`` ``OFFER_REALTIME`` is not a dict.
- ``offer_realtime.E002`` ``MODEL`` is not an installed model.
- ``offer_realtime.E003`` ``SERIALIZER`` cannot be imported.
- ``offer_realtime.E004`` ``PHOTO_FIELD`` is not a field of the model.
- ``offer_realtime.E005`` ``HOTEL_SLUG`` names a field the model (or a related model) does not have.
- ``offer_realtime.E006`` ``BACKEND`` cannot be imported.
- ``offer_realtime.E007`` The Pusher backend is selected but credentials are missing.
- ``offer_realtime.E008`` ``CHANNEL`` renders to a name Pusher refuses (characters, length).
- ``offer_realtime.E009`` ``DELIVERY`` is not one of "inline", "background", "task".
- ``offer_realtime.E010`` ``DELIVERY = "task"`` but Django's task framework is not available.
- ``offer_realtime.E011`` ``OFFER_REALTIME`` has unknown keys (typos are named).
- ``offer_realtime.E012`` ``HOTEL_SLUG`` passes through a field that is not a foreign key or one-to-one.
- ``offer_realtime.E013`` ``BACKEND`` is not a subclass of ``BaseBackend``.
- ``offer_realtime.E014`` ``CHANNEL`` cannot be rendered (a placeholder other than ``{hotel_slug}``).
- ``offer_realtime.E015`` ``CHANNEL`` has no ``{hotel_slug}``: every hotel would share one channel.
- ``offer_realtime.E016`` ``DELIVERY = "task"`` and ``TASK_BACKEND`` is not an alias in ``TASKS``.
- ``offer_realtime.E017`` ``DELIVERY = "task"`` and ``TASK_QUEUE`` is not in that backend's ``QUEUES``.
- ``offer_realtime.E018`` ``DELIVERY = "task"`` and the task backend cannot be loaded or refuses the tasks.
- ``offer_realtime.E019`` ``PRESENCE_USER`` cannot be imported.
- ``offer_realtime.E020`` ``PRESENCE_USER`` is not callable.
- ``offer_realtime.E021`` ``PHOTO_FIELD`` is not a ``FileField``, ``ImageField`` or ``CloudinaryField``
  and no ``PHOTO_URL`` is set, so its URL is unknown.
- ``offer_realtime.E022`` ``PHOTO_URL`` cannot be imported.
- ``offer_realtime.E023`` ``PHOTO_URL`` is not callable.
- ``offer_realtime.E030`` (audiences) ``PUBLIC_SERIALIZER`` cannot be imported.
- ``offer_realtime.E031`` (audiences) ``PUBLIC_CHANNEL`` is a private or presence channel: guests cannot subscribe.
- ``offer_realtime.E032`` (audiences) ``PUBLIC_CHANNEL`` cannot produce a valid channel name of its own per
  hotel (cannot be rendered, refused characters or length, no ``{hotel_slug}``, or the same as ``CHANNEL``).
- ``offer_realtime.E033`` (audiences) ``ACTIVE_FIELD`` is not a field of the model.
- ``offer_realtime.E034`` ``PRESENCE_CHANNEL`` is not a presence channel, or cannot produce a valid channel
  name of its own per hotel (cannot be rendered, refused characters or length, no ``{hotel_slug}``).
- ``offer_realtime.E101``-``E128`` An ``OFFER_REALTIME`` value of the wrong type or out of range, one
  id per key (``settings.VALIDATORS``): E101 ``ENABLED``, E102 ``MODEL``, E103 ``SERIALIZER``,
  E104 ``HOTEL_SLUG``, E105 ``PHOTO_FIELD``, E106 ``CHANNEL``, E107 ``BACKEND``, E108 ``TIMEOUT``,
  E109 ``IGNORE_FIELDS``, E110 ``MAX_PAYLOAD_BYTES``, E111 ``SOCKET_ID_HEADER``, E112
  ``USER_HOTEL_SLUG``, E113 ``QUEUE_SIZE``, E114 ``QUEUE_PUT_TIMEOUT``, E115 ``RETRY_ATTEMPTS``,
  E116 ``RETRY_BASE_DELAY``, E117 ``RETRY_MAX_DELAY``, E118 ``FLUSH_TIMEOUT``, E119
  ``TASK_BACKEND``, E120 ``TASK_QUEUE``, E121 ``PRESENCE_USER``, E122 ``PHOTO_URL``, E123
  ``ORDERING``, E124 ``PUBLIC_SERIALIZER``, E125 ``PUBLIC_CHANNEL``, E126 ``ACTIVE_FIELD``, E127 ``PRESENCE_CHANNEL``,
  E128 ``CONCURRENT_CALLS``
  (``DELIVERY``'s is E009). The default is used instead, and logged once at ERROR.
- ``offer_realtime.E131``-``E137`` The same for ``PUSHER_APP_ID``, ``PUSHER_KEY``,
  ``PUSHER_SECRET``, ``PUSHER_CLUSTER``, ``PUSHER_HOST``, ``PUSHER_PORT``, ``PUSHER_SSL``.
- ``offer_realtime.W001`` The hotel slug field allows unicode, which Pusher refuses in a channel name.
- ``offer_realtime.W002`` (deploy) Events are only logged, not sent: no Pusher credentials.
- ``offer_realtime.W003`` (deploy) Channels are public: anyone with the Pusher key can read them.
- ``offer_realtime.W004`` The hotel slug field allows slugs long enough to exceed Pusher's 164-character
  channel names.

Narrowed ids (until issue 10 one id covered several problems; each kept the first one):
E001 (unknown keys moved to E011), E004 (E021, E022, E023), E005 (E012), E006 (E013),
E008 (E014, E015), E010 (E016, E017, E018), W001 (W004). Retired ids: none.
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
    get_model,
    get_pusher_credentials,
    get_settings,
)

# A slug of typical shape, to see what the channel template produces.
_SAMPLE_SLUG = "killarney"


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E001, E011: the settings dict itself."""
    user = getattr(django_settings, "OFFER_REALTIME", None)
    if user is not None and not isinstance(user, dict):
        return [Error("OFFER_REALTIME must be a dict.", id="offer_realtime.E001")]
    unknown = get_settings().unknown_keys
    if unknown:
        return [
            Error(
                f"OFFER_REALTIME has unknown key(s): {', '.join(unknown)}.",
                hint=f"Known keys: {', '.join(DEFAULTS)}.",
                id="offer_realtime.E011",
            )
        ]
    return []


@register(Tags.compatibility)
def check_setting_values(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E009, E101-E121, E131-E137: values of the wrong type or out of range, one id per setting.

    Each such value is replaced by its default at run time; the checks below then
    skip the settings reported here, so one mistake gives one message.
    """
    problems = (*get_settings().problems, *get_pusher_credentials().problems)
    return [
        Error(problem.message, hint="Its default is used until it is fixed.", id=problem.id) for problem in problems
    ]


@register(Tags.models)
def check_model(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E002, E004, E005, E012, E021-E023, W001, W004: the offer model, its photo field and URL, and
    the slug path."""
    conf = get_settings()
    if "MODEL" in conf.invalid_keys:
        return []  # reported by check_setting_values
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
    errors: list[Error | Warning] = []
    if "PHOTO_FIELD" not in conf.invalid_keys:
        errors.extend(_check_photo_field(model, conf, url_invalid="PHOTO_URL" in conf.invalid_keys))
    if "HOTEL_SLUG" not in conf.invalid_keys:
        errors.extend(_check_slug_path(model, conf.hotel_slug_path, conf.channel))
    return errors


def _check_photo_field(model: type[models.Model], conf: Any, url_invalid: bool) -> list[Error | Warning]:
    name, url_function = conf.photo_field, conf.photo_url
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
                    id="offer_realtime.E022" if problem.startswith("cannot be imported") else "offer_realtime.E023",
                )
            ]
        return []
    if kind is photos.PhotoKind.OTHER and not url_invalid:  # (an invalid PHOTO_URL is E122)
        return [
            Error(
                f"OFFER_REALTIME['PHOTO_FIELD'] {name!r} of {model._meta.label} is a "
                f"{type(field).__name__}, not a FileField, ImageField or CloudinaryField, so its URL "
                "is unknown.",
                hint="Set OFFER_REALTIME['PHOTO_URL'] to the dotted path of a callable "
                "offer -> str | None giving the photo's URL (as your serializer gives it).",
                id="offer_realtime.E021",
            )
        ]
    return []


def _check_slug_path(model: type[models.Model], path: tuple[str, ...], template: str) -> list[Error | Warning]:
    current: Any = model
    for position, name in enumerate(path):
        try:
            field = current._meta.get_field(name)
        except FieldDoesNotExist:
            if position == len(path) - 1 and hasattr(current, name):
                return []  # a property: nothing more can be checked statically
            return [
                Error(
                    f"OFFER_REALTIME['HOTEL_SLUG'] {'.'.join(path)!r}: {current._meta.label} has no field {name!r}.",
                    id="offer_realtime.E005",
                )
            ]
        if position < len(path) - 1:
            if not (field.many_to_one or field.one_to_one):
                return [
                    Error(
                        f"OFFER_REALTIME['HOTEL_SLUG'] {'.'.join(path)!r}: {name!r} on "
                        f"{current._meta.label} is not a foreign key or one-to-one field.",
                        id="offer_realtime.E012",
                    )
                ]
            current = field.related_model
    return _check_slug_field(field, template)


def _check_slug_field(field: Any, template: str) -> list[Error | Warning]:
    warnings: list[Error | Warning] = []
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
                hint="Limit the slug's max_length, or shorten CHANNEL.",
                id="offer_realtime.W004",
            )
        )
    return warnings


def _rendered_length(template: str, slug_length: int) -> int:
    try:
        return len(template.format(hotel_slug="x" * slug_length))
    except (KeyError, IndexError, ValueError, AttributeError, TypeError):
        return 0  # reported by check_channel


@register(Tags.compatibility)
def check_serializer(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E003: the serializer can be imported."""
    conf = get_settings()
    if "SERIALIZER" in conf.invalid_keys:
        return []
    try:
        import_string(conf.serializer)
    except ImportError as exc:
        return [
            Error(
                f"OFFER_REALTIME['SERIALIZER'] {conf.serializer!r} cannot be imported: {exc}",
                id="offer_realtime.E003",
            )
        ]
    return []


@register(Tags.compatibility)
def check_channel(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E008, E014, E015: the channel template renders to a valid Pusher channel name per hotel."""
    conf = get_settings()
    if "CHANNEL" in conf.invalid_keys:
        return []
    template = conf.channel
    try:
        sample = template.format(hotel_slug=_SAMPLE_SLUG)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        return [
            Error(
                f"OFFER_REALTIME['CHANNEL'] {template!r} cannot be rendered ({type(exc).__name__}: {exc}).",
                hint="The only placeholder is {hotel_slug}.",
                id="offer_realtime.E014",
            )
        ]
    if sample == template:
        return [
            Error(
                f"OFFER_REALTIME['CHANNEL'] {template!r} gives {sample!r} no matter the hotel: every "
                "hotel would share one channel.",
                hint="Put {hotel_slug} in it, e.g. 'hotel-{hotel_slug}'.",
                id="offer_realtime.E015",
            )
        ]
    problem = events.channel_name_problem(sample)
    if problem:
        return [
            Error(
                f"OFFER_REALTIME['CHANNEL'] {template!r} gives {sample!r} for a hotel slug "
                f"{_SAMPLE_SLUG!r}, which Pusher refuses: {problem}.",
                id="offer_realtime.E008",
            )
        ]
    return []


@register(Tags.compatibility)
def check_audiences(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E030-E033: the public audience, when ``PUBLIC_SERIALIZER`` turns it on."""
    conf = get_settings()
    if not conf.public_serializer:
        return []
    errors: list[Error | Warning] = []
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
def check_backend(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E006, E007, E013: the backend imports, and the Pusher backend has credentials."""
    from offer_realtime.backends.base import BaseBackend

    conf = get_settings()
    if "BACKEND" in conf.invalid_keys:
        return []
    path = conf.backend
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
                f"OFFER_REALTIME['BACKEND'] {path!r} is not a subclass of offer_realtime.backends.BaseBackend.",
                id="offer_realtime.E013",
            )
        ]
    if path == BACKEND_ALIASES["pusher"]:
        credentials = get_pusher_credentials()
        invalid = {problem.setting for problem in credentials.problems}
        # A setting with an unusable value is reported by check_setting_values instead.
        missing = [name for name in credentials.missing if name not in invalid]
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
def check_deploy_backend(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
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
def check_deploy_public_channels(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """W003: public channels in production."""
    if get_settings().private:
        return []
    return [
        Warning(
            f"Offer events go to public channels ({get_settings().channel!r}): anyone holding the "
            "(public) Pusher key can subscribe and read every hotel's offers, drafts included.",
            hint="Set OFFER_REALTIME['CHANNEL'] = 'private-hotel-{hotel_slug}' and include "
            "offer_realtime.urls for the channel-authorization endpoint; to keep a live public page, "
            'also set PUBLIC_SERIALIZER (README, "Audiences").',
            id="offer_realtime.W003",
        )
    ]


@register(Tags.compatibility)
def check_presence_user(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E019, E020: the presence-member hook imports and is callable."""
    path = get_settings().presence_user
    if path is None:
        return []
    try:
        hook = import_string(path)
    except ImportError as exc:
        return [Error(f"OFFER_REALTIME['PRESENCE_USER'] {path!r} cannot be imported: {exc}", id="offer_realtime.E019")]
    if not callable(hook):
        return [
            Error(
                f"OFFER_REALTIME['PRESENCE_USER'] {path!r} is not callable.",
                hint="Point it at a function (request) -> (user_id, user_info dict).",
                id="offer_realtime.E020",
            )
        ]
    return []


@register(Tags.compatibility)
def check_presence_channel(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """E034: the staff's presence channel template, when set, is a valid presence channel per hotel."""
    template = get_settings().presence_channel
    if template is None:
        return []
    if not template.startswith("presence-"):
        problem: str | None = "is not a presence channel (its name must start with 'presence-')"
    else:
        # The same rules as a public channel's, with no CHANNEL to differ from (it may be the same).
        problem = _public_channel_problem(template, staff_template="")
    if problem is None:
        return []
    return [
        Error(
            f"OFFER_REALTIME['PRESENCE_CHANNEL'] {template!r} {problem}.",
            hint="Use 'presence-hotel-{hotel_slug}', or None for no presence channel.",
            id="offer_realtime.E034",
        )
    ]


@register(Tags.compatibility)
def check_delivery(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    """E010, E016, E017, E018: for DELIVERY = "task", the task framework, backend and queue.

    (An unknown DELIVERY is E009, reported by :func:`check_setting_values`.)
    """
    conf = get_settings()
    if conf.delivery != "task" or {"TASK_BACKEND", "TASK_QUEUE"} & conf.invalid_keys:
        return []
    try:
        from offer_realtime.tasks import deliver_offer_changes, task_backends  # type: ignore[attr-defined]
    except ImportError:
        return [
            Error(
                "OFFER_REALTIME['DELIVERY'] is 'task' but Django's task framework is not available.",
                hint='On Django 5.2 install the backport: pip install "django-offer-realtime[tasks]".',
                id="offer_realtime.E010",
            )
        ]
    aliases = getattr(django_settings, "TASKS", None) or {}
    if conf.task_backend not in aliases:
        return [
            Error(
                f"OFFER_REALTIME['TASK_BACKEND'] {conf.task_backend!r} is not an alias in TASKS "
                f"({', '.join(map(repr, aliases)) or 'none defined'}).",
                hint="Name an alias of the TASKS setting.",
                id="offer_realtime.E016",
            )
        ]
    try:
        backend = task_backends[conf.task_backend]
    except Exception as exc:  # noqa: BLE001 - whatever the backend's import or setup raises
        return [
            Error(
                f"TASKS[{conf.task_backend!r}] cannot be loaded: {type(exc).__name__}: {exc}",
                id="offer_realtime.E018",
            )
        ]
    if backend.queues and conf.task_queue not in backend.queues:
        return [
            Error(
                f"OFFER_REALTIME['TASK_QUEUE'] {conf.task_queue!r} is not in the QUEUES of "
                f"TASKS[{conf.task_backend!r}] ({', '.join(map(repr, sorted(backend.queues)))}).",
                hint="Name a queue listed in that backend's QUEUES.",
                id="offer_realtime.E017",
            )
        ]
    try:
        # Everything else enqueueing would check (e.g. a backend that cannot run this task).
        backend.validate_task(deliver_offer_changes.using(backend=conf.task_backend, queue_name=conf.task_queue))
    except Exception as exc:  # noqa: BLE001 - InvalidTask and the like
        return [
            Error(
                f"TASKS[{conf.task_backend!r}] refuses offer_realtime's tasks: {exc}",
                id="offer_realtime.E018",
            )
        ]
    return []
