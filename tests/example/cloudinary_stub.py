"""A loopback stand-in for Cloudinary's upload API (``/v1_1/<cloud>/<resource_type>/<action>``).

The SDK is pointed at it with ``upload_prefix``. It answers ``upload`` the way
Cloudinary does (public_id inside the requested folder, with a random suffix when
``use_filename`` is set), answers ``destroy``, records every request, and can be
told to fail (HTTP 500 with Cloudinary's error body) or to hang.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import http.server
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

CLOUD_NAME = "stub-cloud"
API_KEY = "123456789012345"
API_SECRET = "stub-secret"


@dataclass
class StubRequest:
    """One request the stub received."""

    action: str
    path: str
    fields: dict[str, str]
    file_name: str | None = None
    file_bytes: bytes | None = None


@dataclass
class CloudinaryStub:
    """A threaded HTTP server on 127.0.0.1 with a random port; use as a context manager."""

    requests: list[StubRequest] = field(default_factory=list)
    #: "ok", "fail" (HTTP 500 + error JSON) or "hang" (answer only after ``release`` is set).
    mode: str = "ok"
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub._handle(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        """The ``upload_prefix`` to configure the SDK with."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def cloudinary_url(self) -> str:
        """A ``CLOUDINARY_URL`` pointing the SDK at this stub."""
        return f"cloudinary://{API_KEY}:{API_SECRET}@{CLOUD_NAME}?upload_prefix={self.url}"

    def actions(self) -> list[str]:
        """The actions requested so far, e.g. ``["upload", "destroy"]``."""
        return [request.action for request in self.requests]

    def destroyed(self) -> list[str]:
        """public_ids that were destroyed, in order."""
        return [r.fields["public_id"] for r in self.requests if r.action == "destroy"]

    def __enter__(self) -> CloudinaryStub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        parts = handler.path.strip("/").split("/")  # v1_1 / cloud / resource_type / action
        action = parts[-1]
        fields, file_name, file_bytes = _parse_multipart(handler.headers.get("Content-Type", ""), body)
        self.requests.append(StubRequest(action, handler.path, fields, file_name, file_bytes))
        if self.mode == "hang":
            self.release.wait(30)
        if self.mode == "fail":
            _answer(handler, 500, {"error": {"message": "Stub failure: service unavailable"}})
        elif action == "upload":
            _answer(handler, 200, _upload_result(fields, file_name, file_bytes or b""))
        elif action == "destroy":
            _answer(handler, 200, {"result": "ok"})
        else:
            _answer(handler, 404, {"error": {"message": f"Unknown action {action}"}})


def _answer(handler: http.server.BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("X-Request-Id", secrets.token_hex(8))
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:  # the client gave up (timeout test)
        pass


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], str | None, bytes | None]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    file_name = file_bytes = None
    if not message.is_multipart():
        return fields, None, None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None or name == "file":
            file_name, file_bytes = part.get_filename(), payload
        else:
            fields[name] = payload.decode()
    return fields, file_name, file_bytes


def _upload_result(fields: dict[str, str], file_name: str | None, data: bytes) -> dict[str, Any]:
    """What Cloudinary answers to an image upload (the fields its docs show)."""
    folder = fields.get("folder", "")
    stem = os.path.splitext(os.path.basename(file_name or "file"))[0]
    if fields.get("use_filename") in ("1", "true", "True"):
        public_id = f"{stem}_{secrets.token_hex(3)}"
    else:
        public_id = secrets.token_hex(10)
    if folder:
        public_id = f"{folder}/{public_id}"
    version = int(time.time())
    path = f"{CLOUD_NAME}/image/upload/v{version}/{public_id}.jpg"
    return {
        "asset_id": secrets.token_hex(16),
        "public_id": public_id,
        "version": version,
        "version_id": secrets.token_hex(16),
        "signature": hashlib.sha1(data).hexdigest(),
        "width": 64,
        "height": 48,
        "format": "jpg",
        "resource_type": "image",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tags": [t for t in fields.get("tags", "").split(",") if t],
        "bytes": len(data),
        "type": "upload",
        "etag": hashlib.md5(data).hexdigest(),  # what Cloudinary uses for etags
        "placeholder": False,
        "url": f"http://res.cloudinary.com/{path}",
        "secure_url": f"https://res.cloudinary.com/{path}",
        "asset_folder": folder,
        "display_name": stem,
        "original_filename": stem,
        "api_key": API_KEY,
    }
