"""Per-offer locks across processes, so that one offer's events reach Pusher in order.

Every process that writes offers (each gunicorn worker, a ``manage.py shell`` script, a
task worker) sends its own events. Delivery makes "read the committed row, build the
events, send them" one step per offer across all of them by holding the locks of
:func:`offers_locked` around it, so that for any offer the events go out in the order of
its committed states, and a created/updated event read after the offer's delete finds
no row and is not sent (deleted wins).

The locks live where the offers do, on the delivery database:

- **PostgreSQL**: session-level advisory locks (``pg_advisory_lock(bigint)``) on a
  stable 64-bit hash of the model label and the primary key (:func:`lock_key`), taken on
  the calling thread's connection. A session pooler in transaction mode (PgBouncer
  ``pool_mode = transaction``) breaks session locks: turn ``ORDERING`` off there.
- **SQLite** (one host): ``flock`` on one of :data:`STRIPES` lock files in a directory
  next to the database file (``<database>.offer-realtime-locks/``). Each acquisition
  opens its own file descriptor, so threads of one process exclude each other too; a
  thread already holding a stripe takes it again without waiting. An in-memory
  database (one process) and platforms without ``fcntl`` take no lock.
- **Any other database**: no lock; events of one offer sent by two processes can then
  arrive out of order, as before.

Keys of a batch are taken in sorted order (two batches never deadlock) and released in
``finally``. A wait is bounded: when ``timeout`` runs out the caller goes on without the
locks it could not get, with a WARNING, counted as ``lock_timeouts`` in
:mod:`offer_realtime.metrics`. A sender never hangs on another one.

This module is a leaf: it knows nothing of events, settings or delivery modes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connections, transaction

from offer_realtime import metrics

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("offer_realtime")

#: Lock files per SQLite database: offers share a file when their keys agree modulo this,
#: which only makes their deliveries wait for each other, never deadlock.
STRIPES = 64

#: PostgreSQL's SQLSTATE for "lock_not_available": ``lock_timeout`` ran out.
_LOCK_NOT_AVAILABLE = "55P03"

#: Between two ``flock`` tries, from the first value doubling up to the second (seconds).
_POLL_FIRST, _POLL_MAX = 0.001, 0.02


def lock_key(label: str, pk: Any) -> int:
    """A stable signed 64-bit key for the offer ``pk`` of model ``label`` (e.g.
    ``"hotel.offer"``): the same in every process and Python version."""
    digest = hashlib.blake2b(f"{label}:{pk}".encode(), digest_size=8, person=b"offer-rt-order").digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass
class Held:
    """What :func:`offers_locked` got: the primary keys locked and those it went on without."""

    #: "postgresql", "sqlite" or "none" (a database without locks, or no lock needed).
    kind: str = "none"
    locked: list[Any] = field(default_factory=list)
    #: Keys whose lock was not taken: the wait timed out or the database refused.
    missed: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def offers_locked(using: str, label: str, pks: Iterable[Any], *, timeout: float) -> Iterator[Held]:
    """Hold the cross-process locks of offers ``pks`` (model ``label``) on database ``using``.

    Waits at most ``timeout`` seconds in all; then goes on without the locks it could not
    take (a WARNING, counted as ``lock_timeouts``). Never raises for a lock it could not
    take. Released on leaving the block, whatever happens in it.
    """
    pks = list(dict.fromkeys(pks))
    locker = _locker(using) if pks else None
    if locker is None:
        yield Held()
        return
    try:
        held = locker.acquire(label, pks, time.monotonic() + timeout)
    except Exception as exc:  # noqa: BLE001 - a lock is never worth failing a delivery for
        logger.warning("Could not take delivery locks on %r: %s: %s", using, type(exc).__name__, exc)
        locker.release(Held())
        held = Held(missed=pks)
    if held.missed:
        metrics.increment("lock_timeouts")
        logger.warning(
            "Went on without the delivery lock of offer(s) %s after waiting up to %.1f s: another process "
            "held it (a slow Pusher call?) or the database refused it. Their events may reach Pusher out of "
            "order.",
            ", ".join(map(str, held.missed)),
            timeout,
            extra={"offer_ids": held.missed},
        )
    try:
        yield held
    finally:
        locker.release(held)


def _locker(using: str) -> _PostgresLocks | _FileLocks | None:
    connection = connections[using]
    if connection.vendor == "postgresql":
        return _PostgresLocks(using)
    if connection.vendor == "sqlite" and fcntl is not None:
        directory = _sqlite_lock_directory(connection)
        return _FileLocks(directory) if directory else None
    return None


# -- PostgreSQL ----------------------------------------------------------------------------


class _PostgresLocks:
    """Session advisory locks on the calling thread's connection to ``using``."""

    def __init__(self, using: str) -> None:
        self.using = using
        self._session: Any = None
        self._keys: list[int] = []

    def acquire(self, label: str, pks: list[Any], deadline: float) -> Held:
        held = Held("postgresql")
        by_key = {lock_key(label, pk): pk for pk in pks}
        keys = sorted(by_key)
        connection = connections[self.using]
        try:
            connection.ensure_connection()
            self._session = connection.connection
            # One round trip when nobody else holds them (the usual case). Held keys
            # past the first one refused are given back, so what is held is always a
            # sorted prefix and the blocking waits below go in order: no deadlock.
            with connection.cursor() as cursor:
                cursor.execute("SELECT k, pg_try_advisory_lock(k) FROM unnest(%s::bigint[]) AS t(k)", [keys])
                got = {key for key, ok in cursor.fetchall() if ok}
            first_refused = next((i for i, key in enumerate(keys) if key not in got), len(keys))
            self._keys = keys[:first_refused]
            extra = [key for key in keys[first_refused:] if key in got]
            if extra:
                self._unlock(extra)
            for key in keys[first_refused:]:
                if self._wait(connection, key, deadline):
                    self._keys.append(key)
                else:
                    held.missed.append(by_key[key])
        except DatabaseError as exc:
            logger.warning("Could not take delivery locks on %r: %s", self.using, exc)
            held.missed = [by_key[key] for key in keys if key not in self._keys]
        held.locked = [by_key[key] for key in self._keys]
        return held

    def _wait(self, connection: Any, key: int, deadline: float) -> bool:
        """Wait for ``key`` until ``deadline`` (PostgreSQL's ``lock_timeout``); False if it ran out."""
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        with connection.cursor() as cursor:
            if remaining_ms < 1:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
                return bool(cursor.fetchone()[0])
            try:
                # In a transaction (or a savepoint of the caller's), so that the timeout
                # is set for this statement alone and a timed-out wait rolls back cleanly.
                # The session lock outlives the transaction.
                with transaction.atomic(using=self.using):
                    cursor.execute(
                        "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                        [f"{remaining_ms}ms"],
                    )
                    previous = cursor.fetchone()[0]
                    cursor.execute("SELECT pg_advisory_lock(%s)", [key])
                    cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
            except DatabaseError as exc:
                if _sqlstate(exc) == _LOCK_NOT_AVAILABLE:
                    return False
                raise
        return True

    def release(self, held: Held) -> None:
        keys, self._keys = self._keys, []
        if not keys:
            return
        connection = connections[self.using]
        if connection.connection is None or connection.connection is not self._session:
            return  # the session ended (closed, reconnected): PostgreSQL released its locks
        try:
            self._unlock(keys)
        except DatabaseError as exc:
            # Never leave them held by a live session: end the session instead.
            logger.warning("Could not release delivery locks on %r (%s); closing the connection.", self.using, exc)
            if not connection.in_atomic_block:
                connection.close()

    def _unlock(self, keys: list[int]) -> None:
        with connections[self.using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(k) FROM unnest(%s::bigint[]) AS t(k)", [keys])


def _sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


# -- SQLite: flock on striped lock files -----------------------------------------------------


def _sqlite_lock_directory(connection: Any) -> str | None:
    """``<database file>.offer-realtime-locks``; None for an in-memory database."""
    if connection.is_in_memory_db():
        return None
    name = os.fspath(connection.settings_dict["NAME"])
    if name.startswith("file:"):  # a URI filename
        name = name[len("file:") :].split("?", 1)[0]
    return f"{os.path.realpath(name)}.offer-realtime-locks"


#: Stripes each thread holds, per lock directory (a thread re-taking one must not wait on itself).
_thread_stripes = threading.local()


class _FileLocks:
    """Exclusive ``flock`` on ``<directory>/<stripe>.lock`` files, one descriptor per stripe."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._fds: list[tuple[int, int]] = []  # (stripe, fd) taken by this acquisition
        self._reentered: list[int] = []

    def _mine(self) -> Counter[int]:
        per_directory = getattr(_thread_stripes, "held", None)
        if per_directory is None:
            per_directory = _thread_stripes.held = {}
        held: Counter[int] = per_directory.setdefault(self.directory, Counter())
        return held

    def acquire(self, label: str, pks: list[Any], deadline: float) -> Held:
        held = Held("sqlite")
        by_stripe: dict[int, list[Any]] = {}
        for pk in pks:
            by_stripe.setdefault(lock_key(label, pk) % STRIPES, []).append(pk)
        mine = self._mine()
        try:
            os.makedirs(self.directory, exist_ok=True)
        except OSError as exc:
            logger.warning("Could not create the delivery lock directory %s: %s", self.directory, exc)
            held.missed = list(pks)
            return held
        for stripe in sorted(by_stripe):
            if mine[stripe]:
                mine[stripe] += 1
                self._reentered.append(stripe)
                held.locked.extend(by_stripe[stripe])
                continue
            fd = self._take(stripe, deadline)
            if fd is None:
                held.missed.extend(by_stripe[stripe])
                continue
            mine[stripe] += 1
            self._fds.append((stripe, fd))
            held.locked.extend(by_stripe[stripe])
        return held

    def _take(self, stripe: int, deadline: float) -> int | None:
        try:
            fd = os.open(os.path.join(self.directory, f"{stripe:02d}.lock"), os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            logger.warning("Could not open a delivery lock file in %s: %s", self.directory, exc)
            return None
        pause = _POLL_FIRST
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                pass
            except OSError as exc:
                logger.warning("Could not lock %s/%02d.lock: %s", self.directory, stripe, exc)
                os.close(fd)
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                os.close(fd)
                return None
            time.sleep(min(pause, left))
            pause = min(pause * 2, _POLL_MAX)

    def release(self, held: Held) -> None:
        mine = self._mine()
        for stripe in self._reentered:
            mine[stripe] -= 1
        for stripe, fd in reversed(self._fds):
            mine[stripe] -= 1
            os.close(fd)  # closing the only descriptor of the open file releases its flock
        self._fds, self._reentered = [], []
