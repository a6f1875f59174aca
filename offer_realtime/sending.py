"""Sending: built events -> the backend, with the outcome logged, counted and signalled.

:func:`send_batch` and :func:`send_batches` are the one place events meet a backend:
they send batches (at most ten events, one Pusher call each; several calls at once where
the backend allows it and no offer is in two of them), split a batch refused for what
may be one event's content into single events, and report each event's outcome
(:class:`SendResult`): sent, given up, or to retry (the caller's retry loop,
:func:`offer_realtime.retry.run_attempts`, decides when). Nothing here raises to the
caller: a failure is logged on the ``offer_realtime`` logger, counted in
:mod:`offer_realtime.metrics` and signalled (:mod:`offer_realtime.signals`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import enum
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from offer_realtime import backends, events, metrics, signals
from offer_realtime.redaction import redact_exception
from offer_realtime.retry import is_transient, may_be_one_events_fault
from offer_realtime.settings import MAX_CONCURRENT_CALLS

logger = logging.getLogger("offer_realtime")


class Outcome(enum.Enum):
    """What became of a batch handed to the backend."""

    SENT = "sent"
    RETRY = "retry"
    GIVEN_UP = "given up"


@dataclass
class SendResult:
    """What became of each event of a batch handed to :func:`send_batch`, in batch order."""

    sent: list[events.Event] = field(default_factory=list)
    given_up: list[events.Event] = field(default_factory=list)
    #: Events to send again after a backoff (a transient failure, and the caller may retry).
    retry: list[events.Event] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        """RETRY if some events are to be sent again, else GIVEN_UP if some were, else SENT."""
        if self.retry:
            return Outcome.RETRY
        return Outcome.GIVEN_UP if self.given_up else Outcome.SENT


def send_batch(
    batch: Sequence[events.Event],
    *,
    attempt: int = 1,
    may_retry: bool = False,
    backend: backends.BaseBackend | None = None,
) -> SendResult:
    """Send ``batch`` with ``backend``; log, count and signal the outcome; never raise.

    ``backend`` defaults to the *configured* backend, not a testing override: events of a
    write made before :func:`offer_realtime.testing.capture_broadcasts` started, still
    queued or retried, go where they would have gone. ``may_retry``: the caller will try
    again after a transient failure (the background sender and the task worker do; inline
    delivery does not).

    A batch refused for what may be one event's content (a 400 or 413 answer, a local
    error such as a size check) is sent again one event at a time, so only the refused
    events are given up: one hotel's event never costs another hotel's.
    """
    return send_batches([batch], attempt=attempt, may_retry=may_retry, backend=backend)


def send_batches(
    batches: Sequence[Sequence[events.Event]],
    *,
    attempt: int = 1,
    may_retry: bool = False,
    backend: backends.BaseBackend | None = None,
    on_start: Callable[[Sequence[events.Event]], None] | None = None,
    on_done: Callable[[Sequence[events.Event], SendResult], None] | None = None,
) -> SendResult:
    """Send ``batches`` (each one call, see :func:`send_batch`) in order; never raise.

    Up to ``backend.concurrent_calls`` calls are under way at once, each on a thread of
    the sending pool; a batch waits for the calls before it that hold an event of one of
    its offers (or for every call, if it holds an event of no offer), so one offer's
    events still reach Pusher in order. What is done with each outcome (the log lines,
    counters, signals, a split into single events) happens on the calling thread, batch
    by batch in order, as :func:`send_batch` does it.

    After a batch failed transiently and will be retried, no later batch is started: the
    calls already under way finish, and the batches never started are to retry too (the
    answer's ``retry``, in order). ``on_start`` is called with each batch as its call
    starts and ``on_done`` with it and its :class:`SendResult` once settled, both on the
    calling thread (the background sender keeps its exit report exact with them).
    """
    result = SendResult()
    if backend is None and any(batches):
        try:
            backend = backends.configured_backend()
        except Exception as exc:  # noqa: BLE001 - e.g. ImproperlyConfigured: never raise into the caller
            everything = [event for batch in batches for event in batch]
            _record_failure(None, everything, attempt, exc, retry=False)
            result.given_up.extend(everything)
            return result
    todo = [batch for batch in batches if batch]
    # One call (inline delivery, a task, a quiet sender) stays on this thread: a pool
    # thread would only add a hand-over to it.
    window = max(1, getattr(backend, "concurrent_calls", 1)) if len(todo) > 1 else 1
    under_way: collections.deque[_Call] = collections.deque()
    stopped = False
    not_started: list[Sequence[events.Event]] = []
    for index, batch in enumerate(todo):
        keys = _offer_keys(batch)
        while under_way and (len(under_way) >= window or any(call.overlaps(keys) for call in under_way)):
            stopped = _settle(under_way.popleft(), attempt, may_retry, result, on_done) or stopped
        if stopped:
            not_started = todo[index:]
            break
        if on_start is not None:
            on_start(batch)
        assert backend is not None  # resolved above: there is a batch
        # With a window of 1 the call is made on this thread when it is settled, above
        # for the next batch or below for the last: one call at a time, in order.
        under_way.append(_Call(backend, batch, keys, pooled=window > 1))
    while under_way:
        _settle(under_way.popleft(), attempt, may_retry, result, on_done)
    # After what was under way, so that the events to retry stay in the order given.
    result.retry.extend(event for batch in not_started for event in batch)
    return result


#: An event of no offer (a list-wide sync) is ordered against every other event.
_EVERY_OFFER = object()


def _offer_keys(batch: Sequence[events.Event]) -> frozenset[Any]:
    return frozenset(_EVERY_OFFER if event.offer_id is None else event.offer_id for event in batch)


class _Call:
    """One batch's first ``backend.send``: started on the sending pool when ``pooled``
    (calls may run at once), else made on the calling thread when its outcome is asked for."""

    def __init__(
        self, backend: backends.BaseBackend, batch: Sequence[events.Event], keys: frozenset[Any], pooled: bool
    ):
        self.backend = backend
        self.batch = batch
        self.keys = keys
        self.future = _submit(_call, backend, batch) if pooled else None

    def overlaps(self, keys: frozenset[Any]) -> bool:
        """Whether a batch with events of ``keys`` must wait for this call."""
        return _EVERY_OFFER in keys or _EVERY_OFFER in self.keys or not keys.isdisjoint(self.keys)

    def error(self) -> Exception | None:
        """The call's error (None: sent), waiting for it if it is under way."""
        return _call(self.backend, self.batch) if self.future is None else self.future.result()


def _settle(
    call: _Call,
    attempt: int,
    may_retry: bool,
    result: SendResult,
    on_done: Callable[[Sequence[events.Event], SendResult], None] | None,
) -> bool:
    """Take ``call``'s outcome into ``result``; True if its batch is to be retried."""
    outcome = _outcome(call.backend, call.batch, call.error(), attempt, may_retry)
    result.sent.extend(outcome.sent)
    result.given_up.extend(outcome.given_up)
    result.retry.extend(outcome.retry)
    if on_done is not None:
        on_done(call.batch, outcome)
    return bool(outcome.retry)


def _outcome(
    backend: backends.BaseBackend, batch: Sequence[events.Event], error: Exception | None, attempt: int, may_retry: bool
) -> SendResult:
    """What became of ``batch``, whose first call ended with ``error``: counted, logged,
    signalled; split into single events if the refusal may be one event's fault."""
    result = SendResult()
    if error is None:
        _record_sent(backend, batch, attempt)
        result.sent.extend(batch)
        return result
    retry = may_retry and is_transient(error)
    if retry or len(batch) == 1 or not may_be_one_events_fault(error):
        _record_failure(backend, batch, attempt, error, retry=retry)
        (result.retry if retry else result.given_up).extend(batch)
        return result
    _record_failure(backend, batch, attempt, error, retry=False, split=True)
    for index, event in enumerate(batch):
        error = _attempt(backend, [event], attempt)
        if error is None:
            result.sent.append(event)
        elif not is_transient(error):
            _record_failure(backend, [event], attempt, error, retry=False)
            result.given_up.append(event)
        else:
            # Pusher went away meanwhile: this event and the rest wait together, in order
            # (or are given up together, without a round trip each to a dead server).
            rest = list(batch[index:])
            _record_failure(backend, rest, attempt, error, retry=may_retry)
            (result.retry if may_retry else result.given_up).extend(rest)
            break
    return result


def _call(backend: backends.BaseBackend, batch: Sequence[events.Event]) -> Exception | None:
    """One ``backend.send`` and nothing else (it may run on a thread of the sending pool)."""
    try:
        backend.send(batch)
    except Exception as exc:  # noqa: BLE001 - a broadcast failure must never fail the write
        return exc
    return None


def _attempt(backend: backends.BaseBackend, batch: Sequence[events.Event], attempt: int) -> Exception | None:
    """One ``backend.send`` on this thread; on success count, log and signal it; return the error, if any."""
    error = _call(backend, batch)
    if error is None:
        _record_sent(backend, batch, attempt)
    return error


def _record_sent(backend: backends.BaseBackend, batch: Sequence[events.Event], attempt: int) -> None:
    metrics.increment("sent", len(batch))
    for event in batch:
        logger.debug("Sent %s on %s for offer %s (attempt %d).", event.name, event.channel, event.offer_id, attempt)
    signals.broadcast_sent.send_robust(sender=type(backend), events=list(batch), attempt=attempt, backend=backend)


# -- the sending pool ---------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: tuple[int, concurrent.futures.ThreadPoolExecutor] | None = None


def _submit(fn: Callable[..., Exception | None], *args: Any) -> concurrent.futures.Future[Exception | None] | None:
    """``fn(*args)`` on the sending pool; None where no pool can run it: at interpreter
    exit (the pool's threads are stopped before ``atexit`` handlers such as the background
    sender's flush run), the caller then makes the call itself."""
    global _pool
    with _pool_lock:
        # One pool per process: a forked child (a gunicorn worker) has none of the
        # parent's threads, and a pool made before the fork would never run anything.
        if _pool is None or _pool[0] != os.getpid():
            _pool = (
                os.getpid(),
                concurrent.futures.ThreadPoolExecutor(MAX_CONCURRENT_CALLS, thread_name_prefix="offer-realtime-send"),
            )
        pool = _pool[1]
    try:
        return pool.submit(fn, *args)
    except RuntimeError:  # "cannot schedule new futures after (interpreter) shutdown"
        return None


def _record_failure(
    backend: backends.BaseBackend | None,
    batch: Sequence[events.Event],
    attempt: int,
    exc: Exception,
    *,
    retry: bool,
    split: bool = False,
) -> None:
    """Count, log and signal a failed send of ``batch``. ``split``: the batch will be sent
    again one event at a time (counted as retried, one log line, not final)."""
    redact_exception(exc)  # no signed Pusher URL in the log lines and signal below
    metrics.increment("failed", len(batch))
    metrics.increment("retried" if retry or split else "given_up", len(batch))
    if split:
        logger.warning(
            "Batch of %d events refused: %s: %s (attempt %d); sending each event alone so that only "
            "the refused one(s) are given up. Offers: %s.",
            len(batch),
            type(exc).__name__,
            exc,
            attempt,
            ", ".join(str(e.offer_id) for e in batch),
            extra={"attempt": attempt},
        )
    else:
        for event in batch:
            logger.log(
                logging.WARNING if retry else logging.ERROR,
                "Broadcast of %s on %s for offer %s failed: %s: %s (attempt %d; %s).",
                event.name,
                event.channel,
                event.offer_id,
                type(exc).__name__,
                exc,
                attempt,
                "will retry" if retry else "given up",
                extra={"event": event.name, "channel": event.channel, "offer_id": event.offer_id, "attempt": attempt},
            )
    signals.broadcast_failed.send_robust(
        sender=type(backend) if backend is not None else backends.BaseBackend,
        events=list(batch),
        attempt=attempt,
        backend=backend,
        error=exc,
        final=not (retry or split),
    )
