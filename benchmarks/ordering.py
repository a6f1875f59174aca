"""Per-offer ordering across processes (offer_realtime.ordering): what it fixes, what it costs.

Three parts, each comparing ``ORDERING`` on and off, the variants interleaved in a fresh
random order every round (so load on the machine hits both alike), on PostgreSQL:

1. **Ghosts** (the bug): per round a ``manage.py shell`` script (its own process and
   background sender) edits each of ``--offers`` offers with the ORM and at once deletes
   it through the API of a gunicorn server with two sync workers. The app reaches soketi
   through ``--delay-ms`` of delay, as it reaches a remote Pusher. A pusher-js
   subscriber records what arrives; the real frontend's public view
   (``tests/e2e/frontend_oracle.py``) is replayed from it, and every deleted offer it
   still shows is a ghost. Both the script and the server run with ``ORDERING`` on, or
   both off.
2. **Latency** (the cost): commit -> pusher-js receipt of a POST's ``offer-created``
   and a PATCH's ``offer-updated``, one gunicorn worker per variant (``inline`` and
   ``background``, each with ``ORDERING`` on and off), waiting for each event before
   the next request (no contention: the lock's own cost).
3. **Lock round trip**: ``offers_locked`` of one offer and of a batch of ten, taken and
   released in this process on an idle database.

    python benchmarks/ordering.py [--rounds 10] [--offers 12] [--delay-ms 30] [--latency-rounds 100]

Set ``BENCH_DATABASE_URL`` to use another database than ``offer_bench`` (dropped and
created again).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import common

MODES = ("inline", "background")


def main() -> None:
    """Run the three parts and print their tables."""
    parser = argparse.ArgumentParser(description="Per-offer ordering across processes: ghosts and cost.")
    parser.add_argument("--rounds", type=int, default=10, help="ghost rounds per variant")
    parser.add_argument("--offers", type=int, default=12, help="offers edited and deleted per ghost round")
    parser.add_argument("--latency-rounds", type=int, default=100, help="POST + PATCH per latency variant")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--lock-iterations", type=int, default=2000)
    parser.add_argument(
        "--delay-ms",
        type=float,
        default=30.0,
        help="ghost part: delay between the app and soketi, as to a remote Pusher (0: none)",
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    print("Machine:", common.machine_description())
    common.ensure_node_modules()
    common.prepare_database()
    common.django_setup()
    with common.Soketi() as soketi:
        pusher = common.pusher_env(soketi.pusher_settings())
        proxy = common.DelayProxy(soketi.port, args.delay_ms) if args.delay_ms else None
        remote = common.pusher_env(proxy.pusher_settings(soketi)) if proxy else pusher
        ghost_slugs = {on: f"ghost-{'on' if on else 'off'}" for on in (True, False)}
        latency_slugs = {(mode, on): f"lat-{mode}-{'on' if on else 'off'}" for mode in MODES for on in (True, False)}
        tokens = {slug: common.staff_hotel(slug) for slug in [*ghost_slugs.values(), *latency_slugs.values()]}
        lock_times = _lock_round_trips(args.lock_iterations)
        common.close_db_connections()
        servers: dict = {}
        try:
            for on, slug in ghost_slugs.items():
                servers[slug] = common.DjangoServer(
                    f"server-{slug}",
                    workers=2,
                    env={**remote, "OFFER_REALTIME_DELIVERY": "background", "BENCH_ORDERING": int(on)},
                )
            for (mode, on), slug in latency_slugs.items():
                servers[slug] = common.DjangoServer(
                    f"server-{slug}", env={**pusher, "OFFER_REALTIME_DELIVERY": mode, "BENCH_ORDERING": int(on)}
                )
            channels = [f"hotel-{slug}" for slug in servers]
            with common.Subscriber(soketi, channels) as subscriber:
                for channel in channels:
                    subscriber.wait_subscribed(channel)
                ghosts = _ghost_rounds(subscriber, servers, tokens, ghost_slugs, remote, args, rng)
                latencies = _latency_rounds(subscriber, servers, tokens, latency_slugs, args, rng)
        finally:
            for process in [*servers.values(), *([proxy] if proxy else [])]:
                process.stop()

    print(
        f"\n1. Ghosts on the real public view: a manage.py shell script edits {args.offers} offers, each deleted "
        f"through the API (gunicorn, 2 workers) right after; {args.delay_ms:g} ms between the app and soketi; "
        f"{args.rounds} rounds per variant:\n"
    )
    rows = []
    for on in (True, False):
        per_round = ghosts[on]
        rows.append(
            [
                "on" if on else "off",
                len(per_round),
                sum(per_round),
                sum(1 for g in per_round if g),
                f"{sum(per_round) / (len(per_round) * args.offers):.1%}",
            ]
        )
    common.print_table(["ORDERING", "rounds", "ghosts", "rounds with a ghost", "ghosts per deleted offer"], rows)

    print(
        f"\n2. Commit -> pusher-js receipt in ms, {args.latency_rounds} POSTs and {args.latency_rounds} PATCHes per "
        "variant, one writer (no contention):\n"
    )
    rows = []
    for mode in MODES:
        for on in (True, False):
            s = common.summarize(latencies[(mode, on)])
            rows.append([mode, "on" if on else "off", s["n"], s["median"], s["p99"], s["max"]])
    common.print_table(["mode", "ORDERING", "events", "median", "p99", "max"], rows)

    print(f"\n3. offers_locked() taken and released, {args.lock_iterations} times, idle PostgreSQL, in µs:\n")
    rows = [[what, statistics.median(times), common.percentile(times, 99)] for what, times in lock_times.items()]
    common.print_table(["offers", "median", "p99"], rows)


def _lock_round_trips(iterations: int) -> dict[str, list[float]]:
    from django.db import connection

    from offer_realtime import ordering

    connection.ensure_connection()
    times: dict[str, list[float]] = {"1": [], "10": []}
    for i in range(iterations):
        for what, pks in (("1", [i]), ("10", list(range(i * 10, i * 10 + 10)))):
            started = time.perf_counter()
            with ordering.offers_locked("default", "hotel.offer", pks, timeout=1) as held:
                pass
            times[what].append((time.perf_counter() - started) * 1e6)
            assert held.kind == "postgresql" and not held.missed, held
    return times


SCRIPT = """
import http.client
from hotel.models import Offer

for offer_id in {ids!r}:
    offer = Offer.objects.get(pk=offer_id)
    offer.title += ", last hours"
    offer.save()  # this process's sender sends its offer-updated
    conn = http.client.HTTPConnection("127.0.0.1", {port}, timeout=60)
    auth = {{"Authorization": "Token {token}"}}
    conn.request("DELETE", "/api/staff/hotel/{slug}/offers/%d/" % offer_id, headers=auth)
    assert conn.getresponse().status == 204
    conn.close()
"""  # at exit its sender sends what it holds (FLUSH_TIMEOUT)


def _ghost_rounds(subscriber, servers, tokens, slugs, pusher, args, rng) -> dict[bool, list[int]]:
    import subprocess
    import sys

    from tests.e2e.frontend_oracle import PublicView

    ghosts: dict[bool, list[int]] = {True: [], False: []}
    started = time.monotonic()
    for round_no in range(args.rounds):
        for on in common.shuffled([True, False], rng):
            slug, token = slugs[on], tokens[slugs[on]]
            port, channel = servers[slug].port, f"hotel-{slug}"
            ids = []
            for n in range(args.offers):
                status, offer, _ = common.call(
                    port, "POST", common.offers_path(slug), token, common.new_offer_body(f"Flash sale {n}")
                )
                assert status == 201, (status, offer)
                ids.append(offer["id"])
            _wait_all(subscriber, channel, "offer-created", ids)
            env = common.django_env(
                **pusher, BENCH_REALTIME_ENABLED=1, OFFER_REALTIME_DELIVERY="background", BENCH_ORDERING=int(on)
            )
            script = subprocess.run(
                [
                    sys.executable,
                    str(common.EXAMPLE / "manage.py"),
                    "shell",
                    "-v",
                    "0",
                    "-c",
                    SCRIPT.format(ids=ids, port=port, slug=slug, token=token),
                ],
                cwd=common.EXAMPLE,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert script.returncode == 0, script.stdout + script.stderr
            _wait_all(subscriber, channel, "offer-deleted", ids)
            time.sleep(0.5)  # the script has exited (its sender flushed): its last events are on their way
            view = PublicView([], fetch=list)
            wanted = set(ids)
            view.apply_all(
                m for m in subscriber.events if m["channel"] == channel and common.event_offer_id(m) in wanted
            )
            ghosts[on].append(len(set(view.shown()) & wanted))
        print(f"  ghost round {round_no + 1}/{args.rounds} ({time.monotonic() - started:.0f} s)", flush=True)
    return ghosts


def _wait_all(subscriber, channel, name, ids, timeout=30.0) -> None:
    wanted = set(ids)

    def find(messages):
        seen = {
            common.event_offer_id(m)
            for m in messages
            if m.get("type") == "event" and m["channel"] == channel and m["event"] == name
        }
        return True if wanted <= seen else None

    subscriber.wait_for(find, timeout, f"{name} of {len(ids)} offers")


def _latency_rounds(subscriber, servers, tokens, slugs, args, rng) -> dict:
    latencies: dict = {variant: [] for variant in slugs}
    total = args.warmup + args.latency_rounds
    started = time.monotonic()
    for round_no in range(total):
        for variant in common.shuffled(list(slugs), rng):
            slug = slugs[variant]
            port, token, channel = servers[slug].port, tokens[slug], f"hotel-{slug}"
            status, offer, _ = common.call(
                port, "POST", common.offers_path(slug), token, common.new_offer_body(f"Offer {round_no}")
            )
            assert status == 201, (status, offer)
            event = _wait_event(subscriber, channel, "offer-created", offer["id"])
            if round_no >= args.warmup:
                latencies[variant].append(event["received_at_ms"] - common.changed_at_ms(event))
            status, _, _ = common.call(
                port, "PATCH", common.offers_path(slug, offer["id"]), token, {"title": f"Changed {round_no}"}
            )
            assert status == 200, status
            event = _wait_event(subscriber, channel, "offer-updated", offer["id"])
            if round_no >= args.warmup:
                latencies[variant].append(event["received_at_ms"] - common.changed_at_ms(event))
        if round_no % 20 == 19:
            print(f"  latency round {round_no + 1}/{total} ({time.monotonic() - started:.0f} s)", flush=True)
    return latencies


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

    return subscriber.wait_for(find, timeout, f"{name} of offer {offer_id}")


if __name__ == "__main__":
    main()
