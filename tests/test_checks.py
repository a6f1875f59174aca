"""System checks: each misconfiguration is named by a stable id."""

from __future__ import annotations

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from offer_realtime.checks import (
    check_backend,
    check_channel,
    check_deploy_backend,
    check_model,
    check_serializer,
    check_settings,
)


pytestmark = pytest.mark.django_db  # Django 6.1 model checks may query the database


def ids(messages):
    return [m.id for m in messages]


def test_the_example_project_is_clean():
    messages = checks.run_checks()
    assert [m for m in messages if m.id.startswith("offer_realtime")] == []
    call_command("check")


@pytest.mark.parametrize("value", [["not", "a", "dict"], "hotel.Offer"])
def test_e001_settings_not_a_dict(value):
    with override_settings(OFFER_REALTIME=value):
        assert ids(check_settings()) == ["offer_realtime.E001"]


def test_e001_unknown_keys_are_named():
    with override_settings(OFFER_REALTIME={"MODLE": "hotel.Offer"}):
        (message,) = check_settings()
    assert message.id == "offer_realtime.E001"
    assert "MODLE" in message.msg and "MODEL" in message.hint


@pytest.mark.parametrize("model", ["hotel.Nope", "nohotel.Offer", "not-a-label"])
def test_e002_model_not_installed(model):
    with override_settings(OFFER_REALTIME={"MODEL": model}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.E002"]
    assert repr(model) in messages[0].msg


def test_e002_fails_manage_py_check():
    with override_settings(OFFER_REALTIME={"MODEL": "hotel.Nope"}):
        with pytest.raises(SystemCheckError, match="offer_realtime.E002"):
            call_command("check")


def test_e003_serializer_not_importable():
    with override_settings(OFFER_REALTIME={"SERIALIZER": "hotel.serializers.Missing"}):
        messages = check_serializer()
    assert ids(messages) == ["offer_realtime.E003"]
    assert "hotel.serializers.Missing" in messages[0].msg


@pytest.mark.parametrize("field, hint", [("picture", "Name the model field"), ("title", "PHOTO_URL")])
def test_e004_photo_field_missing_or_not_a_file(field, hint):
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": field}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.E004"]
    assert repr(field) in messages[0].msg and hint in messages[0].hint


def test_e004_passes_for_any_field_with_photo_url():
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": "tag", "PHOTO_URL": "tests.testapp.photos.image_key_url"}):
        assert check_model() == []


@pytest.mark.parametrize("path", ["hotell.slug", "hotel.code", "title.slug"])
def test_e005_slug_path_broken(path):
    with override_settings(OFFER_REALTIME={"HOTEL_SLUG": path}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.E005"]
    assert path in messages[0].msg


def test_slug_path_may_end_in_a_property():
    with override_settings(
        OFFER_REALTIME={"MODEL": "testapp.Promotion", "HOTEL_SLUG": "title", "PHOTO_FIELD": "banner"}
    ):
        assert check_model() == []


@pytest.mark.parametrize("backend", ["offer_realtime.backends.nope.Backend", "hotel.models.Offer"])
def test_e006_backend_not_importable_or_not_a_backend(backend):
    with override_settings(OFFER_REALTIME={"BACKEND": backend}):
        assert ids(check_backend()) == ["offer_realtime.E006"]


def test_e007_pusher_backend_without_credentials_names_what_is_missing():
    with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}, PUSHER_APP_ID="1", PUSHER_KEY="", PUSHER_SECRET=""):
        (message,) = check_backend()
    assert message.id == "offer_realtime.E007"
    assert "PUSHER_KEY, PUSHER_SECRET are not set" in message.msg


def test_pusher_backend_with_credentials_is_fine():
    with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}, PUSHER_APP_ID="1", PUSHER_KEY="k", PUSHER_SECRET="s"):
        assert check_backend() == []


@pytest.mark.parametrize(
    "template, fragment",
    [
        ("hotel {hotel_slug}", "characters outside"),
        ("hotel-{slug}", "KeyError"),
        ("hotel-{hotel_slug}" + "x" * 160, "at most 164"),
        ("all-hotels", "every hotel would share one channel"),
    ],
)
def test_e008_channel_template(template, fragment):
    with override_settings(OFFER_REALTIME={"CHANNEL": template}):
        messages = check_channel()
    assert ids(messages) == ["offer_realtime.E008"]
    assert fragment in messages[0].msg


def test_w001_unicode_or_long_slug_field(db):
    with override_settings(OFFER_REALTIME={"CHANNEL": "hotel-offers-for-the-staff-of-{hotel_slug}" + "-x" * 20}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.W001"]
    assert "can exceed Pusher's 164" in messages[0].msg
    from hotel.models import Hotel

    slug = Hotel._meta.get_field("slug")
    slug.allow_unicode = True
    try:
        assert "unicode" in check_model()[0].msg
    finally:
        slug.allow_unicode = False


def test_w002_deploy_warns_when_events_are_only_logged():
    with override_settings(PUSHER_APP_ID="", OFFER_REALTIME={}):
        assert ids(check_deploy_backend()) == ["offer_realtime.W002"]
    with override_settings(PUSHER_APP_ID="", OFFER_REALTIME={"BACKEND": "logging"}):
        assert check_deploy_backend() == []
    with override_settings(PUSHER_APP_ID="1", PUSHER_KEY="k", PUSHER_SECRET="s"):
        assert check_deploy_backend() == []
    messages = checks.run_checks(include_deployment_checks=True)
    assert "offer_realtime.W002" in ids(messages)


def test_w003_deploy_warns_about_public_channels():
    from offer_realtime.checks import check_deploy_public_channels

    assert ids(check_deploy_public_channels()) == ["offer_realtime.W003"]
    with override_settings(OFFER_REALTIME={"CHANNEL": "private-hotel-{hotel_slug}"}):
        assert check_deploy_public_channels() == []
        assert check_channel() == []


def test_e009_unknown_delivery_mode():
    from offer_realtime.checks import check_delivery

    with override_settings(OFFER_REALTIME={"DELIVERY": "carrier-pigeon"}):
        messages = check_delivery()
    assert ids(messages) == ["offer_realtime.E009"]
    assert "'carrier-pigeon' is not one of inline, background, task" in messages[0].msg


def test_e010_task_mode_needs_a_task_backend():
    from offer_realtime.checks import check_delivery

    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "nope"}):
        assert ids(check_delivery()) == ["offer_realtime.E010"]
    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db", "TASK_QUEUE": "offers"}):
        (message,) = check_delivery()
    assert message.id == "offer_realtime.E010" and "'offers'" in message.msg
    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db"}):
        assert check_delivery() == []
