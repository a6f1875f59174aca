"""Benchmark 4: what change tracking costs on reads.

Two gunicorn servers (one sync worker each) of the example project on the same
PostgreSQL database, identical but for ``INSTALLED_APPS``: one with ``offer_realtime``
(its ``post_init`` receiver snapshots every loaded offer), one without it (no
receivers at all). The client lists a hotel's 1,000 offers,
``GET /api/staff/hotel/<slug>/offers/`` (unpaginated: ~1,000 rows serialized, ~600 kB),
alternating between the servers in a random order within each pair, one request at a
time.

Target: listing with ``offer_realtime`` installed is at most 5 % slower (median).

    python benchmarks/read_overhead.py [--requests 200] [--offers 1000]
"""

from __future__ import annotations

import argparse
import random
import time

import common

VARIANTS = ("without offer_realtime", "with offer_realtime")


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description="Read overhead of change tracking (benchmark 4).")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per server")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("Machine:", common.machine_description())
    common.prepare_database()
    common.django_setup()
    slug = "bench-read"
    token = common.staff_hotel(slug)
    common.bulk_offers(slug, args.offers)
    common.close_db_connections()

    # Broadcasting would not run on a read anyway; no Pusher credentials: logging backend.
    servers = {
        "without offer_realtime": common.DjangoServer("server-without", env={"BENCH_REALTIME_INSTALLED": "0"}),
        "with offer_realtime": common.DjangoServer("server-with", env={"BENCH_REALTIME_INSTALLED": "1"}),
    }
    timings = {v: [] for v in VARIANTS}
    try:
        started = time.monotonic()
        for i in range(args.warmup + args.requests):
            for variant in common.shuffled(VARIANTS, rng):
                status, data, seconds = common.call(servers[variant].port, "GET", common.offers_path(slug), token)
                assert status == 200 and len(data) == args.offers, (status, len(data or []))
                if i >= args.warmup:
                    timings[variant].append(seconds * 1000)
            if i % 50 == 49:
                print(f"  {i + 1}/{args.warmup + args.requests} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        for server in servers.values():
            server.stop()

    base = common.summarize(timings["without offer_realtime"])
    print(f"\nGET of {args.offers} offers in ms, {args.requests} interleaved requests per server:\n")
    rows = []
    for variant in VARIANTS:
        s = common.summarize(timings[variant])
        rows.append([variant, s["median"], s["p99"], s["max"],
                     "—" if variant == VARIANTS[0] else f"{(s['median'] / base['median'] - 1) * 100:+.1f} %",
                     "—" if variant == VARIANTS[0] else f"{(s['p99'] / base['p99'] - 1) * 100:+.1f} %"])
    common.print_table(["server", "median", "p99", "max", "median vs without", "p99 vs without"], rows)
    overhead = (common.summarize(timings["with offer_realtime"])["median"] / base["median"] - 1) * 100
    print(f"\nTarget <= +5 % (median): {overhead:+.1f} %: {'met' if overhead <= 5 else 'MISSED'}.")


if __name__ == "__main__":
    main()
