"""The ``background`` delivery mode: an in-process sender thread with a bounded queue.

Writers hand committed changes to :meth:`BackgroundSender.submit_changes` and return at
once: the request does no query and no serialization for its events. One daemon thread
reads the committed offers (one query per up to ``READ_BATCH_SIZE`` queued changes, on
the thread's own database connection), builds the events and sends them in order, up
to ten per ``trigger_batch`` call and up to ``CONCURRENT_CALLS`` calls at once (never
two holding one offer's events), reusing the backend's HTTP connections; it retries
transient failures with capped exponential backoff (holding back later events, so
order is kept) and gives up on permanent ones. Each attempt holds the offers' cross-process locks from the read to the
end of the send, and a retry reads the rows again (:mod:`offer_realtime.ordering`), so
one offer's events sent by several processes reach Pusher in the order of its states.
At interpreter exit (a recycled or stopped worker) it keeps that backoff for up to
``FLUSH_TIMEOUT`` seconds to send what it holds, then logs exactly what it sent, gave up
and left unsent. A write waits at most ``QUEUE_PUT_TIMEOUT`` in all on a full queue.

The events live in memory: a process that dies loses what it held. Choose the
``task`` mode when events must survive that.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from django.core.signals import setting_changed
from django.db import close_old_connections, connections
from django.utils import timezone

from offer_realtime import building, metrics, sending
from offer_realtime.changes import Change
from offer_realtime.events import MAX_BATCH_SIZE, Event, batches
from offer_realtime.retry import run_attempts
from offer_realtime.settings import WATCHED_SETTINGS, get_settings

logger = logging.getLogger("offer_realtime")

#: What the queue holds: a committed change and its database alias.
Item = tuple[str, Change]

#: At most this many queued changes are read (one query, one set of ordering locks) and
#: built at a time; their events still go ten per call. Reading one change per event call
#: spent more time in the query and the locks than in the send.
READ_BATCH_SIZE = 100

#: Put on the queue by shutdown(): the thread closes its database connections and ends.
_STOP = object()


class BackgroundSender:
    """Owns the queue and the thread; one per process (see :func:`get_sender`)."""

    def __init__(
        self,
        *,
        queue_size: int,
        put_timeout: float,
        attempts: int,
        base_delay: float,
        max_delay: float,
    ) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.put_timeout = put_timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        # Guards the state below; notified when the thread is idle again and at shutdown.
        self._cv = threading.Condition()
        self._in_flight = 0  # changes taken from the queue, not yet sent or given up
        self._held_events = 0  # built events of those not yet sent or given up ...
        self._held_changes = 0  # ... and changes whose events are not built yet
        self._sending = 0  # events in the HTTP calls under way right now
        self._last = False  # the exit deadline allows the current attempt and no other
        self._stopping = False  # shutdown() called: end once the queue is empty ...
        self._deadline: float | None = None  # ... or at this time.monotonic(), whatever is left
        #: What the thread did: events "sent" and "given_up" (with changes whose offers could
        #: not be read), and, at the exit deadline, "unsent" events and "unsent_changes".
        self.tally: collections.Counter[str] = collections.Counter()
        self._thread = threading.Thread(target=self._run, name="offer-realtime-sender", daemon=True)
        self._thread.start()

    # -- the writing side -----------------------------------------------------------------

    def submit_changes(self, changes: Sequence[Change], using: str) -> None:
        """Queue committed ``changes`` (the sender thread builds their events); on a full
        queue wait at most ``put_timeout`` s in all, then drop what does not fit (logged, counted)."""
        self._put_all(
            [
                ((using, change), f"the {change.action.value} event(s) for offer {change.offer_id}", change.offer_id)
                for change in changes
            ]
        )

    def _put_all(self, entries: list[tuple[Item, str, Any]]) -> None:
        # One deadline for the whole submit, i.e. for one transaction: deleting 100 offers
        # must not wait put_timeout once per offer.
        deadline: float | None = None
        for item, description, offer_id in entries:
            try:
                self.queue.put_nowait(item)
                continue
            except queue.Full:
                if deadline is None:
                    deadline = time.monotonic() + self.put_timeout
            try:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise queue.Full
                self.queue.put(item, timeout=remaining)
            except queue.Full:
                metrics.increment("dropped_queue_full")
                logger.error(
                    "Sender queue full (%d offer changes): dropped %s.",
                    self.queue.maxsize,
                    description,
                    extra={"offer_id": offer_id},
                )

    # -- the sender thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while (items := self._next_batch()) is not None:
                self._process(items)
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)

    def _next_batch(self) -> list[Item] | None:
        """Up to ``READ_BATCH_SIZE`` queued changes, waiting for the first; None when the
        thread should end."""
        while True:
            if self._past_deadline():
                self._count_unsent(self._drain())
                return None
            with self._cv:
                if self._stopping and self.queue.empty():
                    return None
            try:
                first = self.queue.get(timeout=self._time_left())
            except queue.Empty:
                continue
            if first is not _STOP:
                break
        batch = [first]
        while len(batch) < READ_BATCH_SIZE:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                batch.append(item)
        with self._cv:
            self._in_flight = self._held_changes = len(batch)
            self._held_events = 0
        return batch

    def _process(self, items: list[Item]) -> None:
        try:
            units = self._units(items)
            for index, (alias, changes) in enumerate(units):
                if self._past_deadline():
                    self._count_unsent(sum(len(rest) for _, rest in units[index:]))
                    return
                if not self._deliver(alias, changes):  # the exit deadline came: what follows is left too
                    self._count_unsent(sum(len(rest) for _, rest in units[index + 1 :]))
                    return
        except Exception:  # the sender thread must survive anything
            logger.exception("Offer event sender failed on a batch of %d.", len(items))
        finally:
            with self._cv:
                self._in_flight = self._held_events = self._held_changes = 0
                self._cv.notify_all()

    @staticmethod
    def _units(items: list[Item]) -> list[tuple[str, list[Change]]]:
        """The changes of ``items`` in order, grouped into runs of one database alias."""
        units: list[tuple[str, list[Change]]] = []
        for alias, change in items:
            if units and units[-1][0] == alias:
                units[-1][1].append(change)
            else:
                units.append((alias, [change]))
        return units

    def _deliver(self, using: str, changes: list[Change]) -> bool:
        """Build and send the events of committed ``changes`` (of database ``using``).

        Each attempt holds the offers' cross-process locks (``building.offers_in_order``)
        while it reads the committed rows (one query), builds the events and sends them,
        so another process's events of the same offers go before or after, never in
        between. Between attempts the locks are released; a retry reads the rows again
        and sends only the events still to send, so an offer deleted meanwhile gets no
        created/updated event after its offer-deleted. A database error while reading is
        retried like a send, then the changes are given up. False if the exit deadline
        came first (what was left is counted as unsent).
        """
        only: set[str] | None = None  # event ids still to send (None: every event, the first time)
        held: int | None = None  # events of these changes still held, once built
        finished = True

        def attempt(n: int) -> bool:
            nonlocal changes, only, held, finished
            if self._past_deadline():
                self._leave("unsent", changes, held)
                finished = False
                return True
            # Like a request: drop a connection the database closed or that aged out
            # (before the locks: a PostgreSQL lock belongs to the connection).
            close_old_connections()
            retry: list[Event] = []
            # No time zone is ever active on this thread, so DRF uses the default one;
            # activated, DRF finds it without the failed lookup (an exception inside
            # asgiref's Local) it costs otherwise, once per datetime field of every offer.
            with (
                building.offers_in_order(changes, using, max_wait=self._time_left()),
                timezone.override(timezone.get_default_timezone()),
            ):
                try:
                    built: list[Event] | None = building.only_events(building.build_events(changes, using), only)
                except Exception as exc:  # noqa: BLE001 - the sender thread must survive anything
                    built = None
                    final = n == self.attempts
                    logger.log(
                        logging.ERROR if final else logging.WARNING,
                        "Could not read %d changed offer(s) to build their events (attempt %d; %s): %s: %s",
                        len(changes),
                        n,
                        "given up" if final else "will retry",
                        type(exc).__name__,
                        exc,
                    )
                if built is not None:
                    with self._cv:
                        if held is None:
                            self._held_changes -= len(changes)
                            self._held_events += len(built)
                        elif len(built) > held:
                            self._held_events += len(built) - held
                    if held is not None and len(built) < held:
                        self._settle("superseded", held - len(built))  # offers deleted since
                    retry = self._send_chunks(built, n)
                    held = len(retry)
            if built is None:
                if n == self.attempts:
                    metrics.increment("given_up", len(changes) if held is None else held)
                    self._leave("given_up", changes, held)
                    return True
            elif not retry:
                return True
            else:
                changes, only = building.still_to_send(changes, retry)
            if self._last:
                self._leave("unsent", changes, held)
                self._end_now()
                finished = False
                return True
            return False

        self._last = False
        run_attempts(attempt, base_delay=self.base_delay, max_delay=self.max_delay, wait=self._wait)
        return finished

    def _send_chunks(self, events: list[Event], attempt: int) -> list[Event]:
        """One attempt at ``events``, ten per call, in order (up to ``CONCURRENT_CALLS``
        calls at once, never two with one offer's events); the events to retry (a chunk
        that failed transiently, and every chunk not started after it, held back to keep
        the order)."""
        # A change's events for every audience go in one call (events.batches).
        result = sending.send_batches(
            list(batches(events, MAX_BATCH_SIZE)),
            attempt=attempt,
            may_retry=attempt < self.attempts,
            on_start=self._started,
            on_done=self._done,
        )
        return result.retry

    def _started(self, batch: Sequence[Event]) -> None:
        with self._cv:
            self._sending += len(batch)

    def _done(self, batch: Sequence[Event], result: sending.SendResult) -> None:
        """A call's outcome, tallied: what is under way is what the exit report calls running."""
        with self._cv:
            self._sending -= len(batch)
        self._settle("sent", len(result.sent))
        self._settle("given_up", len(result.given_up))

    def _leave(self, what: str, changes: list[Change], held: int | None) -> None:
        """Count what is left of a delivery as ``what``: its changes, or once built, its events."""
        if held is None:
            self._settle("unsent_changes" if what == "unsent" else what, len(changes), changes=True)
        else:
            self._settle(what, held)

    def _wait(self, attempt: int, delay: float) -> bool:
        """Between attempts (:func:`~offer_realtime.retry.run_attempts`): the backoff; once
        exiting, a cut backoff makes the next attempt the last (``_last``)."""
        self._last = not self._pause(delay)
        return True

    def _pause(self, delay: float) -> bool:
        """Wait ``delay`` seconds before the next attempt; True if it waited the whole backoff.

        Once exiting, the backoff is kept (Pusher back after a second gets everything), but
        a wait that would end past the deadline is cut to half the time left, and False
        says the attempt after it is the last one.
        """
        until = time.monotonic() + delay
        whole = True
        with self._cv:
            while True:
                now = time.monotonic()
                if self._deadline is not None and until >= self._deadline:
                    until = now + max(0.0, self._deadline - now) / 2
                    whole = False
                if now >= until:
                    return whole
                self._cv.wait(until - now)  # shutdown() notifies: the wait is re-planned

    def _end_now(self) -> None:
        """The last attempt before the exit deadline failed: Pusher (or the database) is
        still away, so nothing more is tried; what is held is left unsent at once."""
        with self._cv:
            self._deadline = time.monotonic()

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _time_left(self) -> float | None:
        deadline = self._deadline
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    def _drain(self) -> int:
        """Take every change left in the queue; how many there were."""
        taken = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                return taken
            if item is not _STOP:
                taken += 1

    def _settle(self, what: str, amount: int, *, changes: bool = False) -> None:
        """Count ``amount`` held events (or ``changes``) as ``what`` became of them."""
        if amount <= 0:
            return
        with self._cv:
            self.tally[what] += amount
            if changes or what == "unsent_changes":
                self._held_changes -= amount
            else:
                self._held_events -= amount

    def _count_unsent(self, changes: int) -> None:
        """Count ``changes`` (taken from the queue, never built) as left at the deadline."""
        with self._cv:
            self.tally["unsent_changes"] += changes

    # -- waiting and stopping -------------------------------------------------------------

    def pending(self) -> int:
        """Changes queued or being sent."""
        with self._cv:
            return self.queue.qsize() + self._in_flight

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued was sent or given up; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self.queue.qsize() or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cv.wait(min(remaining, 0.05))
        return True

    def shutdown(self, timeout: float) -> None:
        """Send what is held, retrying with backoff for at most ``timeout`` seconds; then
        log exactly what was sent, given up and left unsent, and end the thread.

        Returns by the deadline: HTTP calls still running then are reported with their
        events (their fate unknown), and the daemon thread ends with the process.
        """
        started = time.monotonic()
        with self._cv:
            if self._stopping:
                return  # already stopped (e.g. at exit, then again when settings are reset)
            before = collections.Counter(self.tally)
            held = self.queue.qsize() + self._in_flight
            self._stopping = True
            self._deadline = started + timeout
            self._cv.notify_all()  # a backoff under way is re-planned to fit the deadline
        if self.queue.empty():
            # The thread may be blocked waiting for work: wake it. (A full queue means it
            # is busy, and it sees _stopping before it waits again.)
            with contextlib.suppress(queue.Full):
                self.queue.put_nowait(_STOP)
        self._thread.join(timeout)
        running = 0
        alive = self._thread.is_alive()
        if alive:
            # Stuck in an HTTP call (or a query) at the deadline; it checks the deadline
            # before doing anything more. What is queued is left now.
            self._count_unsent(self._drain())
        with self._cv:
            if alive:
                # Besides the events of that call, what the thread holds is left too.
                running = self._sending
                self.tally["unsent"] += self._held_events - running
                self.tally["unsent_changes"] += self._held_changes
            done = self.tally - before
        self._report(held, done, running, time.monotonic() - started, timeout)

    def _report(self, held: int, done: collections.Counter[str], running: int, elapsed: float, timeout: float) -> None:
        unsent, unsent_changes = done["unsent"], done["unsent_changes"]
        if unsent or unsent_changes:
            metrics.increment("unsent_at_exit", unsent + unsent_changes)
        failed = done["given_up"] or unsent or unsent_changes or running
        if not held and not failed:
            return
        message = (
            f"Sender stopped after {elapsed:.1f} s (bound {timeout:.1f} s): {done['sent']} event(s) sent, "
            f"{done['given_up']} given up, {unsent} left unsent"
        )
        if unsent_changes:
            message += f" with the events of {unsent_changes} more offer change(s), never built"
        if running:
            message += f"; {running} event(s) in HTTP call(s) still running, outcome unknown"
        logger.log(logging.ERROR if failed else logging.INFO, "%s.", message)


_lock = threading.Lock()
_sender: BackgroundSender | None = None
_sender_pid: int | None = None


def get_sender() -> BackgroundSender:
    """This process's sender, started on first use.

    Started lazily and per process id: a gunicorn worker forked from a preloaded
    master does not inherit the master's thread, so it starts its own.
    """
    global _sender, _sender_pid
    if _sender is None or _sender_pid != os.getpid():
        with _lock:
            if _sender is None or _sender_pid != os.getpid():
                conf = get_settings()
                _sender = BackgroundSender(
                    queue_size=conf.queue_size,
                    put_timeout=conf.queue_put_timeout,
                    attempts=conf.retry_attempts,
                    base_delay=conf.retry_base_delay,
                    max_delay=conf.retry_max_delay,
                )
                _sender_pid = os.getpid()
    return _sender


def reset_sender() -> None:
    """Flush and forget the sender (settings changed); the next submit starts a new one."""
    global _sender
    with _lock:
        old, _sender = _sender, None
    if old is not None and _sender_pid == os.getpid():
        old.shutdown(timeout=1.0)


def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # The sender's queue size and retry policy come from the settings.
    if setting in WATCHED_SETTINGS:
        reset_sender()


setting_changed.connect(_reset_on_setting_changed, dispatch_uid="offer_realtime.sender.reset")


@atexit.register
def _flush_at_exit() -> None:
    if _sender is not None and _sender_pid == os.getpid():
        _sender.shutdown(get_settings().flush_timeout)
