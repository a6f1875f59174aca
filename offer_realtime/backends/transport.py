"""The HTTP transport under the ``pusher`` client: urllib3's connection pool.

The ``pusher`` library sends through ``requests`` by default and takes any object with
``send_request(request)`` instead (its ``backend`` argument). ``requests`` costs about
0.5 ms of CPU per call on top of urllib3, which it uses underneath: on a near Pusher
server that was a third of a batched send (``docs/benchmarks.md``, throughput). So calls
go through urllib3 directly, with what the ``requests`` path gave them kept:

- the same CA bundle (the ``pusher`` library's own, as it passes it to ``requests``);
- a pool of up to 10 kept-alive connections per host (``requests``' default), so
  threads sharing one client never discard connections;
- no retry inside the call (the sender retries, with backoff);
- failures raised as ``requests``' exceptions (:func:`_as_requests_error`): a timeout
  as ``requests.Timeout``, a refused or reset connection as ``requests.ConnectionError``,
  which is what :mod:`offer_realtime.retry`, ``offer_realtime_ping`` and receivers of
  ``broadcast_failed`` already tell apart.

A proxy configured in the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``,
minus ``NO_PROXY``) is honoured by ``requests``, not by a plain urllib3 pool: for such a
host :func:`http_backend` keeps the ``pusher`` library's ``RequestsBackend``.
"""

from __future__ import annotations

import urllib.request
from typing import Any

import pusher.requests
import requests
import urllib3
import urllib3.exceptions
from pusher.http import process_response

#: Kept-alive connections per host, as ``requests.adapters.DEFAULT_POOLSIZE``.
POOL_SIZE = 10


class Urllib3Backend:
    """A ``pusher`` client backend sending through one ``urllib3.PoolManager``."""

    def __init__(self, client: Any, **options: Any) -> None:
        self.client = client
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": pusher.requests.CERT_PATH} if client.ssl else {}
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=POOL_SIZE, retries=False, **tls, **options)

    def send_request(self, request: Any) -> Any:
        """Send one signed ``pusher.http.Request``; Pusher's answer as the library reads it."""
        try:
            response = self.pool.request(
                request.method,
                request.url,
                body=request.body,
                headers=request.headers,
                timeout=self.client.timeout,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            # As requests does, the exception carries the request; its signed URL is
            # redacted where failures are reported (offer_realtime.redaction).
            raise _as_requests_error(exc, requests.Request(request.method, request.url)) from exc
        return process_response(response.status, response.data.decode("utf-8", errors="replace"))

    def close(self) -> None:
        """Close the pooled connections."""
        self.pool.clear()


def _as_requests_error(exc: urllib3.exceptions.HTTPError, request: requests.Request) -> requests.RequestException:
    # The order matters: NewConnectionError is a ConnectTimeoutError in urllib3 (a refused
    # connection is no timeout), and requests' ConnectTimeout is both a ConnectionError and
    # a Timeout.
    kind: type[requests.RequestException] = requests.ConnectionError
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        kind = requests.ConnectionError
    elif isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        kind = requests.ConnectTimeout
    elif isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        kind = requests.ReadTimeout
    elif isinstance(exc, urllib3.exceptions.SSLError):
        kind = requests.exceptions.SSLError
    return kind(str(exc), request=request)


def http_backend(client: Any, **options: Any) -> Any:
    """The ``backend`` for a ``pusher`` client: :class:`Urllib3Backend`, or the library's
    ``RequestsBackend`` when the environment routes the client's host through a proxy."""
    if _proxied(client.host):
        return pusher.requests.RequestsBackend(client, **options)
    return Urllib3Backend(client, **options)


def _proxied(host: str) -> bool:
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("https", "http", "all")) and not urllib.request.proxy_bypass(host)
