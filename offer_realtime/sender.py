"""The ``background`` delivery mode: an in-process sender thread with a bounded queue.

Writers hand built events to :meth:`BackgroundSender.submit` and return at once. One
daemon thread sends them in order, up to ten per ``trigger_batch`` call, reusing the
backend's HTTP connection; it retries transient failures with capped exponential
backoff (holding back later events, so order is kept) and gives up on permanent ones.
At interpreter exit it gets ``FLUSH_TIMEOUT`` seconds to send what it holds.

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

from offer_realtime import metrics
from offer_realtime.events import Event
from offer_realtime.retry import backoff

logger = logging.getLogger("offer_realtime")

#: Pusher's limit on events per batch call.
BATCH_SIZE = 10


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
        self.queue: queue.Queue[Event] = queue.Queue(maxsize=queue_size)
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
        """Queue ``events``; if the queue stays full for ``put_timeout`` s, drop (logged, counted)."""
        for event in events:
            try:
                self.queue.put(event, timeout=self.put_timeout)
            except queue.Full:
                metrics.increment("dropped_queue_full")
                logger.error(
                    "Sender queue full (%d events): dropped %s on %s for offer %s.",
                    self.queue.maxsize, event.name, event.channel, event.offer_id,
                    extra={"event": event.name, "channel": event.channel, "offer_id": event.offer_id},
                )

    def _next_batch(self) -> list[Event]:
        first = self.queue.get()
        batch = [first]
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        with self._idle:
            self._in_flight = len(batch)
        return batch

    def _run(self) -> None:
        from offer_realtime.delivery import Outcome, send_batch

        while True:
            batch = self._next_batch()
            try:
                for attempt in range(1, self.attempts + 1):
                    outcome = send_batch(batch, attempt=attempt, may_retry=attempt < self.attempts)
                    if outcome is not Outcome.RETRY:
                        break
                    # Wait, unless the process is exiting: then one last try at once.
                    self._stopping.wait(backoff(attempt, self.base_delay, self.max_delay))
            except Exception:  # noqa: BLE001 - the sender thread must survive anything
                logger.exception("Offer event sender failed on a batch of %d.", len(batch))
            finally:
                for _ in batch:
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
        """Send what is held within ``timeout`` seconds (retries are cut short); log what is left."""
        self._stopping.set()
        if not self.flush(timeout):
            logger.error("Exiting with %d offer event(s) unsent after %.1f s.", self.pending(), timeout)


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
