"""A loopback HTTP server standing in for Pusher's REST API in fast unit tests.

It records what the ``pusher`` library sends and answers as told (status, delay).
The end-to-end tests use a real Pusher-protocol server (soketi) instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class PusherStub:
    """Records POSTs to ``/apps/<id>/events`` and ``/apps/<id>/batch_events``."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.delay = 0.0
        #: Statuses for the next requests, used up first (then ``status`` applies).
        self.script: list[int] = []
        #: Optional rule on a request's JSON body: a status to answer instead (e.g. 413 for
        #: a batch holding an oversize event, as Pusher does), or None for the usual answer.
        self.reject: Callable[[dict], int | None] | None = None
        #: Requests being answered right now, and the most there ever were at once.
        self.under_way = 0
        self.most_under_way = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = stub.script.pop(0) if stub.script else stub.status
                if stub.reject is not None and status == 200:
                    status = stub.reject(json.loads(body or b"{}")) or status
                stub.requests.append(
                    {"path": urlsplit(self.path).path, "body": json.loads(body or b"{}"), "status": status}
                )
                with stub._lock:
                    stub.under_way += 1
                    stub.most_under_way = max(stub.most_under_way, stub.under_way)
                try:
                    if stub.delay:
                        time.sleep(stub.delay)
                finally:
                    with stub._lock:
                        stub.under_way -= 1
                payload = b"{}" if status == 200 else b'{"error": "stub says no"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def settings(self) -> dict:
        """Django settings pointing the Pusher backend at this stub."""
        return {
            "PUSHER_APP_ID": "4242",
            "PUSHER_KEY": "stub-key",
            "PUSHER_SECRET": "stub-secret",
            "PUSHER_HOST": "127.0.0.1",
            "PUSHER_PORT": self.port,
            "PUSHER_SSL": False,
        }

    def events(self) -> list[dict]:
        """Every event accepted (answered 200), in order, as ``{"name", "channel", "data"}``."""
        result = []
        for request in self.requests:
            if request["status"] != 200:
                continue
            body = request["body"]
            for event in body.get("batch", [body]):
                channels = event.get("channels") or [event.get("channel")]
                for channel in channels:
                    result.append({"name": event["name"], "channel": channel, "data": json.loads(event["data"])})
        return result

    def __enter__(self) -> PusherStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
