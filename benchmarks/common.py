"""Shared parts of the benchmarks: processes, database, HTTP client, statistics, tables.

Everything runs on loopback:

- soketi (Pusher's limits) and pusher-js subscribers come from the end-to-end test
  harness, ``tests/e2e/harness.py`` (:class:`Soketi`, :class:`Subscriber`);
- :class:`DjangoServer` runs the example project under gunicorn with
  ``benchmarks.settings`` (one process group per server);
- :class:`TaskWorker` runs ``manage.py db_worker`` (django-tasks-db) for ``task`` mode;
- :class:`DelayProxy` runs ``delay_proxy.py`` between the app and soketi.

Every child process leads its own process group; :func:`stop_all` (also registered
with ``atexit``) stops them with SIGTERM, then SIGKILL, and reaps them. Processes that
read stdin (soketi's watchdog, the subscriber, the proxy) also exit when this
process dies, because their stdin pipe closes.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import math
import os
import platform
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_project"
BENCH_DIR = REPO / "benchmarks"
for _path in (str(EXAMPLE), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from tests.e2e.harness import (  # noqa: E402 - needs the repository on sys.path
    HarnessError,
    Soketi,
    Subscriber,
    ensure_node_modules,
    free_port,
)

__all__ = [
    "DelayProxy",
    "DjangoServer",
    "HarnessError",
    "Soketi",
    "Subscriber",
    "TaskWorker",
    "call",
    "django_setup",
    "ensure_node_modules",
    "free_port",
    "machine_description",
    "pin",
    "prepare_database",
    "print_table",
    "staff_hotel",
    "summarize",
]

LOOPBACK = "127.0.0.1"
#: The PostgreSQL server the benchmarks use; the database is dropped and created again.
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/offer_bench")
LOG_DIR = Path(tempfile.mkdtemp(prefix="offer-bench-logs-"))


# -- processes ---------------------------------------------------------------------

_live: list[ManagedProcess] = []


class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, command: Sequence[str], *, env: Mapping[str, str], cwd: Path = REPO) -> None:
        self.name = name
        self.log_path = LOG_DIR / f"{name}-{secrets.token_hex(3)}.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _live.append(self)

    @property
    def output(self) -> str:
        """What the process printed so far."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text("utf-8", "replace")
        return ""

    def check_alive(self) -> None:
        """Raise HarnessError with the process's output if it has exited."""
        code = self.proc.poll()
        if code is not None:
            raise HarnessError(f"{self.name} exited with code {code}; output:\n{self.output[-4000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the group, SIGKILL after ``timeout`` s; always reaped."""
        if self in _live:
            _live.remove(self)
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@atexit.register
def stop_all() -> None:
    """Stop every process started through this module that is still running."""
    for process in list(reversed(_live)):
        process.stop(timeout=5.0)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # SystemExit unwinds the context managers and runs the atexit hooks, so a
    # terminated benchmark still stops its servers and workers.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _wait_tcp(port: int, process: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        process.check_alive()
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{process.name} did not listen on {port} within {timeout} s:\n{process.output[-4000:]}")
        time.sleep(0.05)


def django_env(*, tree: Path | None = None, **overrides: Any) -> dict[str, str]:
    """The environment of a process running the example project with benchmarks.settings.

    ``tree``: another checkout of the repository to import ``offer_realtime``, the
    example project and ``benchmarks.settings`` from (default: this one).
    """
    root = REPO if tree is None else Path(tree).resolve()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSHER_", "OFFER_REALTIME_", "BENCH_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.settings",
        PYTHONPATH=os.pathsep.join([str(root), str(root / "example_project")]),
        PYTHONUNBUFFERED="1",
        DATABASE_URL=DATABASE_URL,
    )
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def pusher_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """``Soketi.pusher_settings()`` as environment variables (the example reads them)."""
    return {key: "false" if value is False else str(value) for key, value in settings.items()}


class DjangoServer(ManagedProcess):
    """The example project under gunicorn (sync workers) on a free loopback port.

    ``env`` goes on top of :func:`django_env`; e.g. ``OFFER_REALTIME_DELIVERY="inline"``,
    ``BENCH_REALTIME_ENABLED="0"`` and the ``PUSHER_*`` variables. ``tree``: run the
    code of another checkout of the repository (a before/after comparison in one run;
    the database and its migrations are this tree's).
    """

    def __init__(
        self, name: str, *, workers: int = 1, env: Mapping[str, Any] | None = None, tree: Path | None = None
    ) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "example_project.wsgi:application",
            "--bind",
            f"{LOOPBACK}:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ]
        root = REPO if tree is None else Path(tree).resolve()
        super().__init__(name, command, env=django_env(tree=tree, **(env or {})), cwd=root / "example_project")
        try:
            _wait_tcp(self.port, self, timeout=30.0)
            # The port answers before every worker has imported Django; one request
            # per worker warms them (a 401 is fine).
            for _ in range(workers * 2):
                call(self.port, "GET", "/api/staff/hotel/none/offers/")
        except BaseException:
            self.stop()
            raise


class TaskWorker(ManagedProcess):
    """``manage.py db_worker`` (django-tasks-db) for the ``task`` delivery mode."""

    def __init__(
        self, name: str, *, queue: str = "default", interval: float = 1.0, env: Mapping[str, Any] | None = None
    ) -> None:
        command = [
            sys.executable,
            str(EXAMPLE / "manage.py"),
            "db_worker",
            "--queue-name",
            queue,
            "--interval",
            str(interval),
            "--no-startup-delay",
            "--no-reload",
        ]
        super().__init__(name, command, env=django_env(**(env or {})), cwd=EXAMPLE)
        time.sleep(0.5)
        self.check_alive()


class DelayProxy(ManagedProcess):
    """``delay_proxy.py`` in front of ``target_port``: requests arrive ``delay_ms`` late."""

    def __init__(self, target_port: int, delay_ms: float = 100.0) -> None:
        self.port = free_port()
        self.delay_ms = delay_ms
        command = [
            sys.executable,
            str(BENCH_DIR / "delay_proxy.py"),
            "--watch-stdin",
            "--listen-port",
            str(self.port),
            "--target-port",
            str(target_port),
            "--delay-ms",
            str(delay_ms),
        ]
        super().__init__("delay-proxy", command, env=os.environ)
        _wait_tcp(self.port, self, timeout=10.0)

    def pusher_settings(self, soketi: Soketi) -> dict[str, Any]:
        """``soketi.pusher_settings()`` pointing at the proxy instead."""
        return {**soketi.pusher_settings(), "PUSHER_PORT": self.port}


# -- database and Django in this process -------------------------------------------


def prepare_database() -> str:
    """Drop and create the benchmark database, migrate it; return its URL."""
    import psycopg

    base, _, name = DATABASE_URL.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "migrate", "--noinput", "-v", "0"],
        cwd=EXAMPLE,
        env=django_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode:
        raise HarnessError(f"migrate failed:\n{result.stdout}\n{result.stderr}")
    return DATABASE_URL


def django_setup(**env: Any) -> None:
    """Set up Django in this process with benchmarks.settings (for data setup: broadcasting
    off unless ``env`` says otherwise)."""
    import django

    os.environ.update(django_env(**{"BENCH_REALTIME_ENABLED": "0", **env}))
    django.setup()


def staff_hotel(slug: str) -> str:
    """Create hotel ``slug`` with a staff user; return the user's API token."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from hotel.models import Hotel, StaffProfile

    hotel, _ = Hotel.objects.get_or_create(slug=slug, defaults={"name": f"Hotel {slug}"})
    user, _ = get_user_model().objects.get_or_create(username=f"{slug}-staff")
    StaffProfile.objects.update_or_create(user=user, defaults={"hotel": hotel})
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def bulk_offers(slug: str, count: int, prefix: str = "Offer") -> list[int]:
    """``count`` offers in hotel ``slug`` created with ``bulk_create`` (no signals, no events)."""
    import datetime

    from hotel.models import Hotel, Offer

    hotel = Hotel.objects.get(slug=slug)
    today = datetime.date.today()
    offers = Offer.objects.bulk_create(
        Offer(
            hotel=hotel,
            title=f"{prefix} {i}",
            short_description="Two nights with breakfast and a spa treatment",
            details_text="Check-in from 3 pm. Late check-out on request. " * 4,
            tag="Spa",
            valid_from=today,
            valid_to=today + datetime.timedelta(days=90),
            sort_order=i,
        )
        for i in range(count)
    )
    return [offer.pk for offer in offers]


def close_db_connections() -> None:
    """Close this process's database connections (so they hold nothing during a run)."""
    from django.db import connections

    connections.close_all()


# -- HTTP client -------------------------------------------------------------------


def call(
    port: int, method: str, path: str, token: str | None = None, body: Any = None, timeout: float = 60.0
) -> tuple[int, Any, float]:
    """One request on a new connection (gunicorn's sync workers close it anyway).

    Returns ``(status, parsed JSON or None, seconds)``; the time covers connect, send
    and reading the whole answer.
    """
    headers = {"Accept": "application/json", "Host": f"{LOOPBACK}:{port}"}
    if token:
        headers["Authorization"] = f"Token {token}"
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    start = time.perf_counter()
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - start
    finally:
        conn.close()
    data = None
    if raw and response.headers.get("Content-Type", "").startswith("application/json"):
        data = json.loads(raw)
    return response.status, data, elapsed


def offers_path(slug: str, offer_id: int | None = None) -> str:
    """The staff API URL of a hotel's offers (or of one offer)."""
    base = f"/api/staff/hotel/{slug}/offers/"
    return base if offer_id is None else f"{base}{offer_id}/"


def new_offer_body(title: str) -> dict[str, Any]:
    """A realistic create body."""
    return {
        "title": title,
        "short_description": "Two nights with breakfast and a spa treatment",
        "details_text": "Check-in from 3 pm. Late check-out on request.",
        "tag": "Spa",
        "is_active": True,
        "sort_order": 1,
    }


# -- statistics and output ---------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile with linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * pct / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """n, median, p99, max and mean of ``values``."""
    return {
        "n": len(values),
        "median": statistics.median(values) if values else math.nan,
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "mean": statistics.fmean(values) if values else math.nan,
    }


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Print a Markdown table (pastes straight into docs/benchmarks.md)."""
    rows = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.1f}"
    return str(value)


def machine_description() -> str:
    """One line about where the numbers come from."""
    import django

    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, Python {platform.python_version()}, "
        f"Django {django.get_version()}, soketi 1.6.1, PostgreSQL on loopback; load average before the run: {load}"
    )


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process descended from it (Linux ``/proc``)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def pin(pids: Iterable[int], cpus: set[int]) -> None:
    """Keep every thread of the processes ``pids`` (and their descendants) on ``cpus``.

    Linux sets a CPU affinity per thread, and a thread inherits it from the one that
    creates it; so each existing thread is set, and threads made later follow.
    """
    for root in pids:
        for pid in process_tree(root):
            for task in Path(f"/proc/{pid}/task").glob("[0-9]*"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(task.name), cpus)


def shuffled(items: Sequence[Any], rng: random.Random) -> list[Any]:
    """A shuffled copy (interleaving order of the compared variants)."""
    copy = list(items)
    rng.shuffle(copy)
    return copy


def changed_at_ms(event: Mapping[str, Any]) -> float:
    """The event's ``changed_at`` (set right after the row is written) in ms since the epoch."""
    import datetime

    return datetime.datetime.fromisoformat(event["data"]["changed_at"]).timestamp() * 1000


def event_offer_id(event: Mapping[str, Any]) -> Any:
    """The offer id an offer event is about."""
    data = event["data"]
    return data["offer"]["id"] if "offer" in data else data.get("offer_id")


def percent_over(value: float, base: float) -> float:
    """How much ``value`` is above ``base``, in percent (negative: below)."""
    return (value / base - 1) * 100


def overhead_verdict(overhead: float, spread: float, target: float, baseline: str = "off") -> str:
    """Both verdicts on a median overhead (percent): the target, and the run's own noise.

    ``spread`` is the off-vs-off spread of the median (two identical baseline servers in
    the same interleaved run, in percent, as an absolute value): an overhead at most that
    large cannot be told from noise in this run. ``baseline`` names the baseline servers.
    """
    target_met = overhead <= target
    within = overhead <= spread
    return (
        f"{overhead:+.1f} % (target <= +{target:g} %: {'met' if target_met else 'MISSED'}; "
        f"{baseline}-vs-{baseline} spread {spread:.1f} %: {'within noise' if within else 'above noise'})"
    )
