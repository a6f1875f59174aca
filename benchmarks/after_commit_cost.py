"""Where write overhead comes from: the writer's own time per save, per delivery mode.

Not one of issue 5's five benchmarks: a breakdown behind benchmark 1. In this one
process (no HTTP server, no network), ``Offer.save()`` of a title change in autocommit
mode on PostgreSQL, timed with broadcasting off and in each delivery mode, the modes
interleaved save by save. What a mode adds here is what it adds to every API write:

- ``background``: after commit, the writer reads the committed row (one query),
  serializes it, builds the event and queues it (the sender thread then sends it to
  the ``null`` backend);
- ``task``: after commit, the writer inserts one django-tasks-db task row;
- ``inline``: as ``background`` plus the send itself, here to the ``null`` backend
  (a real Pusher adds its HTTP round trip, see benchmark 1).

    python benchmarks/after_commit_cost.py [--saves 500]
"""

from __future__ import annotations

import argparse
import random
import time

import common

MODES = ("off", "inline", "background", "task")


def main() -> None:
    """Run the measurement and print its table."""
    parser = argparse.ArgumentParser(description="Writer-side cost of each delivery mode (no network).")
    parser.add_argument("--saves", type=int, default=500, help="measured saves per mode")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("Machine:", common.machine_description())
    common.prepare_database()
    common.django_setup()
    from django.conf import settings

    from hotel.models import Offer
    from offer_realtime import sender
    from offer_realtime.settings import get_settings

    common.staff_hotel("cost")
    offer_id = common.bulk_offers("cost", 1)[0]
    offer = Offer.objects.get(pk=offer_id)
    configs = {
        mode: {"ENABLED": mode != "off", "BACKEND": "null", "DELIVERY": "background" if mode == "off" else mode}
        for mode in MODES
    }
    timings = {mode: [] for mode in MODES}
    for i in range(args.saves + 20):
        for mode in common.shuffled(MODES, rng):
            # Switched without override_settings: its setting_changed would restart the
            # sender thread every time. Only the mode and the kill switch change here.
            settings.OFFER_REALTIME = configs[mode]
            get_settings.cache_clear()
            offer.title = f"Title {i} {mode}"
            start = time.perf_counter()
            offer.save()
            elapsed = time.perf_counter() - start
            sender.get_sender().flush(5.0)  # the sender's work stays out of the next save
            if i >= 20:
                timings[mode].append(elapsed * 1000)

    base = common.summarize(timings["off"])
    print(f"\nOffer.save() in ms (autocommit, PostgreSQL, null backend), {args.saves} saves per mode:\n")
    common.print_table(
        ["mode", "median", "p99", "added to the median"],
        [
            [mode, s["median"], s["p99"], "—" if mode == "off" else f"{s['median'] - base['median']:+.2f} ms"]
            for mode in MODES
            for s in [common.summarize(timings[mode])]
        ],
    )


if __name__ == "__main__":
    main()
