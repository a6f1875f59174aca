"""Where read overhead comes from: the cost of one loaded offer, with and without tracking.

A breakdown behind benchmark 4 (read overhead). In this one process (no HTTP server,
no database), ``Offer.from_db()`` of one row as a list view loads it, timed with the
app's tracking connected and disconnected, interleaved block by block; and
``tracking.snapshot_of`` of a loaded offer the first time, which a save pays instead (a
loaded row's snapshot is the row itself until then). The difference of the first two is
what each loaded instance pays: the call of the ``from_db`` wrapper plus the snapshot.

    python benchmarks/init_cost.py [--instances 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import common


def main() -> None:
    """Run the measurement and print its table."""
    parser = argparse.ArgumentParser(description="Per-instance cost of change tracking (breakdown of benchmark 4).")
    parser.add_argument("--instances", type=int, default=20_000, help="instances per block")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    common.django_setup(BENCH_REALTIME_ENABLED="1")

    from hotel.models import Offer
    from offer_realtime import receivers, tracking

    fields = [field.attname for field in Offer._meta.concrete_fields]
    samples = {"id": 1, "hotel_id": 1, "photo": "offers/spa.jpg", "title": "Spa Weekend"}
    row = [samples.get(field.attname, field.get_default()) for field in Offer._meta.concrete_fields]

    def per_instance_us() -> float:
        started = time.perf_counter()
        for _ in range(args.instances):
            Offer.from_db("default", fields, row)
        return (time.perf_counter() - started) / args.instances * 1e6

    tracked, untracked, snapshot = [], [], []
    for _ in range(args.rounds):
        tracked.append(per_instance_us())
        receivers.disconnect()
        try:
            untracked.append(per_instance_us())
        finally:
            receivers.connect()
        loaded = [Offer.from_db("default", fields, row) for _ in range(args.instances)]
        tracked_fields = receivers._fields()
        started = time.perf_counter()
        for instance in loaded:
            tracking.snapshot_of(instance, tracked_fields)
        snapshot.append((time.perf_counter() - started) / args.instances * 1e6)

    print("Machine:", common.machine_description())
    print(f"\nµs per instance, median (min-max) of {args.rounds} blocks of {args.instances}:\n")
    rows = [
        [name, f"{statistics.median(values):.2f}", f"{min(values):.2f}-{max(values):.2f}"]
        for name, values in (
            ("Offer.from_db, without offer_realtime's tracking", untracked),
            ("Offer.from_db, with them", tracked),
            ("tracking.snapshot_of, first use (at a save, not a read)", snapshot),
        )
    ]
    common.print_table(["what", "µs", "range"], rows)
    added = statistics.median(tracked) - statistics.median(untracked)
    print(f"\nAdded per loaded offer: {added:.2f} µs; for a list of 1,000 offers: {added:.2f} ms.")


if __name__ == "__main__":
    main()
