"""Sending: built events -> the backend, with the outcome logged, counted and signalled.

:func:`send_batch` is the one place events meet a backend: it sends a batch (at most
ten events, one Pusher call), splits a batch refused for what may be one event's content
into single events, and reports each event's outcome (:class:`SendResult`): sent, given
up, or to retry (the caller's retry loop, :func:`offer_realtime.retry.run_attempts`,
decides when). Nothing here raises to the caller: a failure is logged on the
``offer_realtime`` logger, counted in :mod:`offer_realtime.metrics` and signalled
(:mod:`offer_realtime.signals`).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from offer_realtime import backends, events, metrics, signals
from offer_realtime.redaction import redact_exception
from offer_realtime.retry import is_transient, may_be_one_events_fault

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
    result = SendResult()
    if not batch:
        return result
    if backend is None:
        try:
            backend = backends.configured_backend()
        except Exception as exc:  # noqa: BLE001 - e.g. ImproperlyConfigured: never raise into the caller
            _record_failure(None, batch, attempt, exc, retry=False)
            result.given_up.extend(batch)
            return result
    error = _attempt(backend, batch, attempt)
    if error is None:
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


def _attempt(backend: backends.BaseBackend, batch: Sequence[events.Event], attempt: int) -> Exception | None:
    """One ``backend.send``; on success count, log and signal it; return the error, if any."""
    try:
        backend.send(batch)
    except Exception as exc:  # noqa: BLE001 - a broadcast failure must never fail the write
        return exc
    metrics.increment("sent", len(batch))
    for event in batch:
        logger.debug("Sent %s on %s for offer %s (attempt %d).", event.name, event.channel, event.offer_id, attempt)
    signals.broadcast_sent.send_robust(sender=type(backend), events=list(batch), attempt=attempt, backend=backend)
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
