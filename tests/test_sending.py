"""offer_realtime.sending: several calls at once, one offer never in two of them, outcomes in order."""

from __future__ import annotations

import threading
import time

import pusher.errors
import pytest
import requests

from offer_realtime import events, sending, signals
from offer_realtime.backends.base import BaseBackend


class HoldingBackend(BaseBackend):
    """Holds every call ``hold`` seconds and records what was under way at once."""

    def __init__(self, calls: int, hold: float = 0.3, fail=None) -> None:
        # Held long enough that the calls started together overlap on a loaded machine.
        self.concurrent_calls = calls
        self.hold = hold
        self.fail = fail  # events -> an exception to raise, or None
        self.lock = threading.Lock()
        self.under_way: dict[int, set] = {}
        self.most = 0
        self.clashes: list[tuple[set, set]] = []  # two calls with one offer under way at once
        self.threads: set[int] = set()
        self.delivered: list = []  # offer ids, in the order their calls ended well

    def send(self, batch) -> None:
        keys = {event.offer_id for event in batch}
        with self.lock:
            for other in self.under_way.values():
                if keys & other or None in keys or None in other:
                    self.clashes.append((keys, other))
            token = object()
            self.under_way[id(token)] = keys
            self.most = max(self.most, len(self.under_way))
            self.threads.add(threading.get_ident())
        try:
            time.sleep(self.hold)
            error = self.fail(batch) if self.fail else None
            if error is not None:
                raise error
            with self.lock:
                self.delivered.extend(event.offer_id for event in batch)
        finally:
            with self.lock:
                del self.under_way[id(token)]


def deleted(offer_id, channel="hotel-a"):
    return events.offer_deleted(channel, offer_id, f"Offer {offer_id}")


def ids(evts):
    return [event.offer_id for event in evts]


def test_calls_are_under_way_at_once_up_to_the_backends_limit():
    backend = HoldingBackend(calls=3)
    batches = [[deleted(2 * i), deleted(2 * i + 1)] for i in range(8)]
    result = sending.send_batches(batches, backend=backend)
    assert backend.most == 3
    assert ids(result.sent) == list(range(16))  # settled in the order given
    assert (result.given_up, result.retry) == ([], [])
    assert sorted(backend.delivered) == list(range(16))


def test_a_batch_waits_for_the_calls_holding_one_of_its_offers():
    backend = HoldingBackend(calls=4)
    # Offer 1 is in the first two batches (say a change's events, then a later change's).
    batches = [[deleted(1), deleted(2)], [deleted(3), deleted(1, channel="hotel-b")], [deleted(4)], [deleted(5)]]
    result = sending.send_batches(batches, backend=backend)
    assert backend.clashes == []
    assert backend.most == 3  # the second batch waited for the first; the others did not wait
    assert [i for i in backend.delivered if i == 1] == [1, 1]
    assert [(e.offer_id, e.channel) for e in result.sent if e.offer_id == 1] == [(1, "hotel-a"), (1, "hotel-b")]


def test_an_event_of_no_offer_is_sent_alone():
    backend = HoldingBackend(calls=4)
    sync_all = events.offers_sync("hotel-a", None)
    result = sending.send_batches([[deleted(1)], [deleted(2)], [sync_all], [deleted(3)], [deleted(4)]], backend=backend)
    assert backend.clashes == []
    assert backend.most == 2
    assert ids(result.sent) == [1, 2, None, 3, 4]


@pytest.mark.parametrize(
    ("failing", "sent", "retry"),
    [
        # The second call fails; the third was already under way and ends well; the
        # fourth and fifth are never started.
        ({2}, [1, 3], [2, 4, 5]),
        # The third fails too: what is to retry keeps the order given.
        ({2, 3}, [1], [2, 3, 4, 5]),
    ],
)
def test_a_transient_failure_starts_no_further_call_and_keeps_the_order(failing, sent, retry):
    def fail(batch):
        return requests.ConnectionError("refused") if batch[0].offer_id in failing else None

    backend = HoldingBackend(calls=2, fail=fail)
    result = sending.send_batches([[deleted(i)] for i in range(1, 6)], backend=backend, may_retry=True)
    assert (ids(result.sent), ids(result.retry), result.given_up) == (sent, retry, [])
    assert sorted(backend.delivered) == sent  # 4 and 5 were not sent at all


def test_a_batch_refused_for_one_event_is_split_while_other_calls_go_on():
    def fail(batch):
        bad = [e for e in batch if e.offer_id == 13]
        return pusher.errors.PusherBadRequest("event too large") if bad else None

    backend = HoldingBackend(calls=3, hold=0.02, fail=fail)
    batches = [[deleted(10 + 3 * i + j) for j in range(3)] for i in range(3)]  # 10-12, 13-15, 16-18
    result = sending.send_batches(batches, backend=backend, may_retry=True)
    assert ids(result.given_up) == [13]
    assert ids(result.sent) == [10, 11, 12, 14, 15, 16, 17, 18]
    assert result.retry == []


def test_outcomes_are_counted_and_signalled_on_the_calling_thread():
    seen = []

    backend = HoldingBackend(calls=3)

    def on_sent(sender, events, **kwargs):
        if kwargs["backend"] is backend:  # not another test's sender thread, still at work
            seen.append((threading.get_ident(), ids(events)))

    signals.broadcast_sent.connect(on_sent)
    try:
        sending.send_batches([[deleted(i)] for i in range(6)], backend=backend)
    finally:
        signals.broadcast_sent.disconnect(on_sent)
    caller = threading.get_ident()
    assert seen == [(caller, [i]) for i in range(6)]  # in order, on this thread ...
    assert caller not in backend.threads  # ... while the calls ran on the sending pool


def test_on_start_and_on_done_bracket_each_call_in_order():
    log = []
    backend = HoldingBackend(calls=2)
    sending.send_batches(
        [[deleted(i)] for i in range(4)],
        backend=backend,
        on_start=lambda batch: log.append(("start", batch[0].offer_id)),
        on_done=lambda batch, result: log.append(("done", batch[0].offer_id, ids(result.sent))),
    )
    assert log == [
        ("start", 0),
        ("start", 1),
        ("done", 0, [0]),  # two under way: the third waits for the first
        ("start", 2),
        ("done", 1, [1]),
        ("start", 3),
        ("done", 2, [2]),
        ("done", 3, [3]),
    ]


def test_one_call_at_a_time_stays_on_the_calling_thread():
    backend = HoldingBackend(calls=1, hold=0.01)
    result = sending.send_batches([[deleted(i)] for i in range(3)], backend=backend)
    assert ids(result.sent) == [0, 1, 2]
    assert (backend.most, backend.threads) == (1, {threading.get_ident()})


def test_a_single_call_stays_on_the_calling_thread():
    backend = HoldingBackend(calls=4, hold=0.01)
    result = sending.send_batch([deleted(1), deleted(2)], backend=backend)
    assert ids(result.sent) == [1, 2]
    assert backend.threads == {threading.get_ident()}


@pytest.fixture
def no_pool():
    """The sending pool as it is at interpreter exit: shut down (its threads end before
    the ``atexit`` handlers, such as the background sender's flush, run)."""
    sending._submit(lambda: None)
    sending._pool[1].shutdown(wait=True)
    yield
    sending._pool = None


def test_at_interpreter_exit_the_calls_are_made_on_the_calling_thread(no_pool):
    backend = HoldingBackend(calls=3, hold=0.01)
    result = sending.send_batches([[deleted(i)] for i in range(4)], backend=backend)
    assert ids(result.sent) == [0, 1, 2, 3]
    assert (backend.most, backend.threads) == (1, {threading.get_ident()})


def test_a_forked_process_makes_a_pool_of_its_own(monkeypatch):
    sending._submit(lambda: None)
    parents = sending._pool[1]
    monkeypatch.setattr(sending.os, "getpid", lambda: -1)  # as in a gunicorn worker forked from the master
    sending._submit(lambda: None).result(5)
    try:
        assert sending._pool[1] is not parents
    finally:
        sending._pool[1].shutdown(wait=True)
        sending._pool = None


def test_the_pusher_backend_takes_its_calls_from_the_setting(settings):
    from offer_realtime.backends.pusher import PusherBackend

    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "1", "k", "s"
    assert PusherBackend().concurrent_calls == 4
    settings.OFFER_REALTIME = {"CONCURRENT_CALLS": 7}
    assert PusherBackend().concurrent_calls == 7
    assert BaseBackend.concurrent_calls == 1  # any other backend: one call at a time
