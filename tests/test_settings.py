"""Settings: defaults in one place, following override_settings."""

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
        PUSHER_APP_ID=1234, PUSHER_KEY="k", PUSHER_SECRET="s", PUSHER_HOST="127.0.0.1", PUSHER_PORT="6001",
        PUSHER_SSL="false",
    ):
        creds = get_pusher_credentials()
        assert (creds.app_id, creds.port, creds.ssl, creds.complete) == ("1234", 6001, False, True)
        assert get_settings().backend == "offer_realtime.backends.pusher.PusherBackend"
    assert get_pusher_credentials().missing == ["PUSHER_APP_ID", "PUSHER_KEY", "PUSHER_SECRET"]
