"""The example project under a real gunicorn, as deployed: sync workers, worker recycling.

Used by the reliability tests (a worker recycled by ``--max-requests`` during a Pusher
outage) and by ``benchmarks/recycle_outage.py``. The server runs in its own process group
with its output in a log file; it is stopped with SIGTERM (gunicorn's graceful shutdown:
each worker finishes, then flushes its held events at exit), then SIGKILL, and reaped.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.e2e.harness import HarnessError, free_port
from tests.pythonpath import child_pythonpath

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "example_project"


class GunicornServer:
    """``gunicorn example_project.wsgi`` on a free loopback port.

    ``env`` is added to this process's environment (``DATABASE_URL``, ``PUSHER_*``, ...);
    ``args`` are more gunicorn options, e.g. ``["--workers", "1", "--max-requests", "10"]``.
    """

    def __init__(self, env: Mapping[str, str], args: Sequence[str] = (), *, startup_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.log_path = Path(tempfile.mkdtemp(prefix="gunicorn-e2e-")) / "gunicorn.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "OFFER_REALTIME_"))},
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "PYTHONPATH": child_pythonpath(),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "example_project.wsgi:application",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--worker-class",
            "sync",
            "--log-level",
            "info",
            *args,
        ]
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def output(self) -> str:
        """Everything gunicorn and its workers printed so far (the app's log included)."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text("utf-8", "replace")
        return ""

    def start(self) -> GunicornServer:
        """Start gunicorn and wait until it answers HTTP."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=EXAMPLE,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise HarnessError(f"gunicorn exited with {self.proc.returncode}:\n{self.output[-4000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"gunicorn did not listen within {self.startup_timeout} s:\n{self.output[-4000:]}")
            time.sleep(0.05)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful: workers flush what they hold), SIGKILL after ``timeout`` s; reaped."""
        proc = self.proc
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)

    def __enter__(self) -> GunicornServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None, timeout: float = 60.0
    ) -> tuple[int, Any]:
        """One HTTP request on a new connection; ``(status, parsed JSON or None)``."""
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Token {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        is_json = response.headers.get("Content-Type", "").startswith("application/json")
        data = json.loads(raw) if raw and is_json else None
        return response.status, data
