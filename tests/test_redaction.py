"""No Pusher-signed query string (auth_key, auth_signature, ...) in a log line or a signal payload."""

from __future__ import annotations

import io
import logging
import re
import socket

import pytest
import requests
from django.core.management import CommandError, call_command
from django.test import override_settings

from offer_realtime import events, metrics, sender, signals
from offer_realtime.changes import Change
from offer_realtime.redaction import redact, redact_exception
from offer_realtime.sending import send_batch

KEY = "redactionkey"
SIGNED = re.compile(r"auth_signature=[0-9a-f]|auth_key=redactionkey|body_md5=[0-9a-f]|auth_timestamp=\d")


@pytest.fixture
def refused_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def failures():
    seen = []

    def on_failed(sender, events, error, **kwargs):
        seen.append(error)

    signals.broadcast_failed.connect(on_failed)
    yield seen
    signals.broadcast_failed.disconnect(on_failed)


def unreachable(port, **offer_realtime):
    return override_settings(
        PUSHER_APP_ID="1",
        PUSHER_KEY=KEY,
        PUSHER_SECRET="s3cret",
        PUSHER_HOST="127.0.0.1",
        PUSHER_PORT=port,
        PUSHER_SSL=False,
        OFFER_REALTIME={"DELIVERY": "inline", **offer_realtime},
    )


def everything_logged(caplog) -> str:
    return "\n".join(caplog.text.splitlines() + [r.getMessage() for r in caplog.records])


def assert_no_signature(text: str) -> None:
    assert not SIGNED.search(text), text


@pytest.mark.parametrize("count", [1, 3])  # trigger and trigger_batch
def test_a_refused_connection_is_logged_and_signalled_without_the_signed_url(refused_port, failures, caplog, count):
    with unreachable(refused_port):
        send_batch([events.offer_deleted("hotel-a", i, "t") for i in range(count)])
    logged = everything_logged(caplog)
    assert "Connection refused" in logged and "given up" in logged  # still says what happened
    assert_no_signature(logged)
    [error] = failures
    assert isinstance(error, requests.ConnectionError)  # the type a receiver may check is kept
    assert_no_signature(str(error))
    assert_no_signature(repr(error.args))
    assert_no_signature(error.request.url)
    assert error.request.url.endswith("events?[redacted]")


def test_the_background_sender_logs_no_signed_url(refused_port, failures, caplog):
    metrics.reset()
    with unreachable(refused_port, DELIVERY="background", RETRY_ATTEMPTS=2, RETRY_BASE_DELAY=0.01):
        sender.get_sender().submit_changes([Change.deleted(1, title="t", channel="hotel-a")], "default")
        assert sender.get_sender().flush(5)
    sender.reset_sender()
    assert metrics.snapshot()["given_up"] == 1
    assert len(failures) == 2
    assert_no_signature(everything_logged(caplog))
    for error in failures:
        assert_no_signature(str(error))


def test_the_ping_command_explains_without_the_signed_url(refused_port):
    with unreachable(refused_port), pytest.raises(CommandError) as excinfo:
        call_command("offer_realtime_ping", stdout=io.StringIO())
    assert "Unreachable" in str(excinfo.value)
    assert_no_signature(str(excinfo.value))


def test_redact_keeps_the_rest_of_the_text():
    url = (
        "http://h:80/apps/1/events?auth_key=k&auth_signature=abc123&auth_timestamp=1&auth_version=1.0"
        "&body_md5=ff (Caused by X)"
    )
    assert redact(url) == "http://h:80/apps/1/events?[redacted] (Caused by X)"
    assert redact("auth_signature=abc123 and body_md5=ff") == "auth_signature=[redacted] and body_md5=[redacted]"
    assert redact("nothing secret here?a=1") == "nothing secret here?a=1"


def test_redact_exception_follows_the_chain():
    try:
        try:
            raise OSError("GET /apps/1/events?auth_key=k&auth_signature=abc failed")
        except OSError as inner:
            raise RuntimeError("outer", 7) from inner
    except RuntimeError as caught:
        exc = caught
    assert redact_exception(exc) is exc and exc.args == ("outer", 7)
    assert str(exc.__cause__) == "GET /apps/1/events?[redacted] failed"


def test_logging_a_redacted_exception_with_its_traceback_shows_no_signature(refused_port, caplog):
    from offer_realtime.backends import get_backend

    with unreachable(refused_port):
        try:
            get_backend().send([events.offer_deleted("hotel-a", 1, "t")])
        except requests.ConnectionError as exc:
            logging.getLogger("offer_realtime").error("failed", exc_info=redact_exception(exc))
    assert "Traceback" in caplog.text
    assert_no_signature(caplog.text)
