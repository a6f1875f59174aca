"""Real-parts harness for end-to-end tests.

Starts a real Pusher-protocol server (soketi, from ``node_modules``) and real
pusher-js clients (``subscriber.mjs``) as child processes on free loopback ports.

Typical use::

    with Soketi() as soketi, Subscriber(soketi, ["hotel-killarney"]) as sub:
        sub.wait_subscribed("hotel-killarney")
        ...trigger an event with settings from soketi.pusher_settings()...
        [event] = sub.wait_for_events(1)

soketi runs with Pusher's limits and, by default, with a small preload that makes
its HTTP API answer errors with real HTTP statuses as Pusher does (see
``Soketi(fix_http_status=...)``).

Every child process is started in its own process group, stopped with bounded
timeouts (SIGTERM, then SIGKILL), and always reaped. Children still alive when the
interpreter exits are killed by an ``atexit`` hook, and if the Python process is
killed outright, the children notice that their stdin pipe closed and exit on
their own.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "E2E_DIR",
    "HarnessError",
    "HarnessTimeout",
    "Soketi",
    "Subscriber",
    "SubscriptionError",
    "ensure_node_modules",
    "free_port",
]

E2E_DIR = Path(__file__).resolve().parent
"""Directory holding package.json, node_modules and the Node scripts."""

NODE_MODULES = E2E_DIR / "node_modules"
PACKAGE_LOCK = E2E_DIR / "package-lock.json"
# npm writes this "hidden lockfile" at the end of every successful install, so its
# mtime says when node_modules was last brought in line with package-lock.json.
_INSTALL_MARKER = NODE_MODULES / ".package-lock.json"
SOKETI_BIN = NODE_MODULES / "@soketi" / "soketi" / "bin" / "server.js"
SUBSCRIBER_SCRIPT = E2E_DIR / "subscriber.mjs"
_PARENT_WATCHDOG = E2E_DIR / "parent_watchdog.cjs"
_HTTP_STATUS_FIX = E2E_DIR / "soketi_http_status_fix.cjs"

LOOPBACK = "127.0.0.1"
NPM_CI_TIMEOUT = 600.0

# Pusher Channels' documented limits, applied to soketi so that tests catch what
# production Pusher would reject. Names are soketi 1.6.1's env variables (see
# node_modules/@soketi/soketi/dist/cli/cli.js); soketi's own defaults differ.
PUSHER_LIMITS_ENV = {
    "SOKETI_EVENT_MAX_SIZE_IN_KB": "10",  # soketi default 100
    "SOKETI_EVENT_MAX_BATCH_SIZE": "10",  # soketi default 10
    "SOKETI_CHANNEL_LIMITS_MAX_NAME_LENGTH": "164",  # soketi default 200
    "SOKETI_EVENT_MAX_NAME_LENGTH": "200",  # soketi default 200
    "SOKETI_EVENT_MAX_CHANNELS_AT_ONCE": "100",  # soketi default 100
    # Client events ("client-editing" on the board's presence channel), at Pusher's rate.
    "SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES": "true",  # soketi default false
    "SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC": "10",  # soketi default -1 (no limit)
    "SOKETI_PRESENCE_MAX_MEMBERS": "100",  # soketi default 100
}


class HarnessError(RuntimeError):
    """A harness-managed process failed to install, start or behave."""


class HarnessTimeout(HarnessError, TimeoutError):
    """Something the harness waited for did not happen in time."""


class SubscriptionError(HarnessError):
    """The subscriber reported ``pusher:subscription_error`` for a channel."""

    def __init__(self, message: str, *, channel: str, status: Any, error: Any) -> None:
        super().__init__(message)
        self.channel = channel
        self.status = status
        self.error = error


# --------------------------------------------------------------------------
# Process bookkeeping


_live_lock = threading.Lock()
_live_processes: set[subprocess.Popen] = set()


def _track(proc: subprocess.Popen) -> None:
    with _live_lock:
        _live_processes.add(proc)


def _untrack(proc: subprocess.Popen) -> None:
    with _live_lock:
        _live_processes.discard(proc)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the child's process group (it leads its own session)."""
    if proc.poll() is not None:
        return  # Reaped: its pid (and so the group id) may already be reused.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _terminate(proc: subprocess.Popen, *, graceful: bool, timeout: float) -> None:
    """Stop ``proc`` (SIGTERM, then SIGKILL after ``timeout``) and reap it."""
    try:
        if graceful:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc, signal.SIGKILL)
        # Still running after SIGKILL is only possible for a process stuck in the kernel
        # (state D); nothing more can be done from here, but never hang the test run on it.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)
    finally:
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        _untrack(proc)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort: a test that forgot to stop its processes must not leak them."""
    with _live_lock:
        leftovers = list(_live_processes)
    for proc in leftovers:
        _terminate(proc, graceful=False, timeout=0)


# --------------------------------------------------------------------------
# Ports and installation


def free_port(*, udp: bool = False) -> int:
    """Return a port on 127.0.0.1 that is free right now (TCP, or UDP if ``udp``).

    The port is found by binding to port 0 and closing the socket again, so another
    process could in principle take it before the caller binds it; on a test
    machine that is rare enough to accept.
    """
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _tcp_port_is_free(port: int) -> bool:
    # SO_REUSEADDR like a server would use, so that connections lingering in
    # TIME_WAIT from a previous run do not count as "in use", while a live
    # listener (including one bound to 0.0.0.0) still does.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise HarnessError("`node` was not found on PATH; the e2e harness needs Node.js >= 20")
    return node


def _node_modules_stale() -> bool:
    if not _INSTALL_MARKER.exists() or not SOKETI_BIN.exists():
        return True
    return _INSTALL_MARKER.stat().st_mtime < PACKAGE_LOCK.stat().st_mtime


def ensure_node_modules() -> None:
    """Install the e2e Node packages with ``npm ci`` unless they are up to date.

    Runs when ``tests/e2e/node_modules`` is missing or older than
    ``package-lock.json``, so a fresh clone (or a changed lock file) just works.
    A file lock serialises concurrent callers, e.g. pytest-xdist workers.
    Raises :class:`HarnessError` with npm's output if the install fails.
    """
    if not _node_modules_stale():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise HarnessError("`npm` was not found on PATH; cannot install tests/e2e/node_modules")
    digest = hashlib.sha256(str(E2E_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"offer-realtime-e2e-npm-{digest}.lock"
    with open(lock_path, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if not _node_modules_stale():  # Another process installed meanwhile.
                return
            try:
                result = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund"],
                    cwd=E2E_DIR,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=NPM_CI_TIMEOUT,
                )
            except subprocess.TimeoutExpired as exc:
                raise HarnessError(f"`npm ci` in {E2E_DIR} did not finish within {NPM_CI_TIMEOUT:.0f} s") from exc
            if result.returncode != 0:
                raise HarnessError(
                    f"`npm ci` in {E2E_DIR} failed with exit code {result.returncode}:\n{result.stdout[-8000:]}"
                )
            if _node_modules_stale():
                raise HarnessError(
                    f"`npm ci` in {E2E_DIR} succeeded but {SOKETI_BIN} or "
                    f"{_INSTALL_MARKER} is missing:\n{result.stdout[-8000:]}"
                )
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


# --------------------------------------------------------------------------
# soketi


def _http_get(host: str, port: int, path: str, timeout: float) -> tuple[int, str]:
    # http.client rather than urllib: urllib honours *_proxy env variables, and a
    # loopback health check must never go through a proxy.
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


class Soketi:
    """A real soketi server on loopback, configured with Pusher's limits.

    Ports (HTTP/WebSocket, metrics, and the UDP port of soketi's cluster
    discovery) are picked when the object is created and kept for its lifetime,
    so ``stop()`` followed by ``start()`` brings the server back on the same
    address, as a reconnect test needs. Usable as a context manager.

    Args:
        port: HTTP/WebSocket port; a free one by default.
        app_id: numeric app id (the Python ``pusher`` client rejects others).
        key, secret: app credentials; random by default.
        startup_timeout: seconds to wait for the HTTP port to answer.
        shutdown_grace_ms: soketi's pause between closing client sockets and
            exiting on SIGTERM. soketi's default of 3000 ms only slows tests, and
            while it lasts pusher-js clients reconnect in a tight loop, each time
            refused with 4200 "server is closing".
        fix_http_status: answer HTTP API errors with their real status (413, 400,
            401, ...) like Pusher does; stock soketi 1.6.1 answers them with HTTP 200
            and the code only in the JSON body. See soketi_http_status_fix.cjs.
        extra_env: more ``SOKETI_*`` settings, applied last (they win).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        app_id: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        startup_timeout: float = 20.0,
        shutdown_grace_ms: int = 0,
        fix_http_status: bool = True,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.host = LOOPBACK
        self.port = port if port is not None else free_port()
        self.metrics_port = free_port()
        while self.metrics_port == self.port:
            self.metrics_port = free_port()
        self.cluster_port = free_port(udp=True)
        self.app_id = str(app_id) if app_id is not None else str(100000 + secrets.randbelow(900000))
        if not self.app_id.isdigit():
            raise ValueError(f"app_id must be numeric, got {self.app_id!r}")
        # The letter prefixes matter: soketi JSON-parses env values, and an
        # all-digit (or "1e5"-like) key would turn into a number.
        self.key = key or f"e2ekey{secrets.token_hex(8)}"
        self.secret = secret or f"e2esecret{secrets.token_hex(16)}"
        self.startup_timeout = startup_timeout
        self.shutdown_grace_ms = shutdown_grace_ms
        self.fix_http_status = fix_http_status
        self.extra_env = dict(extra_env or {})
        self._proc: subprocess.Popen | None = None
        self._workdir: Path | None = None
        self._past_output = ""

    # -- public API ---------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of soketi's HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.port}"

    @property
    def is_running(self) -> bool:
        """True while the soketi process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def output(self) -> str:
        """Everything soketi printed so far (stdout and stderr), across restarts."""
        current = ""
        if self._workdir is not None:
            with contextlib.suppress(OSError):
                current = (self._workdir / "soketi.log").read_text("utf-8", "replace")
        return self._past_output + current

    @property
    def pid(self) -> int | None:
        """The soketi process's id (None before :meth:`start`)."""
        return None if self._proc is None else self._proc.pid

    def pusher_settings(self) -> dict[str, Any]:
        """Django-style ``PUSHER_*`` settings that point at this server."""
        return {
            "PUSHER_APP_ID": self.app_id,
            "PUSHER_KEY": self.key,
            "PUSHER_SECRET": self.secret,
            "PUSHER_CLUSTER": "mt1",
            "PUSHER_HOST": self.host,
            "PUSHER_PORT": self.port,
            "PUSHER_SSL": False,
        }

    def env(self) -> dict[str, str]:
        """The ``SOKETI_*`` environment this server is started with."""
        env = {
            "SOKETI_HOST": self.host,
            "SOKETI_PORT": str(self.port),
            # Default 9601 on 0.0.0.0 would collide between concurrent runs.
            "SOKETI_METRICS_HOST": self.host,
            "SOKETI_METRICS_SERVER_PORT": str(self.metrics_port),
            "SOKETI_DEFAULT_APP_ID": self.app_id,
            "SOKETI_DEFAULT_APP_KEY": self.key,
            "SOKETI_DEFAULT_APP_SECRET": self.secret,
            # soketi always starts UDP cluster discovery, which by default sends
            # hello packets to 255.255.255.255:11002 twice a second. Keep it on
            # loopback, on a port of its own (it is bound to 127.0.0.1 via the
            # config file, the one setting with no env variable).
            "SOKETI_CLUSTER_PORT": str(self.cluster_port),
            "SOKETI_CLUSTER_UNICAST_ADDRESSES": f"{self.host}:{self.cluster_port}",
            "SOKETI_SHUTDOWN_GRACE_PERIOD": str(self.shutdown_grace_ms),
            **PUSHER_LIMITS_ENV,
        }
        env.update(self.extra_env)
        return env

    def start(self) -> Soketi:
        """Start soketi and wait until its HTTP port answers; return ``self``.

        Raises :class:`HarnessError` (with soketi's output) if the port is taken,
        soketi exits, or it does not answer within ``startup_timeout`` seconds.
        """
        if self.is_running:
            raise HarnessError(f"soketi is already running on port {self.port}")
        ensure_node_modules()
        node = _node_executable()
        # uWebSockets binds with SO_REUSEPORT, so a second soketi on a busy port
        # would *share* it instead of failing (and the readiness probe would be
        # answered by the first one); refuse early with a clear error.
        if not self._wait_port_free(timeout=5.0):
            raise HarnessError(f"cannot start soketi: 127.0.0.1:{self.port} is already in use")

        self._workdir = Path(tempfile.mkdtemp(prefix="soketi-e2e-"))
        config_path = self._workdir / "config.json"
        config_path.write_text(json.dumps({"cluster.address": self.host}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOKETI_", "PM2_"))}
        env.update(self.env())
        env.update(
            {
                # pm2 (imported by soketi) otherwise creates ~/.pm2.
                "PM2_HOME": str(self._workdir / "pm2"),
                "FORCE_COLOR": "0",
                "NO_COLOR": "1",
                # Keep the aws-sdk v2 end-of-support notice out of the captured output.
                "AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE": "1",
            }
        )
        preloads = [_PARENT_WATCHDOG] + ([_HTTP_STATUS_FIX] if self.fix_http_status else [])
        command = [node, *(f"--require={p}" for p in preloads), str(SOKETI_BIN), "start", f"--config={config_path}"]
        # The child keeps its own copy of the descriptor.
        with open(self._workdir / "soketi.log", "wb") as log:
            # cwd is the private work dir because soketi loads a `.env` file from
            # its cwd, which could silently change the settings above.
            self._proc = subprocess.Popen(
                command,
                cwd=self._workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _track(self._proc)
        try:
            self._wait_ready()
        except BaseException:
            self.stop(graceful=False)
            raise
        return self

    def stop(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """Stop soketi and wait until its port is free again.

        ``graceful=True`` sends SIGTERM: soketi tells clients "4200 server closed,
        reconnect" and exits. ``graceful=False`` sends SIGKILL, like a crash: clients
        just see the TCP connection drop. Either way the process is reaped, and
        SIGKILL follows if it has not exited within ``timeout`` seconds. Safe to
        call when not running.

        Reconnect timing with the Node build of pusher-js (measured): after a
        dropped connection it retries after 1 s, which succeeds if soketi is back
        by then (``stop(graceful=False)`` + ``start()`` takes ~0.7 s). After a 4200
        it retries at once, while soketi is still going down. And an attempt on a
        closed port is not noticed as refused: it hangs until pusher-js's attempt
        timeout of 15 s (doubling up to 60 s for later attempts). So reconnect
        tests either restart with ``graceful=False`` right away, or allow ~20 s.
        """
        proc, self._proc = self._proc, None
        if proc is not None:
            _terminate(proc, graceful=graceful, timeout=timeout)
            self._wait_port_free(timeout=5.0)
        if self._workdir is not None:
            self._past_output = self.output
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def restart(self, *, graceful: bool = True) -> Soketi:
        """``stop()`` then ``start()`` on the same ports and credentials."""
        self.stop(graceful=graceful)
        return self.start()

    def __enter__(self) -> Soketi:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"<Soketi {self.url} app_id={self.app_id} {state}>"

    # -- internals ----------------------------------------------------------

    def _wait_port_free(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not _tcp_port_is_free(self.port):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error = "no answer yet"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise HarnessError(f"soketi exited with code {code} during startup; output:\n{self.output}")
            try:
                status, body = _http_get(self.host, self.port, "/ready", timeout=1.0)
                if status == 200:
                    return
                last_error = f"GET /ready answered {status}: {body[:200]}"
            except OSError as exc:
                last_error = f"GET /ready failed: {exc}"
            if time.monotonic() >= deadline:
                raise HarnessTimeout(
                    f"soketi did not answer on {self.url} within {self.startup_timeout:g} s "
                    f"({last_error}); output:\n{self.output}"
                )
            time.sleep(0.05)


# --------------------------------------------------------------------------
# pusher-js subscriber


def _members(messages: list[dict[str, Any]], channel: str) -> dict[str, Any] | None:
    members: dict[str, Any] | None = None
    for m in messages:
        if m.get("channel") != channel:
            continue
        if m.get("type") == "subscribed" and "members" in m:
            members = {member["id"]: member["info"] for member in m["members"]}
        elif members is not None and m.get("type") == "member_added":
            members[m["member"]["id"]] = m["member"]["info"]
        elif members is not None and m.get("type") == "member_removed":
            members.pop(m["member"]["id"], None)
    return members


T = TypeVar("T")


class Subscriber:
    """A real pusher-js client (``node subscriber.mjs``) that records what it sees.

    Args:
        server: where to connect; anything with ``host``, ``port`` and ``key``
            attributes, normally a :class:`Soketi`.
        channels: channel names to subscribe to.
        auth_endpoint: channel-authorization URL for private/presence channels.
        headers: extra headers sent with authorization requests (e.g. a cookie, or
            ``Authorization: Token ...``).

    On a presence channel :meth:`members` and :meth:`wait_for_members` follow who is there.

    Everything the client reports is kept in :attr:`messages`, in order; see
    ``subscriber.mjs`` for the message types. Usable as a context manager.
    """

    def __init__(
        self,
        server: Any,
        channels: Iterable[str],
        *,
        auth_endpoint: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.config: dict[str, Any] = {
            "key": server.key,
            "host": server.host,
            "port": int(server.port),
            "forceTLS": False,
            "cluster": "mt1",
            "channels": list(channels),
        }
        if auth_endpoint:
            self.config["authEndpoint"] = auth_endpoint
            self.config["headers"] = dict(headers or {})
        self._proc: subprocess.Popen | None = None
        self._threads: list[threading.Thread] = []
        self._cond = threading.Condition()
        self._messages: list[dict[str, Any]] = []
        self._stderr: collections.deque[str] = collections.deque(maxlen=500)
        self._stdout_closed = False
        self._stopped = False

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Subscriber:
        """Start the Node client (it connects and subscribes on its own)."""
        if self._proc is not None:
            raise HarnessError("a Subscriber can be started only once; create a new one")
        ensure_node_modules()
        env = dict(os.environ)
        # The config travels in the environment: no quoting or argv-length issues.
        env["E2E_SUBSCRIBER_CONFIG"] = json.dumps(self.config)
        self._proc = subprocess.Popen(
            [_node_executable(), str(SUBSCRIBER_SCRIPT)],
            cwd=E2E_DIR,
            env=env,
            # Kept open and never written: closing it tells the client to exit,
            # and it closes by itself if this Python process dies.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        _track(self._proc)
        self._threads = [
            threading.Thread(
                target=self._read_stdout, args=(self._proc.stdout,), name="subscriber-stdout", daemon=True
            ),
            threading.Thread(
                target=self._read_stderr, args=(self._proc.stderr,), name="subscriber-stderr", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the client (stdin EOF, then SIGTERM, then SIGKILL) and reap it."""
        proc = self._proc
        if proc is None or self._stopped:
            return
        self._stopped = True
        try:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _terminate(proc, graceful=True, timeout=2.0)
        finally:
            _terminate(proc, graceful=False, timeout=0)  # No-op unless still running.
            for thread in self._threads:
                thread.join(timeout=5.0)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()

    def __enter__(self) -> Subscriber:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        """The Node client process's id (None before :meth:`start`)."""
        return None if self._proc is None else self._proc.pid

    # -- observations -------------------------------------------------------

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Copy of every message the client reported, in order."""
        with self._cond:
            return list(self._messages)

    def messages_from(self, start: int) -> list[dict[str, Any]]:
        """Copy of the messages reported after the first ``start``, in order: a poller that
        keeps its place reads each message once (``len(messages)`` is the next start)."""
        with self._cond:
            return self._messages[start:]

    @property
    def events(self) -> list[dict[str, Any]]:
        """Received application events (``type == "event"``), in order."""
        return [m for m in self.messages if m.get("type") == "event"]

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Subscription errors, connection errors and unparseable output lines."""
        return [m for m in self.messages if m.get("type") in ("subscription_error", "error")]

    @property
    def socket_id(self) -> str | None:
        """Socket id of the most recent connection, or None if never connected."""
        connected = [m for m in self.messages if m.get("type") == "connected"]
        return connected[-1]["socket_id"] if connected else None

    @property
    def connected_count(self) -> int:
        """How many times the client has (re)connected."""
        return sum(1 for m in self.messages if m.get("type") == "connected")

    @property
    def stderr(self) -> str:
        """The client's recent stderr output (pusher-js logging, Node errors)."""
        with self._cond:
            return "".join(self._stderr)

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has ended, else None."""
        return None if self._proc is None else self._proc.poll()

    def members(self, channel: str) -> dict[str, Any] | None:
        """A presence channel's members as this client sees them now (``{id: info}``), or
        None before it subscribed: the list at subscription, plus joins, minus leaves."""
        return _members(self.messages, channel)

    def wait_for_members(self, channel: str, ids: Iterable[str], timeout: float = 10.0) -> dict[str, Any]:
        """Wait until the presence ``channel``'s members are exactly ``ids``; return ``{id: info}``."""
        wanted = set(ids)

        def find(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
            current = _members(messages, channel)
            return current if current is not None and set(current) == wanted else None

        return self.wait_for(find, timeout, f"members {sorted(wanted)} on {channel!r}")

    # -- waiting ------------------------------------------------------------

    def wait_for(
        self,
        find: Callable[[list[dict[str, Any]]], T | None],
        timeout: float,
        what: str,
    ) -> T:
        """Wait until ``find(messages)`` returns something other than None.

        ``find`` is re-evaluated after every new message. Raises
        :class:`HarnessTimeout` after ``timeout`` seconds, or :class:`HarnessError`
        if the client exits first.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = find(self._messages)
                if result is not None:
                    return result
                if self._stdout_closed:
                    raise HarnessError(f"subscriber exited while waiting for {what}{self._diagnostics()}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise HarnessTimeout(f"timed out after {timeout} s waiting for {what}{self._diagnostics()}")
                self._cond.wait(remaining)

    def wait_connected(self, timeout: float = 10.0, *, count: int = 1) -> str:
        """Wait for the ``count``-th connection (use ``connected_count + 1`` to wait
        for a reconnect) and return its socket id."""

        def find(messages: list[dict[str, Any]]) -> str | None:
            connected = [m for m in messages if m.get("type") == "connected"]
            return connected[count - 1]["socket_id"] if len(connected) >= count else None

        return self.wait_for(find, timeout, f"connection #{count}")

    def wait_subscribed(self, channel: str, timeout: float = 10.0, *, count: int = 1) -> None:
        """Wait until ``channel`` is subscribed (for the ``count``-th time, as
        pusher-js resubscribes after a reconnect).

        Raises :class:`SubscriptionError` if the client reports a subscription
        error for the channel first.
        """

        def find(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
            seen = 0
            for m in messages:
                if m.get("channel") != channel:
                    continue
                if m.get("type") == "subscription_error":
                    return m
                if m.get("type") == "subscribed":
                    seen += 1
                    if seen >= count:
                        return m
            return None

        message = self.wait_for(find, timeout, f"subscription to {channel!r}")
        if message["type"] == "subscription_error":
            raise SubscriptionError(
                f"subscription to {channel!r} failed: status={message.get('status')} error={message.get('error')}",
                channel=channel,
                status=message.get("status"),
                error=message.get("error"),
            )

    def wait_for_events(
        self,
        n: int,
        timeout: float = 10.0,
        *,
        channel: str | None = None,
        event: str | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until at least ``n`` events (optionally only those on ``channel``
        and/or named ``event``) have arrived; return all such events so far."""

        def find(messages: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            matching = [
                m
                for m in messages
                if m.get("type") == "event"
                and (channel is None or m.get("channel") == channel)
                and (event is None or m.get("event") == event)
            ]
            return matching if len(matching) >= n else None

        return self.wait_for(find, timeout, f"{n} event(s) (channel={channel!r}, event={event!r})")

    # -- internals ----------------------------------------------------------

    def _diagnostics(self) -> str:
        # Called with self._cond held.
        tail = self._messages[-10:]
        return f"; last messages: {tail}; stderr:\n{''.join(self._stderr)[-4000:]}"

    def _read_stdout(self, stream: Any) -> None:
        try:
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                try:
                    message = json.loads(line)
                    if not isinstance(message, dict):
                        raise ValueError("not an object")
                except ValueError:
                    message = {"type": "error", "error": f"unparseable output line: {line[:500]}"}
                with self._cond:
                    self._messages.append(message)
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass  # Stream closed under us by stop(); nothing more to read.
        finally:
            with self._cond:
                self._stdout_closed = True
                self._cond.notify_all()

    def _read_stderr(self, stream: Any) -> None:
        try:
            for raw in stream:
                with self._cond:
                    self._stderr.append(raw.decode("utf-8", "replace"))
        except (OSError, ValueError):
            pass
