"""The ``background`` delivery mode: an in-process sender thread with a bounded queue.

Writers hand committed changes to :meth:`BackgroundSender.submit_changes` and return at
once: the request does no query and no serialization for its events. One daemon thread
reads the committed offers (one query per batch, on the thread's own database
connection), builds the events and sends them in order, up to ten per ``trigger_batch``
call, reusing the backend's HTTP connection; it retries transient failures with capped
exponential backoff (holding back later events, so order is kept) and gives up on
permanent ones. At interpreter exit it gets ``FLUSH_TIMEOUT`` seconds to send what it holds.

The events live in memory: a process that dies loses what it held. Choose the
``task`` mode when events must survive that.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any, Union

from django.db import close_old_connections, connections

from offer_realtime import metrics
from offer_realtime.changes import Change
from offer_realtime.events import MAX_BATCH_SIZE, Event
from offer_realtime.retry import backoff

logger = logging.getLogger("offer_realtime")

#: What the queue holds: a built event, or a committed change and its database alias.
Item = Union[Event, tuple[str, Change]]

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
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=queue_size)
        self.put_timeout = put_timeout
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._stopping = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = 0
        self._thread = threading.Thread(target=self._run, name="offer-realtime-sender", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> None:
        """Queue built ``events``; if the queue stays full for ``put_timeout`` s, drop (logged, counted)."""
        for event in events:
            self._put(event, f"{event.name} on {event.channel} for offer {event.offer_id}", event.offer_id)

    def submit_changes(self, changes: Sequence[Change], using: str) -> None:
        """Queue committed ``changes``; the sender thread builds their events."""
        for change in changes:
            self._put((using, change), f"the {change.action.value} event(s) for offer {change.offer_id}", change.offer_id)

    def _put(self, item: Item, description: str, offer_id: Any) -> None:
        try:
            self.queue.put(item, timeout=self.put_timeout)
        except queue.Full:
            metrics.increment("dropped_queue_full")
            logger.error(
                "Sender queue full (%d events): dropped %s.", self.queue.maxsize, description,
                extra={"offer_id": offer_id},
            )

    def _next_batch(self) -> list[Item] | None:
        first = self.queue.get()
        if first is _STOP:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH_SIZE:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                self.queue.put(item)  # after this batch
                break
            batch.append(item)
        with self._idle:
            self._in_flight = len(batch)
        return batch

    def _events(self, items: list[Item]) -> list[Event]:
        """Built events for ``items``, in order; changes are read from the committed rows."""
        events: list[Event] = []
        run: list[Change] = []
        run_alias = None

        def build_run() -> None:
            if run:
                events.extend(self._build(list(run), run_alias))
                run.clear()

        for item in items:
            if isinstance(item, Event):
                build_run()
                events.append(item)
                continue
            alias, change = item
            if alias != run_alias:
                build_run()
                run_alias = alias
            run.append(change)
        build_run()
        return events

    def _build(self, changes: list[Change], using: str) -> list[Event]:
        """Events for ``changes`` from the committed rows; a database error is retried like
        a send (a failover, a locked SQLite database), then the changes are given up."""
        from offer_realtime.delivery import build_events

        for attempt in range(1, self.attempts + 1):
            # Like a request: drop a connection the database closed or that aged out.
            close_old_connections()
            try:
                return build_events(changes, using)
            except Exception as exc:  # noqa: BLE001 - the sender thread must survive anything
                final = attempt == self.attempts
                logger.log(
                    logging.ERROR if final else logging.WARNING,
                    "Could not read %d changed offer(s) to build their events (attempt %d; %s): %s: %s",
                    len(changes), attempt, "given up" if final else "will retry", type(exc).__name__, exc,
                )
                if final:
                    metrics.increment("given_up", len(changes))
                    return []
                self._stopping.wait(backoff(attempt, self.base_delay, self.max_delay))
        return []

    def _send(self, batch: list[Event]) -> None:
        from offer_realtime.delivery import Outcome, send_batch

        for attempt in range(1, self.attempts + 1):
            outcome = send_batch(batch, attempt=attempt, may_retry=attempt < self.attempts)
            if outcome is not Outcome.RETRY:
                return
            # Wait, unless the process is exiting: then one last try at once.
            self._stopping.wait(backoff(attempt, self.base_delay, self.max_delay))

    def _run(self) -> None:
        try:
            while (items := self._next_batch()) is not None:
                self._process(items)
        finally:
            connections.close_all()  # this thread's connections only (they are per thread)

    def _process(self, items: list[Item]) -> None:
        try:
            events = self._events(items)
            for start in range(0, len(events), MAX_BATCH_SIZE):
                self._send(events[start : start + MAX_BATCH_SIZE])
        except Exception:  # noqa: BLE001 - the sender thread must survive anything
            logger.exception("Offer event sender failed on a batch of %d.", len(items))
        finally:
            for _ in items:
                self.queue.task_done()
            with self._idle:
                self._in_flight = 0
                self._idle.notify_all()

    def pending(self) -> int:
        """Events queued or being sent."""
        with self._idle:
            return self.queue.qsize() + self._in_flight

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued was sent or given up; False if ``timeout`` ran out."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self.queue.qsize() or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def shutdown(self, timeout: float) -> None:
        """Send what is held within ``timeout`` seconds (retries are cut short), log what is
        left, and end the thread."""
        self._stopping.set()
        if not self.flush(timeout):
            logger.error("Exiting with %d offer event(s) unsent after %.1f s.", self.pending(), timeout)
        try:
            self.queue.put(_STOP, timeout=0.1)
        except queue.Full:
            return  # still busy after the bound: the daemon thread ends with the process
        self._thread.join(timeout=1.0)


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
                from offer_realtime.settings import get_settings

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


@atexit.register
def _flush_at_exit() -> None:
    if _sender is not None and _sender_pid == os.getpid():
        from offer_realtime.settings import get_settings

        _sender.shutdown(get_settings().flush_timeout)
