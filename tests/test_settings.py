"""Settings: defaults in one place, following override_settings; a bad value never raises."""

import logging

import pytest
from django.core import checks
from django.test import override_settings

from offer_realtime.settings import DEFAULTS, get_pusher_credentials, get_settings


def test_defaults_fit_the_seed_host():
    conf = get_settings()
    assert (conf.model, conf.serializer, conf.hotel_slug, conf.photo_field, conf.channel) == (
        "hotel.Offer",
        "hotel.serializers.OfferStaffSerializer",
        "hotel.slug",
        "photo",
        "hotel-{hotel_slug}",
    )
    assert conf.enabled is True
    assert conf.timeout == DEFAULTS["TIMEOUT"]
    # No credentials in the test settings: events are logged.
    assert conf.backend == "offer_realtime.backends.logging.LoggingBackend"


def test_override_settings_is_followed_and_undone():
    with override_settings(OFFER_REALTIME={"CHANNEL": "staff-{hotel_slug}", "TIMEOUT": "1.5", "ENABLED": "false"}):
        conf = get_settings()
        assert (conf.channel, conf.timeout, conf.enabled) == ("staff-{hotel_slug}", 1.5, False)
    assert get_settings().channel == "hotel-{hotel_slug}"


def test_pusher_credentials_from_environment_style_strings():
    with override_settings(
        PUSHER_APP_ID=1234,
        PUSHER_KEY="k",
        PUSHER_SECRET="s",
        PUSHER_HOST="127.0.0.1",
        PUSHER_PORT="6001",
        PUSHER_SSL="false",
    ):
        creds = get_pusher_credentials()
        assert (creds.app_id, creds.port, creds.ssl, creds.complete) == ("1234", 6001, False, True)
        assert get_settings().backend == "offer_realtime.backends.pusher.PusherBackend"
    assert get_pusher_credentials().missing == ["PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET"]


# -- A bad value never raises: it is reported by a check and replaced by the default ---------

#: Wrong types and out-of-range values for every key, and the check id that names each.
#: A new key in DEFAULTS fails test_every_key_has_bad_values until it is listed here.
BAD_VALUES = {
    "ENABLED": ("offer_realtime.E101", ["maybe", None, 2, [True]]),
    "MODEL": ("offer_realtime.E102", [5, None, "", ["hotel.Offer"]]),
    "SERIALIZER": ("offer_realtime.E103", [None, 3, "", object()]),
    "HOTEL_SLUG": ("offer_realtime.E104", [["hotel", "slug"], None, "", "hotel..slug", "hotel.slug!"]),
    "PHOTO_FIELD": ("offer_realtime.E105", [3, None, "", "photo field"]),
    "CHANNEL": ("offer_realtime.E106", [None, 7, "", ("hotel-{hotel_slug}",)]),
    "BACKEND": ("offer_realtime.E107", [42, "", ["pusher"], object]),
    "TIMEOUT": ("offer_realtime.E108", ["3s", None, 0, -1, float("nan"), float("inf"), True, [3]]),
    "IGNORE_FIELDS": ("offer_realtime.E109", [None, "updated_at", 5, ["title", 5], {"title": 1}]),
    "MAX_PAYLOAD_BYTES": ("offer_realtime.E110", ["10 KB", None, 0, -5, 10.5, True]),
    "SOCKET_ID_HEADER": ("offer_realtime.E111", [b"X-Socket", None, "", "X Socket", 5]),
    "USER_HOTEL_SLUG": ("offer_realtime.E112", [{"a": 1}, None, "", "profile..slug"]),
    "DELIVERY": ("offer_realtime.E009", [["inline"], None, 5, "carrier-pigeon"]),
    "QUEUE_SIZE": ("offer_realtime.E113", ["many", None, 0, -1, 2.5, True]),
    "QUEUE_PUT_TIMEOUT": ("offer_realtime.E114", [[], None, -0.1, "soon", float("nan")]),
    "RETRY_ATTEMPTS": ("offer_realtime.E115", [2.5, None, -1, "five", False]),
    "RETRY_BASE_DELAY": ("offer_realtime.E116", ["soon", None, -1, float("inf")]),
    "RETRY_MAX_DELAY": ("offer_realtime.E117", [None, "x", -2]),
    "FLUSH_TIMEOUT": ("offer_realtime.E118", [{}, None, -1]),
    "TASK_BACKEND": ("offer_realtime.E119", [None, 7, ""]),
    "TASK_QUEUE": ("offer_realtime.E120", [7, None, ""]),
    "PRESENCE_USER": ("offer_realtime.E121", [5, "not a path", "nodots", ["a.b"]]),
    "PHOTO_URL": ("offer_realtime.E122", [5, "not a path", ["a.b"], lambda offer: None]),
    "ORDERING": ("offer_realtime.E123", ["sometimes", None, 2, [True]]),
    "PUBLIC_SERIALIZER": ("offer_realtime.E124", [5, "not a path", "nodots", ["a.b"]]),
    "PUBLIC_CHANNEL": ("offer_realtime.E125", [None, 7, ""]),
    "ACTIVE_FIELD": ("offer_realtime.E126", [None, 7, "", "is active"]),
    "PRESENCE_CHANNEL": ("offer_realtime.E127", [7, ["presence-hotel-{hotel_slug}"], b"presence-x"]),
    "CONCURRENT_CALLS": ("offer_realtime.E128", [0, 11, -1, 2.5, "four", None, True]),
}

BAD_PUSHER_VALUES = {
    "PUSHER_APP_ID": ("offer_realtime.E131", ["app-1", {"id": 1}, -3, 1.5, True]),
    "PUSHER_KEY": ("offer_realtime.E132", [5, ["k"], b"k"]),
    "PUSHER_SECRET": ("offer_realtime.E133", [5, {"s": 1}]),
    "PUSHER_CLUSTER": ("offer_realtime.E134", [["eu"], 3]),
    "PUSHER_HOST": ("offer_realtime.E135", [5, ["127.0.0.1"]]),
    "PUSHER_PORT": ("offer_realtime.E136", ["abc", 0, 70000, -1, 1.5, [6001], True]),
    "PUSHER_SSL": ("offer_realtime.E137", ["maybe", None, 2, []]),
}


def _cases(table):
    return [
        pytest.param(key, value, check_id, id=f"{key}={value!r}")
        for key, (check_id, values) in table.items()
        for value in values
    ]


def _offer_realtime_messages():
    return [m for m in checks.run_checks() if m.id.startswith("offer_realtime.")]


def test_every_key_has_bad_values():
    assert set(BAD_VALUES) == set(DEFAULTS)


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value", "check_id"), _cases(BAD_VALUES))
def test_a_bad_value_is_a_check_message_and_falls_back_to_the_default(key, value, check_id, hotel, caplog):
    from hotel.models import Offer
    from offer_realtime.testing import capture_broadcasts

    with override_settings(OFFER_REALTIME={}):
        default = getattr(get_settings(), key.lower())
    caplog.clear()
    with override_settings(OFFER_REALTIME={key: value}):
        messages = _offer_realtime_messages()  # never raises
        assert [m.id for m in messages] == [check_id]
        assert f"OFFER_REALTIME['{key}']" in messages[0].msg
        assert getattr(get_settings(), key.lower()) == default
        # A save still works and sends its event.
        with capture_broadcasts() as sent:
            Offer.objects.create(hotel=hotel, title="still broadcast")
        assert [e.name for e in sent] == ["offer-created"]
    # Logged once for the configuration, at ERROR, naming the check id.
    lines = [r for r in caplog.records if check_id in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR


@pytest.mark.django_db
@pytest.mark.parametrize(("key", "value", "check_id"), _cases(BAD_PUSHER_VALUES))
def test_a_bad_pusher_setting_is_a_check_message(key, value, check_id):
    complete = {
        "PUSHER_APP_ID": "1",
        "PUSHER_KEY": "k",
        "PUSHER_SECRET": "s",
        "PUSHER_HOST": "127.0.0.1",
        "PUSHER_PORT": 6001,
        "PUSHER_SSL": False,
    }
    with override_settings(**{**complete, key: value}):
        messages = _offer_realtime_messages()
        assert check_id in [m.id for m in messages]
        assert next(m for m in messages if m.id == check_id).msg.startswith(key)
        assert [m.id for m in messages] == [check_id]
        get_pusher_credentials()  # never raises
        from offer_realtime.backends import get_backend

        get_backend()  # builds a client from what is left


def test_good_environment_style_values_are_accepted():
    good = {
        "ENABLED": "off",
        "TIMEOUT": "2.5",
        "QUEUE_SIZE": "50",
        "MAX_PAYLOAD_BYTES": 20_000.0,
        "RETRY_ATTEMPTS": 0,
        "QUEUE_PUT_TIMEOUT": 0,
        "IGNORE_FIELDS": ["title"],
        "BACKEND": "null",
    }
    with override_settings(OFFER_REALTIME=good, PUSHER_PORT="6001", PUSHER_APP_ID=42, PUSHER_SSL="0"):
        conf = get_settings()
        assert (
            conf.enabled,
            conf.timeout,
            conf.queue_size,
            conf.max_payload_bytes,
            conf.retry_attempts,
            conf.ignore_fields,
        ) == (False, 2.5, 50, 20_000, 1, ("title",))
        assert conf.problems == ()
        creds = get_pusher_credentials()
        assert (creds.port, creds.app_id, creds.ssl, creds.problems) == (6001, "42", False, ())
