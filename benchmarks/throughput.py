"""Benchmark 2: events per second one process delivers to soketi.

Compared, in the same run, interleaved round by round (fresh random order each round):

- ``seed, new client per event``: the seed's ``pusher.Pusher(...).trigger(...)`` as
  written in a view: a client (so a new HTTP connection) per event, sequential;
- ``seed, one shared client``: the same with one module-level ``pusher.Pusher``
  (keep-alive connection reused), ``trigger`` per event, sequential;
- ``offer_realtime background mode``: the ``background`` mode's path after a commit, all
  of it: committed ``Change.created`` changes handed to a
  ``offer_realtime.sender.BackgroundSender`` (``submit_changes``), whose thread reads the
  offers from PostgreSQL (one query per up to 100 changes), takes their ordering locks,
  builds the events and sends them with ``trigger_batch``, up to ``CONCURRENT_CALLS``
  (4, the default) calls at once; drained with ``flush``;
- ``background mode, CONCURRENT_CALLS=1``: the same, one call at a time (as before
  ``CONCURRENT_CALLS`` existed).

Every variant sends ``--events`` offer-created events per round, of the same offers (a
serialized offer plus ``event_id``/``changed_at``, about 0.6 kB each), to one channel: the
seed variants from offers in memory (as a view holds the instance it saved), the app's
from the committed rows. A pusher-js subscriber counts them; the rate is events /
(last receipt - first send), so it covers delivery, not only the HTTP calls. soketi
runs with Pusher's limits (10 events per batch call, 10 kB per event).

Target (issue 11): the batched sender delivers >= 6x the seed's events per second, against
both forms of the seed (each ratio is stated with its verdict).

    python benchmarks/throughput.py [--events 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import random
import statistics
import time
import uuid

import common


def build_events(channel: str, offers: list):
    """One offer-created event per offer, as the seed builds it in a view (the serializer
    data of its response), with an event id of its own."""
    from hotel.serializers import OfferStaffSerializer
    from offer_realtime import events

    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        events.with_identity(
            events.offer_created(channel, offer.pk, OfferStaffSerializer(offer).data), str(uuid.uuid4()), now
        )
        for offer in offers
    ]


def committed_changes(offers: list):
    """One committed ``Change.created`` per offer, as the app's receivers hand them over."""
    from offer_realtime.changes import Change

    # (``committed`` is the transaction buffer's bookkeeping; the sender does not read it.)
    return [Change.created(offer.pk) for offer in offers]


def _client(target):
    import pusher

    return pusher.Pusher(
        app_id=target["PUSHER_APP_ID"],
        key=target["PUSHER_KEY"],
        secret=target["PUSHER_SECRET"],
        host=target["PUSHER_HOST"],
        port=target["PUSHER_PORT"],
        ssl=False,
        timeout=10,
    )


def send_seed_new_client(target, batch) -> None:
    """The seed: a new client per event, ``trigger`` each, one after the other."""
    for event in batch:
        _client(target).trigger(event.channel, event.name, event.data)


def send_seed_shared_client(target, batch) -> None:
    """The seed with one shared client: ``trigger`` per event, sequential."""
    client = _client(target)
    for event in batch:
        client.trigger(event.channel, event.name, event.data)


def send_batched(target, changes) -> None:
    """offer_realtime's background mode: hand over the committed changes, wait for the
    sender to read, build and send them all (``CONCURRENT_CALLS`` as configured: 4)."""
    _send_with_sender(changes)


def send_batched_one_call(target, changes) -> None:
    """The same with ``CONCURRENT_CALLS`` 1: one Pusher call at a time."""
    from offer_realtime import backends

    backend = backends.configured_backend()
    configured = backend.concurrent_calls
    backend.concurrent_calls = 1
    try:
        _send_with_sender(changes)
    finally:
        backend.concurrent_calls = configured


def _send_with_sender(changes) -> None:
    from offer_realtime.sender import BackgroundSender

    sender = BackgroundSender(queue_size=len(changes) + 1, put_timeout=1.0, attempts=5, base_delay=0.1, max_delay=1.0)
    try:
        sender.submit_changes(changes, "default")
        if not sender.flush(timeout=120):
            raise RuntimeError("the sender did not drain within 120 s")
    finally:
        sender.shutdown(timeout=5)


#: Events per second of the batched sender over the seed's, at least.
TARGET = 6.0

VARIANTS = {
    "seed, new client per event": send_seed_new_client,
    "seed, one shared client": send_seed_shared_client,
    "offer_realtime background mode": send_batched,
    "background mode, CONCURRENT_CALLS=1": send_batched_one_call,
}


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description="Events/s delivered to soketi from one process (benchmark 2).")
    parser.add_argument("--events", type=int, default=1000, help="events per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=0.0,
        help="hold every HTTP call this long on its way to soketi (a hosted cluster's distance)",
    )
    parser.add_argument(
        "--own-core",
        action="store_true",
        help="run this process (the sender and the seed alike) on CPU 0 and soketi, the subscriber and the "
        "delay proxy on the other CPUs, as in production, where Pusher and the browsers are other machines",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    others = set(range(1, os.cpu_count() or 1))
    if args.own_core:
        if not others:
            parser.error("--own-core needs at least two CPUs")
        # Before any thread starts: every thread of this process inherits it.
        os.sched_setaffinity(0, {0})

    common.ensure_node_modules()
    channel = "hotel-throughput"
    common.prepare_database()
    with contextlib.ExitStack() as stack:
        soketi = stack.enter_context(common.Soketi())
        subscriber = stack.enter_context(common.Subscriber(soketi, [channel]))
        target = soketi.pusher_settings()
        helpers = [soketi.pid, subscriber.pid]
        if args.delay_ms:
            proxy = stack.enter_context(common.DelayProxy(soketi.port, args.delay_ms))
            helpers.append(proxy.proc.pid)
            target = proxy.pusher_settings(soketi)
        if args.own_core:
            common.pin(helpers, others)
        # Django in this process, its Pusher backend pointing at soketi (or the proxy).
        common.django_setup(**common.pusher_env(target), BENCH_REALTIME_ENABLED="1")
        from hotel.models import Offer
        from offer_realtime import metrics

        common.staff_hotel("throughput")
        ids = common.bulk_offers("throughput", args.events, prefix="Spa Weekend")
        offers = list(Offer.objects.filter(pk__in=ids).select_related("hotel").order_by("pk"))

        print("Machine:", common.machine_description())
        if args.own_core:
            print(f"This process on CPU 0; soketi, the subscriber and the proxy on CPU(s) {sorted(others)}.")
        subscriber.wait_subscribed(channel)
        # Warm-up: connections, imports.
        for send in VARIANTS.values():
            _measure(target, subscriber, channel, send, offers[:20])
        rates = {v: [] for v in VARIANTS}
        send_rates = {v: [] for v in VARIANTS}
        missing = dict.fromkeys(VARIANTS, 0)
        for round_no in range(args.rounds):
            for variant in common.shuffled(list(VARIANTS), rng):
                rate, send_rate, lost = _measure(target, subscriber, channel, VARIANTS[variant], offers)
                rates[variant].append(rate)
                send_rates[variant].append(send_rate)
                missing[variant] += lost
                print(f"  round {round_no + 1}: {variant}: {rate:.0f} events/s", flush=True)
        failed = metrics.snapshot().get("failed", 0)

    seed = statistics.median(rates["seed, one shared client"])
    seed_new = statistics.median(rates["seed, new client per event"])
    print(
        f"\nEvents per second delivered to a pusher-js subscriber, {args.events} events per variant per round, "
        f"median (min-max) of {args.rounds} rounds:\n"
    )
    rows = []
    for variant in VARIANTS:
        median = statistics.median(rates[variant])
        rows.append(
            [
                variant,
                f"{median:.0f}",
                f"{min(rates[variant]):.0f}-{max(rates[variant]):.0f}",
                f"{statistics.median(send_rates[variant]):.0f}",
                f"{median / seed_new:.1f}x",
                f"{median / seed:.1f}x",
                missing[variant],
            ]
        )
    common.print_table(
        [
            "variant",
            "events/s",
            "range",
            "HTTP-side events/s",
            "vs seed (new client)",
            "vs seed (shared client)",
            "not received",
        ],
        rows,
    )
    batched = statistics.median(rates["offer_realtime background mode"])
    ratios = {
        "the seed as written (new client per event)": batched / seed_new,
        "a seed with one shared client": batched / seed,
    }
    print()
    for name, ratio in ratios.items():
        print(f"Target >= {TARGET:g}x the seed: {ratio:.1f}x {name}: {'met' if ratio >= TARGET else 'MISSED'}.")
    one_call = statistics.median(rates["background mode, CONCURRENT_CALLS=1"])
    print(f"CONCURRENT_CALLS 4 over 1, same run: {common.percent_over(batched, one_call):+.1f} % events/s.")
    print(f"Sender failures counted by offer_realtime.metrics: {failed}")


def _measure(target, subscriber, channel, send, offers):
    """Send one event per offer with ``send``; return (delivered events/s, events/s until
    send returned, not received)."""
    from offer_realtime import changes as changes_module
    from offer_realtime import events

    count = len(offers)
    # Outside the timing: what the seed's view already holds (the serializer data of its
    # response), and what the app's receivers already recorded at commit.
    if send in (send_batched, send_batched_one_call):
        work = committed_changes(offers)
        expected = {changes_module.event_id(change, events.OFFER_CREATED) for change in work}
    else:
        work = build_events(channel, offers)
        expected = {event.data["event_id"] for event in work}
    seen = len(subscriber.messages_from(0))
    ids: set[str] = set()
    last_ms = None
    started_ms = time.time() * 1000
    send(target, work)
    sent_ms = time.time() * 1000
    deadline = time.monotonic() + 60
    while len(ids) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        # Each message is read once: this thread shares the GIL with the sender being
        # measured, and rescanning every earlier round's messages on each poll (as this
        # loop did until 2026-12-07) cost more round after round.
        new = subscriber.messages_from(seen)
        seen += len(new)
        for message in new:
            if message.get("type") == "event" and message["data"].get("event_id") in expected:
                ids.add(message["data"]["event_id"])
                at = message["received_at_ms"]
                last_ms = at if last_ms is None else max(last_ms, at)
    last_ms = sent_ms if last_ms is None else last_ms
    elapsed_s = max(last_ms - started_ms, 1) / 1000
    return len(ids) / elapsed_s, count / ((sent_ms - started_ms) / 1000), count - len(ids)


if __name__ == "__main__":
    main()
