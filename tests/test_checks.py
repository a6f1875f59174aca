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


def test_e011_unknown_keys_are_named():
    with override_settings(OFFER_REALTIME={"MODLE": "hotel.Offer"}):
        (message,) = check_settings()
    assert message.id == "offer_realtime.E011"
    assert "MODLE" in message.msg and "MODEL" in message.hint


@pytest.mark.parametrize("model", ["hotel.Nope", "nohotel.Offer", "not-a-label"])
def test_e002_model_not_installed(model):
    with override_settings(OFFER_REALTIME={"MODEL": model}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.E002"]
    assert repr(model) in messages[0].msg


def test_e002_fails_manage_py_check():
    with (
        override_settings(OFFER_REALTIME={"MODEL": "hotel.Nope"}),
        pytest.raises(SystemCheckError, match=r"offer_realtime\.E002"),
    ):
        call_command("check")


@pytest.mark.parametrize("bad", [{"TIMEOUT": "3s"}, {"IGNORE_FIELDS": None}, {"QUEUE_SIZE": "many"}])
def test_a_bad_value_fails_manage_py_check_with_its_id_instead_of_crashing(bad):
    from offer_realtime.settings import VALIDATORS

    (key,) = bad
    with override_settings(OFFER_REALTIME=bad), pytest.raises(SystemCheckError, match=VALIDATORS[key][0]):
        call_command("check")


def test_e003_serializer_not_importable():
    with override_settings(OFFER_REALTIME={"SERIALIZER": "hotel.serializers.Missing"}):
        messages = check_serializer()
    assert ids(messages) == ["offer_realtime.E003"]
    assert "hotel.serializers.Missing" in messages[0].msg


@pytest.mark.parametrize(
    ("field", "check_id", "hint"),
    [
        ("picture", "offer_realtime.E004", "Name the model field"),
        ("title", "offer_realtime.E021", "PHOTO_URL"),
    ],
)
def test_e004_e021_photo_field_missing_or_without_a_url(field, check_id, hint):
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": field}):
        messages = check_model()
    assert ids(messages) == [check_id]
    assert repr(field) in messages[0].msg and hint in messages[0].hint


@pytest.mark.parametrize(
    ("path", "check_id"),
    [
        ("tests.testapp.photos.nowhere", "offer_realtime.E022"),
        ("tests.nowhere.image_key_url", "offer_realtime.E022"),
        ("offer_realtime.settings.DEFAULTS", "offer_realtime.E023"),
    ],
)
def test_e022_e023_photo_url_not_importable_or_not_callable(path, check_id):
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": "tag", "PHOTO_URL": path}):
        assert ids(check_model()) == [check_id]


def test_an_invalid_photo_url_is_e122_only():
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": "tag", "PHOTO_URL": 42}):
        assert ids([m for m in checks.run_checks() if m.id.startswith("offer_realtime")]) == ["offer_realtime.E122"]


def test_e004_passes_for_any_field_with_photo_url():
    with override_settings(OFFER_REALTIME={"PHOTO_FIELD": "tag", "PHOTO_URL": "tests.testapp.photos.image_key_url"}):
        assert check_model() == []


@pytest.mark.parametrize(
    ("path", "check_id"),
    [
        ("hotell.slug", "offer_realtime.E005"),
        ("hotel.code", "offer_realtime.E005"),
        ("title.slug", "offer_realtime.E012"),  # a char field, not a link
    ],
)
def test_e005_e012_slug_path_broken(path, check_id):
    with override_settings(OFFER_REALTIME={"HOTEL_SLUG": path}):
        messages = check_model()
    assert ids(messages) == [check_id]
    assert path in messages[0].msg


def test_slug_path_may_end_in_a_property():
    with override_settings(
        OFFER_REALTIME={"MODEL": "testapp.Promotion", "HOTEL_SLUG": "title", "PHOTO_FIELD": "banner"}
    ):
        assert check_model() == []


@pytest.mark.parametrize(
    ("backend", "check_id"),
    [
        ("offer_realtime.backends.nope.Backend", "offer_realtime.E006"),
        ("hotel.models.Offer", "offer_realtime.E013"),
    ],
)
def test_e006_e013_backend_not_importable_or_not_a_backend(backend, check_id):
    with override_settings(OFFER_REALTIME={"BACKEND": backend}):
        assert ids(check_backend()) == [check_id]


def test_e007_pusher_backend_without_credentials_names_what_is_missing():
    with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}, PUSHER_APP_ID="1", PUSHER_KEY="", PUSHER_SECRET=""):
        (message,) = check_backend()
    assert message.id == "offer_realtime.E007"
    assert "PUSHER_KEY, PUSHER_SECRET are not set" in message.msg


def test_pusher_backend_with_credentials_is_fine():
    with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}, PUSHER_APP_ID="1", PUSHER_KEY="k", PUSHER_SECRET="s"):
        assert check_backend() == []


@pytest.mark.parametrize(
    ("template", "check_id", "fragment"),
    [
        ("hotel {hotel_slug}", "offer_realtime.E008", "characters outside"),
        ("hotel-{hotel_slug}" + "x" * 160, "offer_realtime.E008", "at most 164"),
        ("hotel-{slug}", "offer_realtime.E014", "KeyError"),
        ("hotel-{hotel_slug.nope}", "offer_realtime.E014", "AttributeError"),
        ("hotel-{0}", "offer_realtime.E014", "IndexError"),
        ("all-hotels", "offer_realtime.E015", "every hotel would share one channel"),
    ],
)
def test_e008_e014_e015_channel_template(template, check_id, fragment):
    with override_settings(OFFER_REALTIME={"CHANNEL": template}):
        messages = check_channel()
        assert ids(checks.run_checks()).count(check_id) == 1  # and nothing raises on the way
    assert ids(messages) == [check_id]
    assert fragment in messages[0].msg


def test_w001_unicode_and_w004_long_slug_field(db):
    with override_settings(OFFER_REALTIME={"CHANNEL": "hotel-offers-for-the-staff-of-{hotel_slug}" + "-x" * 20}):
        messages = check_model()
    assert ids(messages) == ["offer_realtime.W004"]
    assert "can exceed Pusher's 164" in messages[0].msg
    from hotel.models import Hotel

    slug = Hotel._meta.get_field("slug")
    slug.allow_unicode = True
    try:
        (message,) = check_model()
        assert message.id == "offer_realtime.W001" and "unicode" in message.msg
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
    from offer_realtime.checks import check_delivery, check_setting_values

    with override_settings(OFFER_REALTIME={"DELIVERY": "carrier-pigeon"}):
        messages = check_setting_values()
        assert check_delivery() == []  # one mistake, one message
    assert ids(messages) == ["offer_realtime.E009"]
    assert "'carrier-pigeon' is not one of inline, background, task" in messages[0].msg


def test_e016_e017_task_mode_needs_a_task_backend_and_queue():
    from offer_realtime.checks import check_delivery

    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "nope"}):
        (message,) = check_delivery()
    assert message.id == "offer_realtime.E016" and "'nope'" in message.msg
    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db", "TASK_QUEUE": "offers"}):
        (message,) = check_delivery()
    assert message.id == "offer_realtime.E017" and "'offers'" in message.msg
    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db"}):
        assert check_delivery() == []


def test_e018_task_backend_that_cannot_be_loaded(settings):
    from offer_realtime.checks import check_delivery

    settings.TASKS = {**settings.TASKS, "broken": {"BACKEND": "no.such.Backend"}}
    with override_settings(OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "broken"}):
        (message,) = check_delivery()
    assert message.id == "offer_realtime.E018" and "cannot be loaded" in message.msg


def test_e010_task_mode_without_the_task_framework(monkeypatch):
    import sys

    from offer_realtime.checks import check_delivery

    monkeypatch.setitem(sys.modules, "offer_realtime.tasks", None)  # import fails, as without django-tasks
    with override_settings(OFFER_REALTIME={"DELIVERY": "task"}):
        assert ids(check_delivery()) == ["offer_realtime.E010"]


@pytest.mark.parametrize(
    ("path", "check_id"),
    [
        ("tests.nowhere.presence", "offer_realtime.E019"),
        ("offer_realtime.settings.DEFAULTS", "offer_realtime.E020"),
    ],
)
def test_e019_e020_presence_user_hook(path, check_id):
    from offer_realtime.checks import check_presence_user

    with override_settings(OFFER_REALTIME={"PRESENCE_USER": path}):
        assert ids(check_presence_user()) == [check_id]
    with override_settings(OFFER_REALTIME={"PRESENCE_USER": "offer_realtime.views.presence_user"}):
        assert check_presence_user() == []


def test_a_bad_value_is_reported_once_not_again_by_the_check_of_its_meaning():
    # MODEL=5 falls back to "hotel.Offer"; the model check must not then report on that.
    with override_settings(
        OFFER_REALTIME={
            "MODEL": 5,
            "CHANNEL": None,
            "BACKEND": 3,
            "SERIALIZER": None,
            "HOTEL_SLUG": "a..b",
            "PHOTO_FIELD": 1,
        }
    ):
        messages = [m for m in checks.run_checks() if m.id.startswith("offer_realtime")]
    assert sorted(ids(messages)) == [f"offer_realtime.E10{n}" for n in (2, 3, 4, 5, 6, 7)]


def test_pusher_credentials_with_a_bad_value_are_not_also_called_missing():
    with override_settings(OFFER_REALTIME={"BACKEND": "pusher"}, PUSHER_APP_ID="1", PUSHER_KEY=5, PUSHER_SECRET="s"):
        messages = [m for m in checks.run_checks() if m.id.startswith("offer_realtime")]
    assert ids(messages) == ["offer_realtime.E132"]


def _documented_ids(text):
    import re

    found = set(re.findall(r"offer_realtime\.([EW]\d{3})", text))
    for first, last in re.findall(r"offer_realtime\.E(\d{3})``?-``?E(\d{3})", text):
        found |= {f"E{n}" for n in range(int(first), int(last) + 1)}
    return found


def test_every_id_is_documented_once_in_checks_and_the_readme():
    import inspect
    import re
    from pathlib import Path

    from offer_realtime import checks as module
    from offer_realtime.settings import PUSHER_VALIDATORS, VALIDATORS

    source = inspect.getsource(module)
    code = source[source.index('"""', 3) + 3 :]
    emitted = set(re.findall(r'"offer_realtime\.([EW]\d{3})"', code))
    emitted |= {check_id.split(".")[1] for check_id, _ in (*VALIDATORS.values(), *PUSHER_VALIDATORS.values())}
    # One id per setting: no two settings share an id.
    per_setting = [check_id for check_id, _ in (*VALIDATORS.values(), *PUSHER_VALIDATORS.values())]
    assert len(per_setting) == len(set(per_setting))
    assert emitted == _documented_ids(module.__doc__)
    # Next to the tests, not the module: under nox the module is the installed copy.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## System checks") :]
    assert emitted == _documented_ids(section[: section.index("\n## ", 3)])


@pytest.mark.parametrize(
    ("template", "found"),
    [
        ("presence-hotel-{hotel_slug}", None),
        ("presence-staff-{hotel_slug}", None),
        (None, None),
        ("private-hotel-{hotel_slug}", "is not a presence channel"),
        ("hotel-{hotel_slug}", "is not a presence channel"),
        ("presence-all", "every hotel would share one channel"),
        ("presence-{hotel}", "cannot be rendered"),
        ("presence-{hotel_slug}!", "which Pusher refuses"),
    ],
)
def test_presence_channel_template(template, found):
    from offer_realtime.checks import check_presence_channel

    with override_settings(OFFER_REALTIME={"PRESENCE_CHANNEL": template}):
        messages = check_presence_channel()
    if found is None:
        assert messages == []
    else:
        assert ids(messages) == ["offer_realtime.E034"]
        assert found in messages[0].msg
