"""The offer's photo field, whatever its kind: how its values compare, and its URL.

Three kinds are supported, with no configuration for the first two:

- a ``FileField``/``ImageField`` on any storage (local media, django-cloudinary-storage, S3...):
  a value is its stored name; the URL is ``offer.photo.url``;
- a ``cloudinary.models.CloudinaryField`` (the ``cloudinary`` package stays optional: it is
  only looked up among the modules the host already imported): a value is the resource's
  ``resource_type``, ``type``, ``public_id``, ``version`` and ``format``, whether it was
  loaded (a ``CloudinaryResource``) or assigned as the stored string; the URL is
  ``offer.photo.url``;
- any other field, with ``OFFER_REALTIME["PHOTO_URL"]``, a dotted path to a callable
  ``offer -> str | None`` giving the URL; values compare by equality.

``PHOTO_URL``, when set, gives the URL for the first two kinds too.
"""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable
from typing import Any

from django.core.files import File
from django.db import models
from django.db.models.fields.files import FieldFile
from django.utils.module_loading import import_string


class PhotoKind(enum.Enum):
    """How a photo field stores its value."""

    FILE = "file"
    CLOUDINARY = "cloudinary"
    OTHER = "other"


def _cloudinary_field_class() -> type | None:
    # A model with a CloudinaryField imported cloudinary.models to define it; when the
    # module is not loaded, no model uses one, and cloudinary need not be installed.
    module = sys.modules.get("cloudinary.models")
    return getattr(module, "CloudinaryField", None)


def _cloudinary_resource_class() -> type | None:
    return getattr(sys.modules.get("cloudinary"), "CloudinaryResource", None)


def kind_of(field: Any) -> PhotoKind | None:
    """The kind of ``field``; None when it is no concrete model field."""
    if field is None or not getattr(field, "concrete", False):
        return None
    if isinstance(field, models.FileField):
        return PhotoKind.FILE
    cloudinary_field = _cloudinary_field_class()
    if cloudinary_field is not None and isinstance(field, cloudinary_field):
        return PhotoKind.CLOUDINARY
    return PhotoKind.OTHER


def stored_value(field: Any, kind: PhotoKind | None, value: Any) -> Any:
    """What the database would hold for ``value``, in a form that compares by value.

    No photo (None, "", an empty file or resource) is None.
    """
    if kind is PhotoKind.FILE:
        if isinstance(value, str):  # as loaded, before the descriptor makes it a FieldFile
            return value or None
        # A FieldFile, an assigned File (by its name until storage renames it).
        return getattr(value, "name", value) or None
    if kind is PhotoKind.CLOUDINARY:
        return _cloudinary_value(field, value)
    return value


def stored_value_function(field: Any, kind: PhotoKind | None) -> Callable[[Any], Any]:
    """:func:`stored_value` for one field, as a one-argument function.

    It runs for every loaded offer, so the common case, a file's name as loaded (a
    ``str``), is answered without dispatching on the kind.
    """
    if kind is PhotoKind.FILE:

        def file_value(value: Any) -> Any:
            if type(value) is str:
                return value or None
            return stored_value(field, kind, value)

        return file_value
    return functools.partial(stored_value, field, kind)


def _cloudinary_value(field: Any, value: Any) -> Any:
    if not value:
        return None
    if isinstance(value, str):
        # Assigned as the stored string (e.g. a PUT echoing "photo"): parsed as loading does.
        value = field.parse_cloudinary_resource(value)
    resource_class = _cloudinary_resource_class()
    if resource_class is None or not isinstance(value, resource_class):
        return getattr(value, "name", value)  # an UploadedFile before pre_save uploads it
    resource: Any = value
    if not resource.public_id:
        return None
    # A loaded version is a str, an uploaded one may be an int.
    version = str(resource.version) if resource.version else None
    return ("cloudinary", resource.resource_type, resource.type, resource.public_id, version, resource.format)


def is_new_upload(value: Any) -> bool:
    """Whether ``value`` is a file assigned to the photo and not yet stored.

    Storing gives it its final value, which may equal the old one (a storage that
    overwrites, a fixed Cloudinary public_id), so a new upload is a change by itself.
    """
    if isinstance(value, FieldFile):
        return bool(value) and not getattr(value, "_committed", True)
    return isinstance(value, File)


@functools.cache
def _import_url_function(path: str) -> Callable[[models.Model], str | None]:
    function = import_string(path)
    if not callable(function):
        raise TypeError(f"{path} is not callable")
    return function  # type: ignore[no-any-return]  # a host's callable, checked at runtime only


def url_function_problem(path: str) -> str | None:
    """Why ``PHOTO_URL`` cannot be used, or None (for the system check)."""
    try:
        _import_url_function(path)
    except ImportError as exc:
        return f"cannot be imported: {exc}"
    except TypeError:
        return "is not callable"
    return None


def photo_url(offer: models.Model, photo_field: str, url_function: str | None = None) -> str | None:
    """The URL of the offer's photo as the host's serializer gives it, or None without one.

    ``url_function`` is ``PHOTO_URL``; without it, the value's own ``url``.
    """
    if url_function:
        return _import_url_function(url_function)(offer) or None
    value = getattr(offer, photo_field)
    if not value:
        return None
    return value.url or None
