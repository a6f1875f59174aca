"""Benchmark 4: what change tracking costs on reads.

Three gunicorn servers (one sync worker each) of the example project on the same
PostgreSQL database, identical but for ``INSTALLED_APPS``: one with ``offer_realtime``
(its ``from_db`` wrapper snapshots every loaded offer), and twice the same without
it (no receivers at all): ``without offer_realtime`` and ``without offer_realtime
(again)``, whose difference is this run's noise (the spread of the median, printed next
to the overhead). With ``--baseline-tree DIR`` (another checkout of this repository,
e.g. the commit before a change, from ``git archive``; repeatable), one more server per
tree, ``with offer_realtime (<DIR's name>)``, runs that tree's code: before and after
side by side.

The client lists a hotel's 1,000 offers, ``GET /api/staff/hotel/<slug>/offers/``
(unpaginated: ~1,000 rows serialized, ~600 kB), to every server in a fresh random order
each round, one request at a time.

Target (issue 11): listing with ``offer_realtime`` installed is at most 3 % slower
(median); the verdict also says whether that is within the without-vs-without spread.

    python benchmarks/read_overhead.py [--requests 200] [--offers 1000] [--baseline-tree DIR ...]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import common

WITHOUT, WITHOUT_AGAIN = "without offer_realtime", "without offer_realtime (again)"
WITH = "with offer_realtime"
VARIANTS = (WITHOUT, WITHOUT_AGAIN, WITH)
#: Target on the median, in percent over ``without offer_realtime``.
TARGET = 3.0


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description="Read overhead of change tracking (benchmark 4).")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per server")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        action="append",
        default=[],
        help="another checkout whose code runs as one more server, 'with offer_realtime (<its name>)'",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    trees = {f"{WITH} ({tree.name})": tree for tree in args.baseline_tree}
    variants = (*VARIANTS, *trees)

    print("Machine:", common.machine_description())
    common.prepare_database()
    common.django_setup()
    slug = "bench-read"
    token = common.staff_hotel(slug)
    common.bulk_offers(slug, args.offers)
    common.close_db_connections()

    # Broadcasting would not run on a read anyway; no Pusher credentials: logging backend.
    servers = {
        WITHOUT: common.DjangoServer("server-without", env={"BENCH_REALTIME_INSTALLED": "0"}),
        WITHOUT_AGAIN: common.DjangoServer("server-without-again", env={"BENCH_REALTIME_INSTALLED": "0"}),
        WITH: common.DjangoServer("server-with", env={"BENCH_REALTIME_INSTALLED": "1"}),
    }
    timings = {v: [] for v in variants}
    try:
        for index, (variant, tree) in enumerate(trees.items()):
            servers[variant] = common.DjangoServer(
                f"server-with-tree{index}", env={"BENCH_REALTIME_INSTALLED": "1"}, tree=tree
            )
        started = time.monotonic()
        for i in range(args.warmup + args.requests):
            for variant in common.shuffled(variants, rng):
                status, data, seconds = common.call(servers[variant].port, "GET", common.offers_path(slug), token)
                assert status == 200 and len(data) == args.offers, (status, len(data or []))
                if i >= args.warmup:
                    timings[variant].append(seconds * 1000)
            if i % 50 == 49:
                print(f"  {i + 1}/{args.warmup + args.requests} ({time.monotonic() - started:.0f} s)", flush=True)
    finally:
        for server in servers.values():
            server.stop()

    base = common.summarize(timings[WITHOUT])
    # The run's noise: two identical servers' medians differ by this much.
    spread = abs(common.percent_over(common.summarize(timings[WITHOUT_AGAIN])["median"], base["median"]))
    print(f"\nGET of {args.offers} offers in ms, {args.requests} interleaved requests per server:\n")
    rows = []
    for variant in variants:
        s = common.summarize(timings[variant])
        first = variant == WITHOUT
        rows.append(
            [
                variant,
                s["median"],
                s["p99"],
                s["max"],
                "—" if first else f"{common.percent_over(s['median'], base['median']):+.1f} %",
                "—" if first else f"{spread:.1f} %",
                "—" if first else f"{common.percent_over(s['p99'], base['p99']):+.1f} %",
            ]
        )
    common.print_table(
        ["server", "median", "p99", "max", "median vs without", "without-vs-without spread", "p99 vs without"], rows
    )
    print()
    for variant in variants[2:]:
        overhead = common.percent_over(common.summarize(timings[variant])["median"], base["median"])
        print(f"{variant}: median {common.overhead_verdict(overhead, spread, TARGET, 'without')}.")


if __name__ == "__main__":
    main()
