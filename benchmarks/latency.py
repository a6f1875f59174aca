"""Benchmark 3: commit-to-browser latency of each delivery mode, on loopback.

One gunicorn server (one sync worker) per mode on PostgreSQL, all sending straight
to soketi (no delay): ``inline``, ``background``, and ``task`` with django-tasks-db
and one ``db_worker`` polling every ``--task-interval`` s (0.1 s) and one polling at
the worker's default interval of 1 s. A pusher-js subscriber (Node) on the modes'
channels records when each event arrives.

The client sends a POST (offer-created) and then a PATCH (offer-updated) to each
server, the servers in a fresh random order every round, and waits for each event
before the next request, so events never queue behind each other.

Latency = the subscriber's receipt time (``Date.now()``, ms) minus the event's
``changed_at`` (taken in ``post_save`` of the autocommitted save, i.e. right after the
row was committed; the same clock, on one machine).

Target: median <= 20 ms for ``inline`` and ``background``.

    python benchmarks/latency.py [--rounds 100] [--warmup 5] [--task-interval 0.1]
"""

from __future__ import annotations

import argparse
import random
import time

import common

#: variant -> (delivery mode, task queue of its db_worker or None)
VARIANTS = {
    "inline": ("inline", None),
    "background": ("background", None),
    "task (worker polls 0.1 s)": ("task", "fast"),
    "task (worker polls 1 s)": ("task", "slow"),
}


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description="Commit -> pusher-js latency per delivery mode (benchmark 3).")
    parser.add_argument("--rounds", type=int, default=100, help="measured rounds (each: POST + PATCH per variant)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--task-interval", type=float, default=0.1, help="poll interval of the fast db_worker")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    intervals = {"fast": args.task_interval, "slow": 1.0}
    names = {v: v.replace("0.1 s", f"{args.task_interval:g} s") for v in VARIANTS}

    print("Machine:", common.machine_description())
    common.ensure_node_modules()
    common.prepare_database()
    common.django_setup()
    slugs = {v: f"lat-{i}" for i, v in enumerate(VARIANTS)}
    tokens = {v: common.staff_hotel(slugs[v]) for v in VARIANTS}
    common.close_db_connections()

    with common.Soketi() as soketi:
        pusher = common.pusher_env(soketi.pusher_settings())
        servers, workers = {}, []
        try:
            for variant, (mode, queue) in VARIANTS.items():
                env = {**pusher, "OFFER_REALTIME_DELIVERY": mode, "BENCH_TASK_QUEUE": queue or "default"}
                servers[variant] = common.DjangoServer(f"server-{slugs[variant]}", env=env)
                if queue:
                    workers.append(
                        common.TaskWorker(f"worker-{queue}", queue=queue, interval=intervals[queue], env=env)
                    )
            channels = {v: f"hotel-{slugs[v]}" for v in VARIANTS}
            with common.Subscriber(soketi, channels.values()) as subscriber:
                for channel in channels.values():
                    subscriber.wait_subscribed(channel)
                latencies, lost = _run(subscriber, servers, tokens, slugs, channels, args, rng)
        finally:
            for process in [*servers.values(), *workers]:
                process.stop()

    print(
        f"\nCommit -> pusher-js receipt in ms, {args.rounds} POSTs and {args.rounds} PATCHes per mode, "
        "loopback, no injected delay:\n"
    )
    rows = []
    for variant in VARIANTS:
        s = common.summarize(latencies[variant])
        target = "<= 20 ms median" if variant in ("inline", "background") else "—"
        met = "met" if s["median"] <= 20 else "MISSED"
        rows.append(
            [
                names[variant],
                s["n"],
                s["median"],
                s["p99"],
                s["max"],
                target,
                met if target != "—" else "—",
                lost[variant],
            ]
        )
    common.print_table(["mode", "events", "median", "p99", "max", "target", "result", "not received"], rows)


def _run(subscriber, servers, tokens, slugs, channels, args, rng):
    latencies = {v: [] for v in VARIANTS}
    lost = dict.fromkeys(VARIANTS, 0)
    total = args.warmup + args.rounds
    started = time.monotonic()
    for round_no in range(total):
        for variant in common.shuffled(list(VARIANTS), rng):
            port, token, slug = servers[variant].port, tokens[variant], slugs[variant]
            status, offer, _ = common.call(
                port, "POST", common.offers_path(slug), token, common.new_offer_body(f"Offer {round_no}")
            )
            assert status == 201, (status, offer)
            _record(
                subscriber,
                channels[variant],
                "offer-created",
                offer["id"],
                round_no >= args.warmup,
                latencies[variant],
                lost,
                variant,
            )
            status, _, _ = common.call(
                port, "PATCH", common.offers_path(slug, offer["id"]), token, {"title": f"Changed {round_no}"}
            )
            assert status == 200, status
            _record(
                subscriber,
                channels[variant],
                "offer-updated",
                offer["id"],
                round_no >= args.warmup,
                latencies[variant],
                lost,
                variant,
            )
        if round_no % 20 == 19:
            print(f"  round {round_no + 1}/{total} ({time.monotonic() - started:.0f} s)", flush=True)
    return latencies, lost


def _record(subscriber, channel, name, offer_id, measured, latencies, lost, variant):
    """Wait for the event of the request just made; note its latency (or that it never came)."""
    event = _wait_event(subscriber, channel, name, offer_id)
    if event is None:
        lost[variant] += 1
    elif measured:
        latencies.append(event["received_at_ms"] - common.changed_at_ms(event))


def _wait_event(subscriber, channel, name, offer_id, timeout=10.0):
    def find(messages):
        for m in reversed(messages):
            if (
                m.get("type") == "event"
                and m["channel"] == channel
                and m["event"] == name
                and common.event_offer_id(m) == offer_id
            ):
                return m
        return None

    try:
        return subscriber.wait_for(find, timeout, f"{name} of offer {offer_id}")
    except common.HarnessError:
        return None


if __name__ == "__main__":
    main()
