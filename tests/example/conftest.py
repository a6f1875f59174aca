"""Fixtures for the example project's tests: two hotels with staff, API clients, images, storage."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import make_staff  # re-exported for the example tests

# -- images --------------------------------------------------------------------------------


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), noise: bool = False, **save: object) -> bytes:
    """An image encoded as ``fmt``; ``noise`` makes it incompressible (for size limits)."""
    if noise:
        rng = random.Random(1234)
        image = Image.frombytes("RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3)))
    else:
        image = Image.new("RGB", size, (30, 120, 200))
    if fmt in ("GIF", "BMP") and image.mode != "RGB":
        image = image.convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    """An uploaded file for the test client's multipart encoding."""
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_with_dimensions(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` (a decompression-bomb header).

    Only the IHDR chunk is rewritten (with a correct CRC), so Pillow reads the
    claimed size on open without anything large ever being generated.
    """
    data = bytearray(image_bytes("PNG", (8, 8)))
    ihdr = 8  # after the PNG signature: length(4) type(4) data(13) crc(4)
    assert data[ihdr + 4 : ihdr + 8] == b"IHDR"
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4 : ihdr + 8 + 13]))
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", crc)
    return bytes(data)


# -- events ----------------------------------------------------------------------------------


def payload(event) -> dict:
    """The contract payload of a captured event, after checking the identity keys delivery adds.

    Every event also carries ``event_id`` (unique, stable across retries) and
    ``changed_at`` (ISO 8601); they differ per run, so they are checked apart.
    """
    import datetime

    assert isinstance(event.data["event_id"], str) and event.data["event_id"]
    datetime.datetime.fromisoformat(event.data["changed_at"])
    return event.without_identity()


# -- storage -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    """Every test writes its files under its own temporary MEDIA_ROOT."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def stored_files(root: Path) -> list[str]:
    """Paths of every file under ``root``, relative and sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- hotels, staff, offers -----------------------------------------------------------------


@pytest.fixture
def killarney(hotel):
    """Hotel ``killarney`` (the shared ``hotel`` fixture)."""
    return hotel


@pytest.fixture
def galway(other_hotel):
    """Hotel ``galway``, the other tenant (the shared ``other_hotel`` fixture)."""
    return other_hotel


def token_client(token: Token | None) -> APIClient:
    """An API client sending ``Authorization: Token <key>`` (anonymous for None)."""
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def killarney_token(killarney) -> Token:
    """Token of a killarney staff member."""
    return make_staff("killarney-staff", killarney)


@pytest.fixture
def galway_token(galway) -> Token:
    """Token of a galway staff member."""
    return make_staff("galway-staff", galway)


@pytest.fixture
def api(killarney_token) -> APIClient:
    """An API client authenticated as killarney staff (the seed's curl user)."""
    return token_client(killarney_token)


@pytest.fixture
def spa_offer(killarney):
    """A killarney offer without a photo."""
    from hotel.models import Offer

    return Offer.objects.create(hotel=killarney, title="Spa Weekend", short_description="Two nights", sort_order=1)


@pytest.fixture
def photo_offer(killarney, media_root):
    """A killarney offer that already has a stored photo, ``offers/old.png``."""
    from hotel.models import Offer

    offer = Offer.objects.create(hotel=killarney, title="Golf Break", short_description="Three nights")
    offer.photo.save("old.png", ContentFile(image_bytes("PNG")), save=True)
    assert offer.photo.name == "offers/old.png"
    return offer


@pytest.fixture
def seafood_offer(galway):
    """A galway offer (the other tenant's)."""
    from hotel.models import Offer

    return Offer.objects.create(hotel=galway, title="Seafood Supper", short_description="On the bay")
