"""Shared fixtures: a hotel with an offer, and small image files."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def pytest_report_header() -> str:
    """Which offer_realtime the run tests: the tree, or the installed package under nox."""
    import offer_realtime

    return f"offer_realtime {offer_realtime.__version__}: {offer_realtime.__file__}"


def make_image(name: str = "photo.png", size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> SimpleUploadedFile:
    """A small valid image upload."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def make_staff(username: str, hotel, **user_fields):
    """A staff user of ``hotel`` (password "pw") with an API token; returns the token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from hotel.models import StaffProfile

    user = get_user_model().objects.create_user(username=username, password="pw", **user_fields)
    StaffProfile.objects.create(user=user, hotel=hotel)
    return Token.objects.create(user=user)


@pytest.fixture
def hotel(db):
    """Hotel ``killarney``."""
    from hotel.models import Hotel

    return Hotel.objects.create(name="Killarney Park", slug="killarney")


@pytest.fixture
def other_hotel(db):
    """A second hotel, ``galway``."""
    from hotel.models import Hotel

    return Hotel.objects.create(name="Galway Bay", slug="galway")


@pytest.fixture
def offer(hotel):
    """An offer of ``killarney``, created before any capture starts."""
    from hotel.models import Offer

    return Offer.objects.create(hotel=hotel, title="Spa weekend", short_description="Two nights")


@pytest.fixture(scope="session", autouse=True)
def _stop_the_sender_before_the_test_database_goes(django_db_setup):
    """The background sender thread holds a database connection; PostgreSQL will not drop
    the test database while it is open, so the thread is ended first."""
    yield
    from offer_realtime import sender

    sender.reset_sender()
