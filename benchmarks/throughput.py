"""Benchmark 2: events per second one process delivers to soketi.

Compared, in the same run, interleaved round by round (fresh random order each round):

- ``seed, new client per event``: the seed's ``pusher.Pusher(...).trigger(...)`` as
  written in a view: a client (so a new HTTP connection) per event, sequential;
- ``seed, one shared client``: the same with one module-level ``pusher.Pusher``
  (keep-alive connection reused), ``trigger`` per event, sequential;
- ``offer_realtime BackgroundSender``: ``offer_realtime.sender.BackgroundSender``
  (the ``background`` mode's sender: ``trigger_batch`` of up to 10 events per call on
  one reused connection) fed with ``submit(...)`` and drained with ``flush``.

Every variant sends the same ``--events`` offer-created events per round (built with
``offer_realtime.events``: a serialized offer plus ``event_id``/``changed_at``, about
0.6 kB each) to one channel. A pusher-js subscriber counts them; the rate is events /
(last receipt - first send), so it covers delivery, not only the HTTP calls. soketi
runs with Pusher's limits (10 events per batch call, 10 kB per event).

Target (issue 11): the batched sender delivers >= 6x the seed's events per second, against
both forms of the seed (each ratio is stated with its verdict).

    python benchmarks/throughput.py [--events 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import random
import statistics
import time
import uuid

import common


def _offer_data(i: int) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "id": i, "title": f"Spa Weekend {i}",
        "short_description": "Two nights with breakfast and a spa treatment",
        "details_text": "Check-in from 3 pm. Late check-out on request. " * 4, "details_html": "",
        "valid_from": "2026-01-01", "valid_to": "2026-03-31", "tag": "Spa", "book_now_url": "",
        "photo": None, "photo_url": None, "sort_order": 1, "is_active": True,
        "created_at": now.isoformat(),
    }


def build_events(channel: str, tag: str, count: int):
    """``count`` offer-created events as the app builds them, with event ids ``<tag>-<i>``."""
    from offer_realtime import events

    now = datetime.datetime.now(datetime.timezone.utc)
    return [
        events.with_identity(events.offer_created(channel, i, _offer_data(i)), f"{tag}-{i}", now)
        for i in range(count)
    ]


def _client(soketi):
    import pusher

    return pusher.Pusher(app_id=soketi.app_id, key=soketi.key, secret=soketi.secret,
                         host=soketi.host, port=soketi.port, ssl=False, timeout=10)


def send_seed_new_client(soketi, batch) -> None:
    """The seed: a new client per event, ``trigger`` each, one after the other."""
    for event in batch:
        _client(soketi).trigger(event.channel, event.name, event.data)


def send_seed_shared_client(soketi, batch) -> None:
    """The seed with one shared client: ``trigger`` per event, sequential."""
    client = _client(soketi)
    for event in batch:
        client.trigger(event.channel, event.name, event.data)


def send_batched(soketi, batch) -> None:
    """offer_realtime's background sender: submit everything, wait for the queue to drain."""
    from offer_realtime.sender import BackgroundSender

    sender = BackgroundSender(queue_size=len(batch) + 1, put_timeout=1.0, attempts=5, base_delay=0.1, max_delay=1.0)
    sender.submit(batch)
    if not sender.flush(timeout=120):
        raise RuntimeError("the sender did not drain within 120 s")


#: Events per second of the batched sender over the seed's, at least.
TARGET = 6.0

VARIANTS = {
    "seed, new client per event": send_seed_new_client,
    "seed, one shared client": send_seed_shared_client,
    "offer_realtime BackgroundSender": send_batched,
}


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description="Events/s delivered to soketi from one process (benchmark 2).")
    parser.add_argument("--events", type=int, default=1000, help="events per variant per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    common.ensure_node_modules()
    channel = "hotel-throughput"
    with common.Soketi() as soketi, common.Subscriber(soketi, [channel]) as subscriber:
        # Django in this process, its Pusher backend pointing at soketi (no database use).
        common.django_setup(**common.pusher_env(soketi.pusher_settings()))
        from offer_realtime import metrics

        print("Machine:", common.machine_description())
        subscriber.wait_subscribed(channel)
        # Warm-up: connections, imports.
        for send in VARIANTS.values():
            _measure(soketi, subscriber, channel, send, 20)
        rates = {v: [] for v in VARIANTS}
        send_rates = {v: [] for v in VARIANTS}
        missing = dict.fromkeys(VARIANTS, 0)
        for round_no in range(args.rounds):
            for variant in common.shuffled(list(VARIANTS), rng):
                rate, send_rate, lost = _measure(soketi, subscriber, channel, VARIANTS[variant], args.events)
                rates[variant].append(rate)
                send_rates[variant].append(send_rate)
                missing[variant] += lost
                print(f"  round {round_no + 1}: {variant}: {rate:.0f} events/s", flush=True)
        failed = metrics.snapshot().get("failed", 0)

    seed = statistics.median(rates["seed, one shared client"])
    seed_new = statistics.median(rates["seed, new client per event"])
    print(f"\nEvents per second delivered to a pusher-js subscriber, {args.events} events per variant per round, "
          f"median (min-max) of {args.rounds} rounds:\n")
    rows = []
    for variant in VARIANTS:
        median = statistics.median(rates[variant])
        rows.append([variant, f"{median:.0f}", f"{min(rates[variant]):.0f}-{max(rates[variant]):.0f}",
                     f"{statistics.median(send_rates[variant]):.0f}",
                     f"{median / seed_new:.1f}x", f"{median / seed:.1f}x", missing[variant]])
    common.print_table(["variant", "events/s", "range", "HTTP-side events/s", "vs seed (new client)",
                        "vs seed (shared client)", "not received"], rows)
    batched = statistics.median(rates["offer_realtime BackgroundSender"])
    ratios = {"the seed as written (new client per event)": batched / seed_new,
              "a seed with one shared client": batched / seed}
    print()
    for name, ratio in ratios.items():
        print(f"Target >= {TARGET:g}x the seed: {ratio:.1f}x {name}: {'met' if ratio >= TARGET else 'MISSED'}.")
    print(f"Sender failures counted by offer_realtime.metrics: {failed}")


def _measure(soketi, subscriber, channel, send, count):
    """Send ``count`` events with ``send``; return (delivered events/s, events/s until send returned, not received)."""
    tag = uuid.uuid4().hex[:12]
    batch = build_events(channel, tag, count)
    started_ms = time.time() * 1000
    send(soketi, batch)
    sent_ms = time.time() * 1000
    deadline = time.monotonic() + 60
    while True:
        # Polling (not Subscriber.wait_for, which rescans every message on every new one).
        received = [e for e in subscriber.events if str(e["data"].get("event_id", "")).startswith(tag)]
        ids = {e["data"]["event_id"] for e in received}
        if len(ids) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    last_ms = max((e["received_at_ms"] for e in received), default=sent_ms)
    elapsed_s = max(last_ms - started_ms, 1) / 1000
    return len(ids) / elapsed_s, count / ((sent_ms - started_ms) / 1000), count - len(ids)


if __name__ == "__main__":
    main()
