"""Benchmark 5: scale-out, exactly-once delivery under concurrent writes.

The example project under gunicorn with ``--workers`` (4) sync workers on PostgreSQL,
``DELIVERY = "task"`` with django-tasks-db (the outbox setup: the task store is the
offers' database) and ``--task-workers`` (2) ``manage.py db_worker`` processes (default
1 s poll interval), sending straight to soketi.

A load client with ``--concurrency`` (50) threads sends ``--writes`` (2,000) writes
in a random order: half ``POST`` (each creates an offer: one offer-created) and half
``PATCH`` (each changes the title of a distinct pre-existing offer: one
offer-updated), spread over 4 hotels (4 channels). A pusher-js subscriber on the 4
channels records every event.

Checked: every successful write's event arrived, exactly once after dedupe by the
payload's ``event_id`` (duplicates before dedupe are reported too); nothing arrived
that no write caused. Reported: duplicates, lost, unexpected, write wall time and
request latency, and the time until the last event arrived.

    python benchmarks/scale_out.py [--writes 2000] [--concurrency 50] [--workers 4] [--task-workers 2]
"""

from __future__ import annotations

import argparse
import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import common

HOTELS = [f"scale-{i}" for i in range(4)]


def main() -> None:
    """Run the benchmark and print its report."""
    parser = argparse.ArgumentParser(description="Scale-out: exactly-once delivery under load (benchmark 5).")
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--task-workers", type=int, default=2, help="db_worker processes")
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds to wait for the events")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("Machine:", common.machine_description())
    common.ensure_node_modules()
    common.prepare_database()
    common.django_setup()
    tokens = {slug: common.staff_hotel(slug) for slug in HOTELS}
    patches = args.writes // 2
    existing = {slug: common.bulk_offers(slug, patches // len(HOTELS) + 1, prefix="Existing") for slug in HOTELS}
    common.close_db_connections()

    jobs = [("POST", HOTELS[i % len(HOTELS)], None) for i in range(args.writes - patches)]
    jobs += [
        ("PATCH", HOTELS[i % len(HOTELS)], existing[HOTELS[i % len(HOTELS)]][i // len(HOTELS)]) for i in range(patches)
    ]
    rng.shuffle(jobs)

    channels = [f"hotel-{slug}" for slug in HOTELS]
    with common.Soketi() as soketi, common.Subscriber(soketi, channels) as subscriber:
        for channel in channels:
            subscriber.wait_subscribed(channel)
        env = {**common.pusher_env(soketi.pusher_settings()), "OFFER_REALTIME_DELIVERY": "task"}
        processes = []
        try:
            server = common.DjangoServer("server-scale", workers=args.workers, env=env)
            processes.append(server)
            for i in range(args.task_workers):
                processes.append(common.TaskWorker(f"db-worker-{i}", interval=1.0, env=env))
            results, started, writes_done = _load(server.port, tokens, jobs, args.concurrency)
            expected = _expected(results)
            received, last_ms = _drain(subscriber, expected, started, args.drain_timeout)
        finally:
            for process in reversed(processes):
                process.stop()

    _report(args, results, expected, received, started, writes_done, last_ms)


def _load(port, tokens, jobs, concurrency):
    """Run ``jobs`` with ``concurrency`` threads; return results, start (epoch s) and end."""
    results = []
    lock = threading.Lock()

    def run(job):
        method, slug, offer_id = job
        token = tokens[slug]
        if method == "POST":
            status, data, seconds = common.call(
                port, "POST", common.offers_path(slug), token, common.new_offer_body("Load offer")
            )
            offer_id = data["id"] if status == 201 else None
            ok = status == 201
        else:
            status, _, seconds = common.call(
                port, "PATCH", common.offers_path(slug, offer_id), token, {"title": f"Load change {offer_id}"}
            )
            ok = status == 200
        with lock:
            results.append((method, slug, offer_id, ok, status, seconds * 1000))

    started = time.time()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(run, job) for job in jobs]:
            future.result()
    return results, started, time.time()


def _expected(results):
    """(channel, event name, offer id) of the event each successful write must cause."""
    name = {"POST": "offer-created", "PATCH": "offer-updated"}
    return {(f"hotel-{slug}", name[method], offer_id) for method, slug, offer_id, ok, _, _ in results if ok}


def _drain(subscriber, expected, started, timeout):
    """Wait until every expected event arrived (then 3 s more for late duplicates)."""
    deadline = time.monotonic() + timeout
    complete_at = None
    while time.monotonic() < deadline:
        seen = {_key(e) for e in subscriber.events}
        if expected <= seen:
            complete_at = complete_at or time.monotonic()
            if time.monotonic() - complete_at >= 3.0:
                break
        time.sleep(0.25)
    events = subscriber.events
    last_ms = max((e["received_at_ms"] for e in events), default=started * 1000)
    return events, last_ms


def _key(event):
    return (event["channel"], event["event"], common.event_offer_id(event))


def _report(args, results, expected, received, started, writes_done, last_ms):
    by_key = collections.defaultdict(set)
    for event in received:
        by_key[_key(event)].add(event["data"]["event_id"])
    distinct_ids = {event["data"]["event_id"] for event in received}
    duplicates = len(received) - len(distinct_ids)
    lost = sum(1 for key in expected if key not in by_key)
    multiple = sum(1 for key in expected if len(by_key.get(key, ())) > 1)
    unexpected = sum(1 for key in by_key if key not in expected)
    ok = [r for r in results if r[3]]
    failed = collections.Counter(r[4] for r in results if not r[3])
    latency = common.summarize([r[5] for r in results])
    write_wall = writes_done - started
    last_event_s = last_ms / 1000 - started

    print(
        f"\n{len(results)} writes ({sum(r[0] == 'POST' for r in results)} POST, "
        f"{sum(r[0] == 'PATCH' for r in results)} PATCH) with {args.concurrency} concurrent clients; "
        f"gunicorn {args.workers} workers, DELIVERY='task', {args.task_workers} db_worker processes:\n"
    )
    common.print_table(
        ["measure", "value"],
        [
            ["writes succeeded", f"{len(ok)}/{len(results)}" + (f" (failed: {dict(failed)})" if failed else "")],
            ["write wall time", f"{write_wall:.1f} s ({len(results) / write_wall:.0f} writes/s)"],
            ["write latency median / p99", f"{latency['median']:.0f} / {latency['p99']:.0f} ms"],
            ["first write -> last event received", f"{last_event_s:.1f} s"],
            ["events expected", len(expected)],
            ["events received (before dedupe)", len(received)],
            ["duplicates before dedupe (same event_id)", duplicates],
            ["distinct events after dedupe", len(distinct_ids)],
            ["lost (a write's event never arrived)", lost],
            ["writes with more than one distinct event", multiple],
            ["unexpected events", unexpected],
        ],
    )
    met = lost == 0 and multiple == 0 and unexpected == 0 and len(ok) == len(results)
    print(f"\nTarget: every event delivered exactly once after dedupe, none lost: {'met' if met else 'MISSED'}.")


if __name__ == "__main__":
    main()
