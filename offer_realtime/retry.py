"""Which send failures are worth retrying, how long to wait, and the one retry loop."""

from __future__ import annotations

import random
from collections.abc import Callable

import pusher.errors
import requests


def is_transient(exc: BaseException) -> bool:
    """True for failures a later attempt may not meet: timeouts, refused or reset
    connections, 5xx answers. 4xx answers (bad credentials, payload too large, bad
    request) and local errors will fail the same way again."""
    if isinstance(exc, (requests.Timeout, requests.ConnectionError, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, pusher.errors.PusherBadStatus):
        return str(exc)[:3].isdigit() and str(exc)[0] == "5"
    return False


def may_be_one_events_fault(exc: BaseException) -> bool:
    """True for permanent failures that may come from one event's content alone: a 400 or
    413 answer, or a local error such as a size check. Then the other events of the batch
    may well go through when sent alone. Bad credentials (401), a disabled app or exhausted
    quota (403) or a wrong app id (404) fail every event alike."""
    if is_transient(exc):
        return False
    if isinstance(exc, pusher.errors.PusherBadRequest):
        return True
    if isinstance(exc, pusher.errors.PusherBadStatus):
        return str(exc).startswith("413")
    return not isinstance(exc, (pusher.errors.PusherError, requests.RequestException, OSError))


def backoff(attempt: int, base: float, cap: float, jitter: float = 0.1) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): ``base * 2**(attempt-1)``, at
    most ``cap``, spread by up to ``jitter`` so workers that failed together do not
    retry together."""
    delay: float = min(cap, base * (2 ** (attempt - 1)))
    return delay * (1 + random.uniform(-jitter, jitter)) if jitter else delay


def run_attempts(
    attempt: Callable[[int], bool],
    *,
    first: int = 1,
    base_delay: float,
    max_delay: float,
    wait: Callable[[int, float], bool],
) -> None:
    """The retry loop of the background sender and the task worker.

    Calls ``attempt(n)`` for n = ``first``, ``first + 1``, ... until it returns True
    (nothing left to retry; the last allowed attempt always does, as it may not ask for
    a retry). Between attempts, ``wait(n, delay)`` with the :func:`backoff` after attempt
    n; it returns False to end the loop there (the exit deadline came, or a follow-up task
    was enqueued to make the next attempt later).
    """
    n = first
    while not attempt(n):
        if not wait(n, backoff(n, base_delay, max_delay)):
            return
        n += 1
