"""The HTTP transport under the pusher client (offer_realtime.backends.transport).

Against real loopback servers: the Pusher stub, a refused port, a server that never
answers, and a TLS server with a certificate no CA signed.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pusher.requests
import pytest
import requests
import urllib3.exceptions

from offer_realtime import retry
from offer_realtime.backends import transport
from offer_realtime.backends.pusher import make_client
from offer_realtime.settings import PusherCredentials
from tests.pusher_stub import PusherStub


def credentials(port: int, *, host: str = "127.0.0.1", use_ssl: bool = False) -> PusherCredentials:
    return PusherCredentials(app_id="4242", key="k", secret="s", cluster=None, host=host, port=port, ssl=use_ssl)


def http_of(client: pusher.Pusher):
    return client._pusher_client.http


@pytest.fixture
def stub() -> Iterator[PusherStub]:
    with PusherStub() as running:
        yield running


@pytest.fixture
def no_proxy_env(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_calls_go_through_urllib3_not_requests(stub, no_proxy_env):
    """requests costs ~0.5 ms of CPU per call over the urllib3 it uses (benchmark 2)."""
    client = make_client(credentials(stub.port), timeout=5)
    assert isinstance(http_of(client), transport.Urllib3Backend)
    title = "Caf\u00e9 \U0001f600 \u201cquoted\u201d"
    batch = [{"channel": "hotel-a", "name": "offer-deleted", "data": json.dumps({"offer_title": title})}]
    assert client.trigger_batch(batch, already_encoded=True) == {}
    assert client.trigger("hotel-a", "offer-deleted", {"offer_id": 1}) == {}
    assert [event["data"] for event in stub.events()] == [
        {"offer_title": title},
        {"offer_id": 1},
    ]
    assert [request["path"] for request in stub.requests] == ["/apps/4242/batch_events", "/apps/4242/events"]


def test_a_proxy_in_the_environment_keeps_requests(monkeypatch, no_proxy_env):
    """requests honours HTTPS_PROXY and friends; a plain urllib3 pool would go around the proxy."""
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    proxied = make_client(credentials(443, host="api-eu.pusher.com"), 5)
    assert isinstance(http_of(proxied), pusher.requests.RequestsBackend)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert isinstance(http_of(make_client(credentials(443, host="127.0.0.1"), 5)), transport.Urllib3Backend)


def test_a_refused_connection_is_requests_connection_error_and_transient(no_proxy_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    client = make_client(credentials(port), timeout=5)
    with pytest.raises(requests.ConnectionError) as caught:
        client.trigger("hotel-a", "offer-deleted", {"offer_id": 1})
    assert not isinstance(caught.value, requests.Timeout)
    assert "refused" in str(caught.value).lower()
    assert isinstance(caught.value.__cause__, urllib3.exceptions.NewConnectionError)
    assert caught.value.request.url.startswith(f"http://127.0.0.1:{port}/apps/4242/events?")
    assert retry.is_transient(caught.value)


def test_no_answer_within_the_timeout_is_requests_read_timeout_and_transient(no_proxy_env):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()  # accepts (the kernel does), never answers
        client = make_client(credentials(server.getsockname()[1]), timeout=0.2)
        with pytest.raises(requests.ReadTimeout) as caught:
            client.trigger("hotel-a", "offer-deleted", {"offer_id": 1})
    assert retry.is_transient(caught.value)


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (urllib3.exceptions.ConnectTimeoutError("connect timed out"), requests.ConnectTimeout),
        (urllib3.exceptions.SSLError("bad certificate"), requests.exceptions.SSLError),
        (urllib3.exceptions.ProtocolError("Connection aborted."), requests.ConnectionError),
    ],
)
def test_other_urllib3_failures_map_to_the_requests_exception_a_receiver_checks(raised, expected):
    mapped = transport._as_requests_error(raised, requests.Request("POST", "http://x/apps/1/events"))
    assert type(mapped) is expected
    assert str(mapped) == str(raised)
    # As with requests, whose SSLError is a ConnectionError: retried like one.
    assert retry.is_transient(mapped)


def test_threads_sharing_one_client_reuse_a_pool_without_discarding_connections(stub, no_proxy_env, caplog):
    """A request thread and the sender thread may share the client; urllib3 warns and drops
    connections when more threads than its pool size send at once."""
    client = make_client(credentials(stub.port), timeout=5)
    stub.delay = 0.01
    caplog.set_level(logging.WARNING, logger="urllib3")

    def send(thread: int) -> None:
        for i in range(5):
            client.trigger(f"hotel-{thread}", "offer-deleted", {"offer_id": i})

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stub.events()) == 40
    assert "pool is full" not in caplog.text
    http_of(client).close()
    assert len(http_of(client).pool.pools) == 0


@pytest.fixture
def self_signed_tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server on loopback whose certificate no CA signed."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass  # the client refused the certificate: what the test expects

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_tls_verifies_the_certificate_with_the_pusher_librarys_ca_bundle(self_signed_tls_server, no_proxy_env):
    client = make_client(credentials(self_signed_tls_server, use_ssl=True), timeout=5)
    pool = http_of(client).pool
    assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    assert pool.connection_pool_kw["ca_certs"] == pusher.requests.CERT_PATH
    with pytest.raises(requests.exceptions.SSLError) as caught:
        client.trigger("hotel-a", "offer-deleted", {"offer_id": 1})
    assert "certificate verify failed" in str(caught.value)


def test_the_pusher_backend_closes_its_pool(stub, no_proxy_env):
    from django.test import override_settings

    from offer_realtime import events
    from offer_realtime.backends.pusher import PusherBackend

    with override_settings(**stub.settings()):
        backend = PusherBackend()
        backend.send([events.offer_deleted("hotel-a", 1, "Spa")])
        pool = http_of(backend.client).pool
        assert len(pool.pools) == 1
        backend.close()
        assert len(pool.pools) == 0
    assert [event["data"]["offer_id"] for event in stub.events()] == [1]
