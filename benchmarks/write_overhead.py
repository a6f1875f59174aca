"""Benchmark 1: what broadcasting adds to the staff API's write latency.

Five gunicorn servers (one sync worker each) of the example project on PostgreSQL,
identical but for ``OFFER_REALTIME``:

- ``off`` and ``off (again)``: ``ENABLED = False`` (the app installed, broadcasting
  switched off), twice: two identical servers, whose difference is this run's noise
  (the off-vs-off spread of the median, printed next to every overhead);
- ``inline``, ``background``, ``task``: the three delivery modes, sending to soketi
  through a TCP proxy that delays every request by ``--delay-ms`` (100 ms: a far
  Pusher cluster). ``task`` uses django-tasks-db on the same database, with one
  ``db_worker`` process.

With ``--baseline-tree DIR`` (another checkout of this repository, e.g. the commit
before a change, from ``git archive``; repeatable), one more server per tree,
``background (<DIR's name>)``, runs that tree's code in ``background`` mode: before
and after side by side.

The client sends ``POST /api/staff/hotel/<slug>/offers/`` and
``PATCH /api/staff/hotel/<slug>/offers/<id>/`` (a title change, so an event each time)
to every server, interleaved in a fresh random order every round, one request at a
time, and measures each request from connect to the last byte of the answer. A
pusher-js subscriber checks that every event of the broadcasting servers arrived.

Targets (issue 11): ``background`` adds at most 3 % to the median of POST and PATCH,
and no more than the off-vs-off spread (within the run's noise); ``background`` and
``task`` never wait on the 100 ms. ``inline`` (the seed's way, which waits) is the
baseline of that.

    python benchmarks/write_overhead.py [--rounds 200] [--warmup 10] [--delay-ms 100] [--baseline-tree DIR ...]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import common

OFF, OFF_AGAIN = "off", "off (again)"
VARIANTS = (OFF, OFF_AGAIN, "inline", "background", "task")
BROADCASTING = ("inline", "background", "task")
#: Targets on the median, in percent over ``off`` (``background`` also for --baseline-tree's).
TARGETS = {"background": 3.0, "task": 5.0}
#: Each variant's hotel (its slug names the Pusher channel).
SLUGS = {OFF: "bench-off", OFF_AGAIN: "bench-off-again", **{mode: f"bench-{mode}" for mode in BROADCASTING}}


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description="Write overhead of each delivery mode (benchmark 1).")
    parser.add_argument("--rounds", type=int, default=200, help="measured rounds (each: 1 POST + 1 PATCH per variant)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured rounds first")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="delay between the app and soketi")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        action="append",
        default=[],
        help="another checkout whose code runs as one more server, 'background (<its name>)'",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    trees = {f"background ({tree.name})": tree for tree in args.baseline_tree}
    for index, variant in enumerate(trees):
        SLUGS[variant] = f"bench-background-tree{index}"
        TARGETS[variant] = TARGETS["background"]
    variants = (*VARIANTS, *trees)
    broadcasting = (*BROADCASTING, *trees)

    print("Machine:", common.machine_description())
    common.ensure_node_modules()
    common.prepare_database()
    common.django_setup()
    tokens = {v: common.staff_hotel(SLUGS[v]) for v in variants}
    patch_ids = {v: common.bulk_offers(SLUGS[v], 1, prefix="Seed offer")[0] for v in variants}
    common.close_db_connections()

    with common.Soketi() as soketi, common.DelayProxy(soketi.port, args.delay_ms) as proxy:
        pusher = common.pusher_env(proxy.pusher_settings(soketi))
        off = {**pusher, "BENCH_REALTIME_ENABLED": "0"}
        servers = {
            OFF: common.DjangoServer("server-off", env=off),
            OFF_AGAIN: common.DjangoServer("server-off-again", env=off),
            **{
                mode: common.DjangoServer(f"server-{mode}", env={**pusher, "OFFER_REALTIME_DELIVERY": mode})
                for mode in BROADCASTING
            },
        }
        for index, (variant, tree) in enumerate(trees.items()):
            servers[variant] = common.DjangoServer(
                f"server-background-tree{index}", env={**pusher, "OFFER_REALTIME_DELIVERY": "background"}, tree=tree
            )
        worker = common.TaskWorker("db-worker", interval=0.1, env={**pusher, "OFFER_REALTIME_DELIVERY": "task"})
        channels = {mode: f"hotel-{SLUGS[mode]}" for mode in broadcasting}
        with common.Subscriber(soketi, channels.values()) as subscriber:
            for channel in channels.values():
                subscriber.wait_subscribed(channel)
            timings, errors = _run(servers, variants, tokens, patch_ids, args, rng)
            expected = 2 * (args.rounds + args.warmup)
            delivered = _wait_delivered(subscriber, channels, expected)
        for server in servers.values():
            server.stop()
        worker.stop()

    _report(timings, variants, errors, delivered, expected, args)


def _run(servers, variants, tokens, patch_ids, args, rng):
    timings = {(v, m): [] for v in variants for m in ("POST", "PATCH")}
    errors = dict.fromkeys(variants, 0)
    total = args.warmup + args.rounds
    started = time.monotonic()
    for round_no in range(total):
        for method in ("POST", "PATCH"):
            for variant in common.shuffled(variants, rng):
                slug = SLUGS[variant]
                if method == "POST":
                    path, body, ok = common.offers_path(slug), common.new_offer_body(f"Offer {round_no}"), 201
                else:
                    path, body, ok = common.offers_path(slug, patch_ids[variant]), {"title": f"Patched {round_no}"}, 200
                status, _, seconds = common.call(servers[variant].port, method, path, tokens[variant], body)
                if status != ok:
                    errors[variant] += 1
                elif round_no >= args.warmup:
                    timings[(variant, method)].append(seconds * 1000)
        if round_no % 25 == 24:
            print(f"  round {round_no + 1}/{total} ({time.monotonic() - started:.0f} s)", flush=True)
    return timings, errors


def _wait_delivered(subscriber, channels, expected, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = _counts(subscriber, channels)
        if all(n >= expected for n in counts.values()):
            break
        time.sleep(0.2)
    return _counts(subscriber, channels)


def _counts(subscriber, channels):
    events = subscriber.events
    return {mode: len({e["data"]["event_id"] for e in events if e["channel"] == ch}) for mode, ch in channels.items()}


def _report(timings, variants, errors, delivered, expected, args):
    print(
        f"\nWrite latency in ms, {args.rounds} measured requests per cell, "
        f"{args.delay_ms:g} ms injected between the app and soketi:\n"
    )
    rows = []
    verdicts = []
    for method in ("POST", "PATCH"):
        base = common.summarize(timings[(OFF, method)])
        # The run's noise: two identical servers' medians differ by this much.
        spread = abs(common.percent_over(common.summarize(timings[(OFF_AGAIN, method)])["median"], base["median"]))
        for variant in variants:
            s = common.summarize(timings[(variant, method)])
            over_median = common.percent_over(s["median"], base["median"])
            slow = sum(1 for t in timings[(variant, method)] if t >= args.delay_ms)
            rows.append(
                [
                    method,
                    variant,
                    s["median"],
                    s["p99"],
                    s["max"],
                    "—" if variant == OFF else f"{over_median:+.1f} %",
                    "—" if variant == OFF else f"{spread:.1f} %",
                    f"{slow}/{s['n']}",
                ]
            )
            if variant in TARGETS:
                never_waits = "met" if slow == 0 else "MISSED"
                verdict = common.overhead_verdict(over_median, spread, TARGETS[variant])
                verdicts.append(
                    f"{method} {variant}: median {verdict}; "
                    f"{slow} request(s) >= {args.delay_ms:g} ms (target 0): {never_waits}"
                )
    common.print_table(
        [
            "request",
            "variant",
            "median",
            "p99",
            "max",
            "median vs off",
            "off-vs-off spread",
            f">= {args.delay_ms:g} ms",
        ],
        rows,
    )
    print()
    for line in verdicts:
        print(line)
    print(
        "\nEvents delivered (distinct event_id at the pusher-js subscriber): "
        + ", ".join(f"{mode} {n}/{expected}" for mode, n in delivered.items())
    )
    print("HTTP errors: " + ", ".join(f"{v} {n}" for v, n in errors.items()))


if __name__ == "__main__":
    main()
