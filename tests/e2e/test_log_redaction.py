"""Real 4xx answers from soketi: logged and signalled with no signed query string."""

from __future__ import annotations

import re

import pytest

from offer_realtime import events, signals
from offer_realtime.sending import send_batch

pytestmark = pytest.mark.e2e

SIGNED = re.compile(r"auth_signature=[0-9a-f]|auth_key=e2ekey|body_md5=[0-9a-f]|auth_timestamp=\d")


@pytest.fixture
def failures():
    seen = []

    def on_failed(sender, error, **kwargs):
        seen.append(error)

    signals.broadcast_failed.connect(on_failed)
    yield seen
    signals.broadcast_failed.disconnect(on_failed)


@pytest.mark.parametrize(
    ("setting", "value", "status"),
    [("PUSHER_SECRET", "wrong", "PusherBadAuth"), ("PUSHER_APP_ID", "1", "PusherBadStatus")],
)
def test_a_4xx_from_soketi_is_logged_without_the_signed_url(
    realtime, settings, caplog, failures, setting, value, status
):
    settings.OFFER_REALTIME = {"DELIVERY": "inline"}
    setattr(settings, setting, value)
    batch = [events.offer_deleted("hotel-redaction", i, "t") for i in range(2)]
    send_batch(batch[:1])  # trigger
    send_batch(batch)  # trigger_batch
    assert caplog.text.count(f"failed: {status}") == 3, caplog.text
    assert not SIGNED.search(caplog.text), caplog.text
    assert len(failures) == 2
    for error in failures:
        assert not SIGNED.search(f"{error} {error.args!r}")
