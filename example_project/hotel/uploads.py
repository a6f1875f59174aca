"""Offer photo uploads: checking the file, storing it, and replacing the old one.

Nothing here broadcasts: saving the offer fires the model signals that
``offer_realtime`` listens to, and it sends offer-image-updated after commit.

Settings (all optional):

- ``HOTEL_OFFER_PHOTO_MAX_BYTES``: largest accepted file, default 10 MB.
- ``HOTEL_OFFER_PHOTO_MAX_PIXELS``: largest accepted width × height, default 50 megapixels.
  Pillow's own decompression-bomb limit is also enforced (as an error, never a warning).
- ``HOTEL_OFFER_PHOTO_FORMATS``: Pillow format names accepted, default JPEG, PNG and WebP.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.http import Http404
from PIL import Image, UnidentifiedImageError
from rest_framework import serializers

from hotel.models import Offer

logger = logging.getLogger("hotel.uploads")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP")

#: File extension stored for each accepted Pillow format. MPO is how Pillow names
#: the JPEGs many phone cameras write (a JPEG with extra preview frames).
EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}
_FORMAT_LABELS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF"}

NO_PHOTO = "No photo file provided"
EMPTY = "The photo file is empty."
NOT_AN_IMAGE = "The file is not an image. Upload a {formats} photo."
WRONG_FORMAT = "{format} images are not accepted. Upload a {formats} photo."
DAMAGED = "The image is damaged or incomplete and cannot be read. Upload it again or choose another photo."
TOO_LARGE = "The photo is too large: the limit is {limit}."
TOO_MANY_PIXELS = "The image has too many pixels: the limit is {limit} megapixels. Resize it and try again."
STORAGE_UNAVAILABLE = (
    "The photo could not be stored because the image service is unavailable. Nothing was changed; please try again."
)

# Room for the multipart boundary and headers around the file when the request's
# Content-Length is compared with the file size limit.
MULTIPART_OVERHEAD = 64 * 1024


class PhotoRejected(ValueError):
    """The upload cannot be used as an offer photo; ``str()`` is the message for the user."""


class StorageUnavailable(Exception):
    """Saving the file to media storage failed (Cloudinary down or timing out, disk error)."""


def max_bytes() -> int:
    """The largest photo accepted, in bytes."""
    return int(getattr(settings, "HOTEL_OFFER_PHOTO_MAX_BYTES", DEFAULT_MAX_BYTES))


def max_pixels() -> int:
    """The largest width × height accepted, never more than Pillow's own bomb warning limit."""
    limit = int(getattr(settings, "HOTEL_OFFER_PHOTO_MAX_PIXELS", DEFAULT_MAX_PIXELS))
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, int(Image.MAX_IMAGE_PIXELS))
    return limit


def allowed_formats() -> tuple[str, ...]:
    """Accepted Pillow format names, upper case."""
    return tuple(name.upper() for name in getattr(settings, "HOTEL_OFFER_PHOTO_FORMATS", DEFAULT_FORMATS))


def _formats_label(formats: tuple[str, ...]) -> str:
    labels = [_FORMAT_LABELS.get(name, name) for name in formats]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _size_label(size: int) -> str:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


def too_large_message() -> str:
    """The 400 message for a photo over ``HOTEL_OFFER_PHOTO_MAX_BYTES``."""
    return TOO_LARGE.format(limit=_size_label(max_bytes()))


def request_too_large(content_length: Any) -> bool:
    """True when a request body is certainly too large to hold an acceptable photo.

    Lets the view refuse a huge upload from its ``Content-Length`` before Django
    reads (and spools to disk) the whole body.
    """
    try:
        length = int(content_length)
    except (TypeError, ValueError):
        return False
    return length > max_bytes() + MULTIPART_OVERHEAD


@dataclass(frozen=True)
class CheckedPhoto:
    """An uploaded file that was verified to be a complete image of an accepted format."""

    file: UploadedFile
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        """The file extension that matches the real format (whatever the upload was called)."""
        return EXTENSIONS.get(self.format, self.format.lower())

    @property
    def storage_name(self) -> str:
        """A file name for storage: the client's name, sanitized and shortened, with the real extension."""
        stem = os.path.splitext(os.path.basename(self.file.name or ""))[0][:40].strip(". ") or "photo"
        return f"{stem}.{self.extension}"


def check_photo(file: UploadedFile) -> CheckedPhoto:
    """Verify that ``file`` is a complete, acceptable image; raise :class:`PhotoRejected` otherwise.

    The content decides, not the name or the declared content type: Pillow must
    identify it as an accepted format, ``verify()`` must pass, and the image must
    decode completely (``verify()`` alone misses a truncated JPEG).
    """
    if file.size is not None and file.size > max_bytes():
        raise PhotoRejected(too_large_message())
    formats = allowed_formats()
    # Pillow's JPEG opener also returns MPO images (a JPEG to every browser and to
    # Cloudinary); MPO is not an opener name of its own.
    Image.init()
    open_formats = [name for name in formats if name in Image.OPEN]
    try:
        # Only the accepted formats' parsers ever see the upload's pixels.
        with Image.open(file, formats=open_formats) as image:
            image_format, (width, height) = image.format, image.size
            _check_pixels(width, height)
            image.verify()
        file.seek(0)
        with Image.open(file, formats=open_formats) as image:
            if image_format in ("JPEG", "MPO"):
                # Decoding at 1/8 scale still reads the whole stream (so truncation
                # is caught) with 1/64 of the memory.
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
            image.load()
    except PhotoRejected:
        raise
    except Image.DecompressionBombError:
        raise PhotoRejected(TOO_MANY_PIXELS.format(limit=_megapixels(max_pixels()))) from None
    except UnidentifiedImageError:
        raise PhotoRejected(_unaccepted_message(file, formats)) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file cannot be used
        logger.info("Rejected a damaged image upload %r: %s: %s", file.name, type(exc).__name__, exc)
        raise PhotoRejected(DAMAGED) from None
    finally:
        file.seek(0)
    return CheckedPhoto(file=file, format=image_format, width=width, height=height)


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g}"


def _check_pixels(width: int, height: int) -> None:
    # Pillow only warns between its limit and twice that; a warning filter would be
    # process-wide (not thread-safe), so the limit is enforced here instead.
    if width * height > max_pixels():
        raise PhotoRejected(TOO_MANY_PIXELS.format(limit=_megapixels(max_pixels())))


def _unaccepted_message(file: UploadedFile, formats: tuple[str, ...]) -> str:
    """Tell "an image, but of a refused format" from "not an image at all"."""
    file.seek(0)
    try:
        # Header parsing only (no decoding), as Django's own ImageField does.
        with Image.open(file) as image:
            detected = image.format
    except Exception:  # noqa: BLE001 - not an image Pillow knows
        detected = None
    label = _formats_label(formats)
    if detected:
        return WRONG_FORMAT.format(format=_FORMAT_LABELS.get(detected, detected), formats=label)
    return NOT_AN_IMAGE.format(formats=label)


class OfferPhotoUploadSerializer(serializers.Serializer):
    """The body of ``upload-image``: one multipart file field, ``photo``."""

    photo = serializers.FileField(
        allow_empty_file=False,
        help_text="A JPEG, PNG or WebP image (limits: HOTEL_OFFER_PHOTO_MAX_BYTES, HOTEL_OFFER_PHOTO_MAX_PIXELS).",
        error_messages={"required": NO_PHOTO, "null": NO_PHOTO, "invalid": NO_PHOTO, "empty": EMPTY},
    )

    def validate_photo(self, file: UploadedFile) -> CheckedPhoto:
        """Check the file's content (see :func:`check_photo`)."""
        try:
            return check_photo(file)
        except PhotoRejected as exc:
            raise serializers.ValidationError(str(exc)) from None


class UploadImageResponseSerializer(serializers.Serializer):
    """The answer to a successful upload."""

    message = serializers.CharField(default="Image uploaded successfully")
    photo_url = serializers.CharField(help_text="URL of the stored photo (absolute on Cloudinary).")


class ErrorSerializer(serializers.Serializer):
    """The body of every refused upload: one message a frontend can show as is."""

    error = serializers.CharField()


def first_error(errors: Any) -> str:
    """The first message in a DRF ``serializer.errors`` structure."""
    while isinstance(errors, (dict, list)):
        if not errors:
            return "Invalid request."
        errors = next(iter(errors.values())) if isinstance(errors, dict) else errors[0]
    return str(errors)


def _storage_errors() -> tuple[type[BaseException], ...]:
    errors: tuple[type[BaseException], ...] = (OSError,)
    try:
        from cloudinary.exceptions import Error as CloudinaryError
    except ImportError:  # the cloudinary extra is optional
        return errors
    return (*errors, CloudinaryError)


def delete_stored_file(storage: Storage, name: str, reason: str) -> None:
    """Delete ``name`` from ``storage``; a failure is logged, never raised (the file is then orphaned)."""
    try:
        storage.delete(name)
    except Exception:  # noqa: BLE001 - cleanup must not turn a finished request into an error
        logger.warning("Could not delete %s photo %r; it stays in storage.", reason, name, exc_info=True)
    else:
        logger.debug("Deleted %s photo %r.", reason, name)


def replace_offer_photo(offer: Offer, photo: CheckedPhoto) -> Offer:
    """Store ``photo`` as the offer's photo and return the saved offer.

    The file is uploaded first, outside any transaction, so a slow upload holds no
    row lock. Then, in a short transaction, the offer row is locked, pointed at the
    new file and saved; the old file is deleted only once that commits (two
    concurrent uploads therefore each delete exactly the file they replaced). If
    anything fails after the upload, the new file is deleted again, so no failure
    leaves an orphan, and the offer keeps its old photo.

    Raises :class:`StorageUnavailable` when the upload itself fails (nothing changed),
    and ``Http404`` when the offer was deleted meanwhile. Inside an outer transaction
    that later rolls back, the new file cannot be cleaned up (Django has no
    on-rollback hook); the example project does not use ``ATOMIC_REQUESTS``.
    """
    field = Offer._meta.get_field("photo")
    storage = field.storage
    name = field.generate_filename(offer, photo.storage_name)
    try:
        new_name = storage.save(name, photo.file, max_length=field.max_length)
    except _storage_errors() as exc:
        logger.error("Storing the photo of offer %s failed: %s: %s", offer.pk, type(exc).__name__, exc, exc_info=True)
        raise StorageUnavailable(str(exc)) from exc
    try:
        with transaction.atomic():
            try:
                locked = Offer.objects.select_for_update().get(pk=offer.pk)
            except Offer.DoesNotExist:
                raise Http404("No Offer matches the given query.") from None
            old_name = locked.photo.name
            locked.photo = new_name
            locked.save(update_fields=["photo"])
            if old_name and old_name != new_name:
                transaction.on_commit(_deleter(storage, old_name))
    except BaseException:
        delete_stored_file(storage, new_name, "unsaved new")
        raise
    logger.info("Offer %s photo replaced: %r -> %r.", offer.pk, old_name or None, new_name)
    return locked


def _deleter(storage: Storage, name: str) -> Callable[[], None]:
    return lambda: delete_stored_file(storage, name, "replaced")
