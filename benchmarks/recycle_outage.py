"""Issue 10, item 2: events lost when gunicorn recycles a worker during a short Pusher outage.

The example project under gunicorn (``--workers`` 1, ``--max-requests`` 50, sync workers,
``DELIVERY = "background"`` with the default retry and ``FLUSH_TIMEOUT`` settings) sends
to soketi through a loopback proxy that refuses connections for ``--outage`` (4) seconds,
starting after ``--before`` (20) writes. A client makes ``--writes`` (200) sequential
``POST`` writes; a pusher-js subscriber counts the events that arrive. The server is then
stopped gracefully (SIGTERM: the last worker flushes at exit).

Reported: events lost, the longest a write waited (a recycled single worker holds
requests while it flushes), and every exit report the workers logged.

    python benchmarks/recycle_outage.py [--writes 200] [--max-requests 50] [--outage 4]
                                        [--workers 1] [--jitter 0] [--preload]

Runs on a throw-away SQLite database (``--database-url`` for another one; it is migrated).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time

import common  # also puts the repository and the example project on sys.path

from tests.e2e.gunicorn_server import GunicornServer
from tests.e2e.harness import Soketi, Subscriber
from tests.e2e.proxy import FaultyProxy


def main() -> None:
    """Run the scenario and print its report."""
    parser = argparse.ArgumentParser(description="Worker recycling during a Pusher outage (issue 10, item 2).")
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--before", type=int, default=20, help="writes before the outage starts")
    parser.add_argument("--outage", type=float, default=4.0, help="seconds Pusher is unreachable")
    parser.add_argument("--max-requests", type=int, default=50, help="gunicorn --max-requests (0: no recycling)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--jitter", type=int, default=0, help="gunicorn --max-requests-jitter")
    parser.add_argument("--preload", action="store_true", help="gunicorn --preload (workers start without importing)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the events at the end")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='recycle-bench-')}/db.sqlite3"
    token = _prepare(database_url)
    print("Machine:", common.machine_description())
    with Soketi() as soketi, Subscriber(soketi, ["hotel-recycle"]) as subscriber, FaultyProxy(soketi.port) as proxy:
        subscriber.wait_subscribed("hotel-recycle")
        env = {
            "DATABASE_URL": database_url,
            "OFFER_REALTIME_DELIVERY": "background",
            "DJANGO_DEBUG": "0",
            **{k: "false" if v is False else str(v) for k, v in soketi.pusher_settings().items()},
            "PUSHER_PORT": str(proxy.port),
        }
        gunicorn_args = [
            "--workers",
            str(args.workers),
            "--max-requests",
            str(args.max_requests),
            "--max-requests-jitter",
            str(args.jitter),
            "--graceful-timeout",
            "30",
            "--timeout",
            "60",
            *(["--preload"] if args.preload else []),
        ]
        server = GunicornServer(env, gunicorn_args).start()
        waits, titles = [], []
        timer = threading.Timer(args.outage, proxy.set_mode, ("pass",))
        try:
            for i in range(args.writes):
                if i == args.before:
                    proxy.set_mode("refuse")
                    timer.start()
                title = f"recycle {i}"
                started = time.monotonic()
                status, _ = server.request(
                    "POST",
                    "/api/staff/hotel/recycle/offers/",
                    token=token,
                    body={"title": title, "short_description": "x"},
                )
                waits.append(time.monotonic() - started)
                if status == 201:
                    titles.append(title)
        finally:
            if timer.is_alive() or args.before < args.writes:
                timer.join()
            server.stop(timeout=60)
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline:
            if len({e["data"]["offer"]["title"] for e in subscriber.events}) >= len(titles):
                break
            time.sleep(0.2)
        received = {e["data"]["offer"]["title"] for e in subscriber.events}
    reports = [
        line.split(" offer_realtime ", 1)[-1]
        for line in server.output.splitlines()
        if "Sender stopped" in line or "Exiting with" in line
    ]
    lost = len(set(titles) - received)
    common.print_table(
        ["measure", "value"],
        [
            [
                "gunicorn",
                f"{args.workers} worker(s), --max-requests {args.max_requests}, jitter {args.jitter}"
                + (", --preload" if args.preload else ""),
            ],
            ["database", database_url.split(":", 1)[0]],
            ["outage", f"{args.outage:g} s, after {args.before} writes"],
            ["writes succeeded", f"{len(titles)}/{args.writes}"],
            ["events lost", f"{lost}/{len(titles)}"],
            ["longest write", f"{max(waits):.2f} s"],
            ["exit reports", len(reports)],
        ],
    )
    for line in reports:
        print("  ", line.strip())


def _prepare(database_url: str) -> str:
    """Migrate the database and create hotel ``recycle`` with a staff user; return its token."""
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="example_project.settings")
    os.environ["OFFER_REALTIME_DELIVERY"] = "inline"  # no events from the setup itself (no credentials)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections
    from rest_framework.authtoken.models import Token

    from hotel.models import Hotel, StaffProfile

    call_command("migrate", verbosity=0)
    hotel, _ = Hotel.objects.get_or_create(slug="recycle", defaults={"name": "Recycle"})
    user, _ = get_user_model().objects.get_or_create(username="recycle-staff")
    StaffProfile.objects.update_or_create(user=user, defaults={"hotel": hotel})
    token, _ = Token.objects.get_or_create(user=user)
    connections.close_all()
    return token.key


if __name__ == "__main__":
    main()
