"""Offer photo uploads: checking the file, storing it, and replacing the old one.

Nothing here broadcasts: saving the offer fires the model signals that
``offer_realtime`` listens to, and it sends offer-image-updated after commit.

Settings (all optional):

- ``HOTEL_OFFER_PHOTO_MAX_BYTES``: largest accepted file, default 10 MB.
- ``HOTEL_OFFER_PHOTO_MAX_PIXELS``: largest accepted width × height, default 50 megapixels.
  Pillow's own decompression-bomb limit is also enforced (as an error, never a warning).
- ``HOTEL_OFFER_PHOTO_FORMATS``: Pillow format names accepted, default JPEG, PNG and WebP.
- ``HOTEL_OFFER_PHOTO_DECODE_BUDGET``: memory the image decoders may use to check one
  upload, default 48 MB (so checking an upload raises a worker's peak memory by at most
  64 MB); larger progressive JPEGs and WebPs are checked without a full decode.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import Storage
from django.core.files.uploadedfile import UploadedFile
from django.db import connections, transaction
from django.db.models import F, QuerySet
from django.db.transaction import TransactionManagementError
from django.http import Http404
from PIL import Image, UnidentifiedImageError
from rest_framework import serializers

from hotel.models import Offer

logger = logging.getLogger("hotel.uploads")

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_FORMATS = ("JPEG", "PNG", "WEBP")
DEFAULT_DECODE_BUDGET = 48 * 1024 * 1024

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


class Unchanged:
    """The type of :data:`UNCHANGED`."""

    def __repr__(self) -> str:
        return "UNCHANGED"


#: "Leave the photo as it is" (a write that does not touch the photo).
UNCHANGED = Unchanged()


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
    identify it as an accepted format and ``verify()`` must pass; then the whole image
    stream is read, within a bounded memory budget (:func:`decode_budget`), so a damaged
    or truncated file is refused (``verify()`` alone misses a truncated JPEG):

    - PNG: the compressed image data is inflated as a stream, in pieces, and must hold
      every row with a valid filter type (what decoding checks; no full image in memory);
    - JPEG: single-scan (baseline) files are decoded at 1/8 scale, which reads the whole
      stream with 1/64 of the memory. Multi-scan (progressive) files need a coefficient
      buffer for the whole image; they are decoded when it fits the budget, otherwise
      their marker structure is walked from start to end-of-image instead;
    - WebP: the container is validated by libwebp when Pillow opens it (a truncated file
      fails there); the image is decoded when that fits the budget.

    Other formats allowed through ``HOTEL_OFFER_PHOTO_FORMATS`` are decoded in full.
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
            layers = getattr(image, "layer", None)
            image.verify()
        file.seek(0)
        if image_format == "PNG":
            _check_png_data(file, width, height)
        elif image_format in ("JPEG", "MPO"):
            _check_jpeg(file, open_formats, width, height, layers)
        elif image_format == "WEBP":
            if width * height * WEBP_DECODE_BYTES_PER_PIXEL <= decode_budget():
                _decode(file, open_formats)
        else:  # another format allowed by HOTEL_OFFER_PHOTO_FORMATS: decoded in full, outside the budget
            _decode(file, open_formats)
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


#: Bytes of memory per pixel that decoding a WebP with Pillow costs (libwebp's canvas and
#: previous-frame buffers, the frame copied to Python, Pillow's image): measured 15.3.
WEBP_DECODE_BYTES_PER_PIXEL = 16
#: Bytes per pixel of libjpeg's whole-image coefficient buffer (64 16-bit coefficients per
#: 8x8 block and component) for a 4:4:4 JPEG: the worst case; see :func:`_jpeg_coefficient_bytes`.
JPEG_COEFFICIENT_BYTES_PER_PIXEL_444 = 6


def decode_budget() -> int:
    """Bytes the image decoders may use to check one upload (``HOTEL_OFFER_PHOTO_DECODE_BUDGET``, 48 MB).

    With the interpreter's own working memory, checking one upload then raises a
    worker's peak memory by at most 64 MB for any image under the size and pixel limits.
    """
    return int(getattr(settings, "HOTEL_OFFER_PHOTO_DECODE_BUDGET", DEFAULT_DECODE_BUDGET))


def _decode(file: UploadedFile, open_formats: list[str], draft: tuple[int, int] | None = None) -> None:
    file.seek(0)
    with Image.open(file, formats=open_formats) as image:
        if draft:
            image.draft(image.mode, draft)
        image.load()


# -- PNG ---------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Samples per pixel of each PNG colour type (greyscale, RGB, palette, grey+alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
#: Adam7 passes: (x start, y start, x step, y step).
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_INFLATE_PIECE = 1 << 20


def _png_rows(width: int, height: int, bit_depth: int, color_type: int, interlaced: bool) -> list[tuple[int, int]]:
    """(row count, bytes per row without the filter byte) of each pass of the image data."""
    bits_per_pixel = bit_depth * _PNG_CHANNELS[color_type]
    passes = _ADAM7 if interlaced else ((0, 0, 1, 1),)
    rows = []
    for x0, y0, dx, dy in passes:
        pass_width = (width - x0 + dx - 1) // dx if width > x0 else 0
        pass_height = (height - y0 + dy - 1) // dy if height > y0 else 0
        if pass_width and pass_height:
            rows.append((pass_height, (pass_width * bits_per_pixel + 7) // 8))
    return rows


def _check_png_data(file: UploadedFile, width: int, height: int) -> None:
    """Inflate the PNG's image data as a stream and check it holds every row, each with a valid filter.

    That is what decoding checks, without the decoded image: memory stays at one chunk
    plus 1 MB of inflated data. Chunk CRCs and the chunk sequence were already checked by
    Pillow's ``verify()``. Raises ``ValueError`` for damaged data.
    """
    if file.read(8) != _PNG_SIGNATURE:
        raise ValueError("not a PNG")
    header = None
    # Offsets of the filter byte of every row, in the inflated stream.
    filter_offsets: list[tuple[int, int, int]] = []  # (first offset, stride, count)
    expected = 0
    inflater = zlib.decompressobj()
    produced = 0
    while True:
        length, chunk_type = struct.unpack(">I4s", _read_exact(file, 8))
        if chunk_type == b"IHDR":
            header = _read_exact(file, length)
            bit_depth, color_type, _, _, interlace = header[8:13]
            for rows, row_bytes in _png_rows(width, height, bit_depth, color_type, interlace == 1):
                filter_offsets.append((expected, row_bytes + 1, rows))
                expected += rows * (row_bytes + 1)
        elif chunk_type == b"IDAT" and header is not None:
            remaining = length
            while remaining and produced < expected:
                data = _read_exact(file, min(remaining, _INFLATE_PIECE))
                remaining -= len(data)
                while data and produced < expected:
                    out = inflater.decompress(data, _INFLATE_PIECE)
                    _check_png_filters(out, produced, filter_offsets)
                    produced += len(out)
                    data = inflater.unconsumed_tail
            file.seek(remaining, os.SEEK_CUR)
        elif chunk_type == b"IEND":
            break
        else:
            file.seek(length, os.SEEK_CUR)
        file.seek(4, os.SEEK_CUR)  # the CRC (verified by Pillow)
        if produced >= expected and header is not None:
            break
    if header is None or produced < expected:
        raise ValueError(f"image data ends after {produced} of {expected} bytes")


def _check_png_filters(out: bytes, start: int, filter_offsets: list[tuple[int, int, int]]) -> None:
    end = start + len(out)
    for first, stride, count in filter_offsets:
        last = first + stride * (count - 1)
        if end <= first or start > last:
            continue
        offset = first if start <= first else first + -(-(start - first) // stride) * stride
        while offset < end and offset <= last:
            if out[offset - start] > 4:
                raise ValueError(f"invalid PNG filter type {out[offset - start]}")
            offset += stride


def _read_exact(file: UploadedFile, size: int) -> bytes:
    data = file.read(size)
    if len(data) != size:
        raise ValueError("truncated file")
    return data


# -- JPEG --------------------------------------------------------------------------------------

#: Start-of-frame markers (SOF0-SOF15 less DHT, JPG and DAC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_PROGRESSIVE_SOF = frozenset({0xC2, 0xC6, 0xCA, 0xCE})


def _check_jpeg(
    file: UploadedFile, open_formats: list[str], width: int, height: int, layers: list[tuple] | None
) -> None:
    """Decode a JPEG at 1/8 scale when that fits the budget, else walk its structure (see :func:`check_photo`)."""
    scans, progressive = _jpeg_structure(file)
    # libjpeg keeps every coefficient of the image for a progressive or multi-scan file.
    coefficients = _jpeg_coefficient_bytes(width, height, layers) if scans > 1 or progressive else 0
    if coefficients <= decode_budget():
        # Decoding at 1/8 scale still reads the whole stream (so truncation is caught)
        # with 1/64 of the memory.
        _decode(file, open_formats, draft=(max(1, width // 8), max(1, height // 8)))


def _jpeg_coefficient_bytes(width: int, height: int, layers: list[tuple] | None) -> int:
    """Bytes of the whole-image coefficient buffer libjpeg allocates to decode a multi-scan JPEG."""
    if not layers:  # unknown sampling: assume the worst case
        return width * height * JPEG_COEFFICIENT_BYTES_PER_PIXEL_444
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    mcu_columns = -(-width // (8 * h_max))
    mcu_rows = -(-height // (8 * v_max))
    blocks = sum(mcu_columns * layer[1] * mcu_rows * layer[2] for layer in layers)
    return blocks * 64 * 2


def _jpeg_structure(file: UploadedFile) -> tuple[int, bool]:
    """Walk the JPEG's markers from start to end-of-image; return its number of scans and if it is progressive.

    Every segment must be complete and lie inside the file, a frame header must precede
    the scans, and the entropy-coded data of each scan must end in a marker: so a file cut
    short anywhere, or with a broken segment structure, raises ``ValueError``. The data
    inside a scan is not decoded. Reads the file in memory (at most the size limit).
    """
    file.seek(0)
    data = file.read()
    if data[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start-of-image")
    position, scans, frame, progressive = 2, 0, False, False
    while True:
        if position >= len(data) or data[position] != 0xFF:
            raise ValueError("JPEG marker expected")
        while position < len(data) and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= len(data):
            raise ValueError("truncated JPEG")
        marker = data[position]
        position += 1
        if marker == 0xD9:  # end of image
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # restart markers, TEM: no length
            continue
        if position + 2 > len(data):
            raise ValueError("truncated JPEG")
        length = int.from_bytes(data[position : position + 2], "big")
        if length < 2 or position + length > len(data):
            raise ValueError("JPEG segment runs past the end of the file")
        frame = frame or marker in _JPEG_SOF
        progressive = progressive or marker in _JPEG_PROGRESSIVE_SOF
        position += length
        if marker == 0xDA:  # start of scan: skip its entropy-coded data
            if not frame:
                raise ValueError("JPEG scan before its frame header")
            scans += 1
            position = _jpeg_end_of_scan(data, position)
    if not scans:
        raise ValueError("JPEG without image data")
    return scans, progressive


def _jpeg_end_of_scan(data: bytes, position: int) -> int:
    """Where the marker after the entropy-coded data starting at ``position`` begins."""
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 >= len(data):
            raise ValueError("truncated JPEG scan")
        following = data[found + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7:  # stuffed 0xFF, restart marker
            position = found + 2
        elif following == 0xFF:  # fill byte before a marker
            position = found + 1
        else:
            return found


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
    except Exception:  # cleanup must not turn a finished request into an error
        logger.warning("Could not delete %s photo %r; it stays in storage.", reason, name, exc_info=True)
    else:
        logger.debug("Deleted %s photo %r.", reason, name)


def lock_offer(pk: Any, queryset: QuerySet[Offer] | None = None) -> Offer:
    """The offer ``pk`` read afresh and locked against concurrent writers until the transaction ends.

    Call it first thing inside ``transaction.atomic()``. Every write to an existing offer
    goes through this lock, so two requests writing one offer run one after the other,
    each starting from what the other committed: a PATCH cannot write back a photo name
    that an upload just replaced (and deleted), nor re-create an offer that a DELETE just
    removed. Raises ``Http404`` when the offer is gone (deleted meanwhile, or not in
    ``queryset``).

    PostgreSQL (and any database with row locks): ``SELECT ... FOR UPDATE`` of the offer's
    row. SQLite has no row locks and a deferred transaction that reads first cannot write
    once another connection has committed ("database is locked"); so there the
    transaction takes the database's write lock up front, with a no-op ``UPDATE`` of the
    row, before reading it: writers to offers are then serialized, and the read sees the
    latest commit.
    """
    queryset = Offer.objects.all() if queryset is None else queryset
    connection = connections[queryset.db]
    if not connection.in_atomic_block:
        raise TransactionManagementError("lock_offer() must be called inside transaction.atomic().")
    if not connection.features.has_select_for_update:
        pk_name = Offer._meta.pk.attname
        if not Offer.objects.using(queryset.db).filter(pk=pk).update(**{pk_name: F(pk_name)}):
            raise Http404("No Offer matches the given query.")
    try:
        return queryset.select_for_update(of=("self",)).get(pk=pk)
    except Offer.DoesNotExist:
        raise Http404("No Offer matches the given query.") from None


def store_photo(photo: CheckedPhoto) -> str:
    """Save a checked photo to the offer photo storage and return its stored name.

    Runs outside any transaction (a slow upload to Cloudinary holds no lock). Raises
    :class:`StorageUnavailable` when the storage fails; nothing is stored then.
    """
    field = Offer._meta.get_field("photo")
    name = field.generate_filename(None, photo.storage_name)
    try:
        return field.storage.save(name, photo.file, max_length=field.max_length)
    except _storage_errors() as exc:
        logger.exception("Storing an offer photo failed: %s: %s", type(exc).__name__, exc)
        raise StorageUnavailable(str(exc)) from exc


def save_with_photo(
    photo: CheckedPhoto | Unchanged | None, write: Callable[[str | Unchanged | None], tuple[Offer, str]]
) -> Offer:
    """Run ``write`` (which saves an offer) with the photo stored first and the old one deleted after commit.

    ``photo`` is a checked new photo, None to clear the photo, or :data:`UNCHANGED`. A new
    photo is stored before the transaction; ``write(name)`` then runs inside it, gets the
    stored name (or None, or UNCHANGED) to assign, and returns the saved offer and the
    name of the photo it had before (read under :func:`lock_offer`). Afterwards that
    photo is deleted once the transaction commits, if the photo changed. If anything fails
    after the new file was stored, that file is deleted again, so no failure leaves an
    orphan. Inside an outer transaction that later rolls back, the new file cannot be
    cleaned up (Django has no on-rollback hook); the example project does not use
    ``ATOMIC_REQUESTS``.
    """
    new_name: str | None = None
    value: str | Unchanged | None
    if isinstance(photo, CheckedPhoto):
        value = new_name = store_photo(photo)
    else:
        value = photo
    storage = Offer._meta.get_field("photo").storage
    try:
        with transaction.atomic():
            offer, old_name = write(value)
            if photo is not UNCHANGED and old_name and old_name != offer.photo.name:
                transaction.on_commit(_deleter(storage, old_name, "replaced" if new_name else "removed"))
    except BaseException:
        if new_name is not None:
            delete_stored_file(storage, new_name, "unsaved new")
        raise
    if photo is not UNCHANGED:
        logger.info("Offer %s photo %r -> %r.", offer.pk, old_name or None, offer.photo.name or None)
    return offer


def replace_offer_photo(offer: Offer, photo: CheckedPhoto) -> Offer:
    """Store ``photo`` as the offer's photo and return the saved offer (``upload-image``).

    The file is uploaded first, outside any transaction, so a slow upload holds no row
    lock. Then, in a short transaction, the offer row is locked (:func:`lock_offer`),
    pointed at the new file and saved; the old file is deleted only once that commits
    (two concurrent uploads therefore each delete exactly the file they replaced).

    Raises :class:`StorageUnavailable` when the upload itself fails (nothing changed),
    and ``Http404`` when the offer was deleted meanwhile (the new file is deleted again).
    """

    def write(name: str | Unchanged | None) -> tuple[Offer, str]:
        locked = lock_offer(offer.pk)
        old_name = locked.photo.name or ""
        locked.photo = name
        locked.save(update_fields=["photo"])
        return locked, old_name

    return save_with_photo(photo, write)


def _deleter(storage: Storage, name: str, reason: str) -> Callable[[], None]:
    return lambda: delete_stored_file(storage, name, reason)
