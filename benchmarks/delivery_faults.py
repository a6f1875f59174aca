"""Issue 10, items 1, 3 and 6: what the background sender loses, captures or blocks, measured.

In this one process, on a throw-away SQLite database, with the default ``background``
delivery mode sending to soketi (Pusher's limits) and a pusher-js subscriber counting:

1. ``mixed``: ``--rounds`` (12) transactions, each creating 5 offers of hotel a and 5 of
   hotel b; one of hotel a's offers per round carries ~5 KB of text with one emoji or one
   typographic apostrophe (valid: well under Pusher's 10,240 UTF-8 bytes). Then one more
   offer of hotel a alone, with 7.7 KB of text and one emoji. Reported: events of each
   hotel that arrived.
2. ``capture``: ``--runs`` (50) times, an offer is saved (autocommit) and right after it a
   ``capture_broadcasts()`` block saves another; reported: the runs whose capture also
   held the earlier save's event.
3. ``full-queue``: the sender is held in an HTTP call that hangs and its queue (10) is
   full; then one transaction deletes 100 offers. Reported: seconds the delete took
   (``QUEUE_PUT_TIMEOUT`` is 0.1 s) and the events dropped.

    python benchmarks/delivery_faults.py [--rounds 12] [--runs 50]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import common  # also puts the repository and the example project on sys.path

from tests.e2e.harness import Soketi, Subscriber
from tests.e2e.proxy import FaultyProxy


def main() -> None:
    """Run the three measurements and print their tables."""
    parser = argparse.ArgumentParser(description="Losses, stray captures and blocking writes (issue 10).")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()

    os.environ.update(
        DATABASE_URL=f"sqlite:///{tempfile.mkdtemp(prefix='faults-bench-')}/db.sqlite3",
        DJANGO_SETTINGS_MODULE="example_project.settings",
        OFFER_REALTIME_LOG_LEVEL="CRITICAL",  # the losses are counted here, not read from the log
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print("Machine:", common.machine_description())
    with Soketi() as soketi:
        rows = [*_mixed(soketi, args.rounds), *_capture(soketi, args.runs), *_full_queue(soketi)]
    common.print_table(["measure", "value"], rows)


def _configured(soketi, port=None, **options):
    from django.test import override_settings

    pusher = {**soketi.pusher_settings(), **({"PUSHER_PORT": port} if port else {})}
    return override_settings(**pusher, OFFER_REALTIME={"DELIVERY": "background", **options})


def _mixed(soketi, rounds: int) -> list[list]:
    from django.db import transaction

    from hotel.models import Hotel, Offer
    from offer_realtime import sender

    a, b = (Hotel.objects.create(name=slug, slug=slug) for slug in ("mixed-a", "mixed-b"))
    specials = ["Spa 🧖 ", "Guests’ favourite "]
    with Subscriber(soketi, ["hotel-mixed-a", "hotel-mixed-b"]) as subscriber, _configured(soketi):
        for channel in ("hotel-mixed-a", "hotel-mixed-b"):
            subscriber.wait_subscribed(channel)
        for r in range(rounds):
            with transaction.atomic():
                for i in range(5):
                    text = specials[r % 2] + "a" * 5_000 if i == 2 else ""
                    Offer.objects.create(hotel=a, title=f"a {r}.{i}", short_description="x", details_text=text)
                    Offer.objects.create(hotel=b, title=f"b {r}.{i}", short_description="x")
        sender.get_sender().flush(30)
        Offer.objects.create(hotel=a, title="a alone", short_description="x", details_text="Spa 🧖 " + "a" * 7_650)
        sender.get_sender().flush(30)
        time.sleep(1.0)  # what was sent has reached the subscriber
        sender.reset_sender()
        titles = {e["data"]["offer"]["title"] for e in subscriber.events}
    got_a = sum(1 for t in titles if t.startswith("a ") and t != "a alone")
    got_b = sum(1 for t in titles if t.startswith("b "))
    return [
        ["1. hotel b's events lost (to hotel a's batches)", f"{rounds * 5 - got_b}/{rounds * 5}"],
        ["1. hotel a's events lost (all valid)", f"{rounds * 5 - got_a}/{rounds * 5}"],
        ["1. one 7.7 KB event with one emoji", "delivered" if "a alone" in titles else "lost"],
    ]


def _capture(soketi, runs: int) -> list[list]:
    from hotel.models import Hotel, Offer
    from offer_realtime import sender
    from offer_realtime.testing import capture_broadcasts

    hotel = Hotel.objects.create(name="capture", slug="capture")
    stray = 0
    with _configured(soketi):
        for run in range(runs):
            Offer.objects.create(hotel=hotel, title=f"before {run}", short_description="x")
            with capture_broadcasts() as sent:
                Offer.objects.create(hotel=hotel, title=f"inside {run}", short_description="x")
                sender.get_sender().flush(10)
            stray += any(e.data["offer"]["title"] == f"before {run}" for e in sent)
        sender.reset_sender()
    return [["2. captures holding an earlier write's event", f"{stray}/{runs}"]]


def _full_queue(soketi) -> list[list]:
    from django.db import transaction

    from hotel.models import Hotel, Offer
    from offer_realtime import metrics, sender

    hotel = Hotel.objects.create(name="full", slug="full")
    Offer.objects.bulk_create([Offer(hotel=hotel, title=f"full {i}", short_description="x") for i in range(100)])
    with FaultyProxy(soketi.port) as proxy, _configured(soketi, port=proxy.port, QUEUE_SIZE=10, TIMEOUT=30):
        proxy.set_mode("hang")
        out = sender.get_sender()
        out.submit_changes([_filler(0)], "default")
        deadline = time.monotonic() + 10
        while not proxy.held and time.monotonic() < deadline:
            time.sleep(0.01)
        out.submit_changes([_filler(i) for i in range(1, 11)], "default")  # the sender hangs on 0; these fill the queue
        metrics.reset()
        started = time.monotonic()
        with transaction.atomic():
            Offer.objects.filter(hotel=hotel).delete()
        elapsed = time.monotonic() - started
        dropped = metrics.snapshot()["dropped_queue_full"]
        proxy.set_mode("pass")
        out.shutdown(0.1)
    return [
        ["3. one transaction deleting 100 offers, queue full", f"{elapsed:.2f} s"],
        ["3. events dropped (counted, logged)", f"{dropped}/100"],
    ]


def _filler(i: int):
    """A committed deletion of a made-up offer (its event needs no database row)."""
    from offer_realtime.changes import Change

    return Change.deleted(-i, title="filler", channel="hotel-full")


if __name__ == "__main__":
    main()
