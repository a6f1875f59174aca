"""Smoke check for the e2e harness: real soketi + real pusher-js + the Python pusher lib.

Not a pytest test (on purpose: it is a script that prints a report). Run it from the
repository root with a Python that has the ``pusher`` package::

    python tests/e2e/smoke_check.py

Exits 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.e2e import harness
from tests.e2e.harness import Soketi, Subscriber, SubscriptionError

try:
    import pusher
    from pusher.errors import PusherError
    from pusher.http import POST, Request
except ImportError:
    sys.exit(
        "The `pusher` package is missing. Use a Python that has it, e.g.:\n"
        "  python3 -m venv /tmp/e2e-venv && /tmp/e2e-venv/bin/pip install pusher\n"
        "  /tmp/e2e-venv/bin/python tests/e2e/smoke_check.py"
    )

CHANNEL = "hotel-killarney"
LATENCY_SAMPLES = 50
results: list[tuple[bool, str]] = []


def check(ok: bool, label: str, detail: Any = "") -> bool:
    """Record and print one check."""
    results.append((ok, label))
    print(f"[{'PASS' if ok else 'FAIL'}] {label}" + (f": {detail}" if detail != "" else ""), flush=True)
    return ok


def raw_post(client: pusher.Pusher, endpoint: str, params: dict[str, Any]) -> tuple[int, str]:
    """POST ``params`` to ``/apps/<id>/<endpoint>``, signed by the pusher lib, but
    without the lib's own checks and response handling: shows soketi's raw answer."""
    request = Request(client._pusher_client, POST, f"/apps/{client._pusher_client.app_id}/{endpoint}", params)
    conn = http.client.HTTPConnection(request.client.host, request.client.port, timeout=5)
    try:
        conn.request(request.method, request.signed_path, body=request.body, headers=request.headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def attempt(fn: Any, *args: Any, **kwargs: Any) -> str:
    """Call ``fn``; describe the exception it raised, or 'no error'."""
    try:
        fn(*args, **kwargs)
    except (PusherError, ValueError) as exc:
        return f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    return "no error"


def main() -> int:
    child_pids: set[int] = set()
    started = time.monotonic()
    harness.ensure_node_modules()
    print(f"node_modules ready ({time.monotonic() - started:.1f} s)")

    with Soketi() as soketi:
        t0 = time.monotonic()
        child_pids.add(soketi._proc.pid)
        print(f"soketi up: {soketi!r}")
        print("limits env:", json.dumps(harness.PUSHER_LIMITS_ENV))
        print("pusher settings:", soketi.pusher_settings())
        client = pusher.Pusher(
            app_id=soketi.app_id,
            key=soketi.key,
            secret=soketi.secret,
            host=soketi.host,
            port=soketi.port,
            ssl=False,
        )

        with Subscriber(soketi, [CHANNEL]) as sub:
            child_pids.add(sub._proc.pid)
            socket_id = sub.wait_connected()
            sub.wait_subscribed(CHANNEL)
            check(True, "subscriber connected and subscribed", f"socket_id={socket_id}")

            # 1. Basic delivery.
            payload = {"offer_id": 42, "price": "129.00", "currency": "EUR", "name": "Lakeview ☀"}
            client.trigger(CHANNEL, "offer-updated", payload)
            [event] = sub.wait_for_events(1)
            check(
                event["event"] == "offer-updated" and event["data"] == payload and event["channel"] == CHANNEL,
                "event delivered to pusher-js with parsed data",
                event,
            )

            # 2a. Payload size: exactly 10,240 bytes of JSON is accepted, one more is not.
            filler = "x" * (10240 - len(json.dumps({"blob": ""})))
            at_limit = json.dumps({"blob": filler})
            over_limit = json.dumps({"blob": filler + "x"})
            at_limit_event = {"name": "size-at-limit", "channels": [CHANNEL], "data": at_limit}
            status, body = raw_post(client, "events", at_limit_event)
            check(status == 200, f"{len(at_limit.encode())}-byte payload accepted", f"HTTP {status} {body}")
            status, body = raw_post(client, "events", {"name": "size-over", "channels": [CHANNEL], "data": over_limit})
            check(status == 413, f"{len(over_limit.encode())}-byte payload rejected by soketi", f"HTTP {status} {body}")
            error = attempt(client.trigger, CHANNEL, "size-over", {"blob": filler + "x"})
            check("PusherBadStatus: 413" in error, "pusher lib raises for the oversize payload", error)

            # 2b. Batch size: 10 events accepted, 11 rejected.
            def batch(n: int, tag: str) -> list[dict[str, Any]]:
                return [{"channel": CHANNEL, "name": f"batch-{tag}", "data": json.dumps({"i": i})} for i in range(n)]

            status, body = raw_post(client, "batch_events", {"batch": batch(11, "11")})
            check(status == 400, "batch of 11 rejected by soketi", f"HTTP {status} {body}")
            error = attempt(client.trigger_batch, batch(11, "11"))
            check("PusherBadRequest" in error, "pusher lib raises for the batch of 11", error)
            client.trigger_batch(batch(10, "10"))
            got = sub.wait_for_events(10, event="batch-10")
            check(len(got) == 10, "batch of 10 delivered", f"{len(got)} events")

            # 2c. Event name max length 200 (the lib checks it too, so go raw for soketi's answer).
            status, body = raw_post(client, "events", {"name": "e" * 201, "channels": [CHANNEL], "data": "{}"})
            check(status == 400, "201-char event name rejected by soketi", f"HTTP {status} {body}")

            # Nothing rejected may have reached the subscriber.
            time.sleep(0.5)
            names = {e["event"] for e in sub.events}
            check(
                names == {"offer-updated", "size-at-limit", "batch-10"},
                "only accepted events were delivered",
                sorted(names),
            )

            # 3. Latency: trigger() call to receipt, one event at a time.
            latencies = []
            for seq in range(LATENCY_SAMPLES):
                sent_ms = time.time() * 1000
                client.trigger(CHANNEL, "latency", {"seq": seq})
                [received] = [e for e in sub.wait_for_events(seq + 1, event="latency") if e["data"]["seq"] == seq]
                latencies.append(received["received_at_ms"] - sent_ms)
            latencies.sort()
            check(
                True,
                f"latency over {LATENCY_SAMPLES} events",
                f"median {statistics.median(latencies):.1f} ms, p90 {latencies[int(0.9 * len(latencies))]:.1f} ms, "
                f"min {latencies[0]:.1f} ms, max {latencies[-1]:.1f} ms",
            )

            # 4. Channel name max length 164 (checked by soketi when subscribing).
            long_ok, long_bad = "c" * 164, "c" * 165
            with Subscriber(soketi, [long_ok, long_bad]) as sub2:
                child_pids.add(sub2._proc.pid)
                sub2.wait_subscribed(long_ok)
                check(True, "164-char channel name subscribed")
                try:
                    sub2.wait_subscribed(long_bad)
                    check(False, "165-char channel name rejected", "it was subscribed")
                except SubscriptionError as exc:
                    check(exc.status == 4009, "165-char channel name rejected", f"status={exc.status} {exc.error}")

            check(not sub.errors, "subscriber reported no errors so far", sub.errors)

            # 5. Restart on the same port, abrupt (SIGKILL) and graceful (SIGTERM).
            # Connection errors (4200 "server closed", 1006) are expected here.
            for graceful in (False, True):
                kind = "graceful" if graceful else "abrupt"
                connections, errors_before = sub.connected_count, len(sub.errors)
                t_stop = time.monotonic()
                soketi.stop(graceful=graceful)
                stopped_in = time.monotonic() - t_stop
                port_free = harness._tcp_port_is_free(soketi.port)
                check(not soketi.is_running and port_free, f"{kind} stop, port free", f"{stopped_in:.2f} s")
                t_start = time.monotonic()
                soketi.start()
                child_pids.add(soketi._proc.pid)
                started_in = time.monotonic() - t_start
                new_id = sub.wait_connected(timeout=40, count=connections + 1)
                reconnected_in = time.monotonic() - t_stop
                sub.wait_subscribed(CHANNEL, timeout=10, count=connections + 1)
                client.trigger(CHANNEL, f"after-{kind}-restart", {"ok": True})
                sub.wait_for_events(1, event=f"after-{kind}-restart")
                check(
                    True,
                    f"{kind} restart on port {soketi.port}: client reconnected, resubscribed, received",
                    f"start took {started_in:.2f} s, reconnected {reconnected_in:.2f} s after stop, "
                    f"{len(sub.errors) - errors_before} connection errors reported, new socket_id={new_id}",
                )

        print(f"soketi session took {time.monotonic() - t0:.1f} s")

    # 6. For the record: stock soketi 1.6.1 (fix_http_status=False) answers errors with
    # HTTP 200 and the code in the body, so the pusher lib *returns* the error dict.
    with Soketi(fix_http_status=False) as stock:
        child_pids.add(stock._proc.pid)
        stock_client = pusher.Pusher(
            app_id=stock.app_id, key=stock.key, secret=stock.secret, host=stock.host, port=stock.port, ssl=False
        )
        status, body = raw_post(stock_client, "events", {"name": "big", "channels": [CHANNEL], "data": over_limit})
        returned = stock_client.trigger(CHANNEL, "big", {"blob": filler + "x"})
        check(
            status == 200 and returned.get("code") == 413,
            "stock soketi: oversize answered with HTTP 200 + error body; pusher lib does not raise",
            f"HTTP {status} {body}; trigger() returned {returned}",
        )
        returned = stock_client.trigger_batch(batch(11, "11"))
        check(returned.get("code") == 400, "stock soketi: batch of 11, trigger_batch() returned", returned)

    # 7. No child process left behind, not even as a zombie (/proc/PID would remain).
    leftovers = [pid for pid in child_pids if Path(f"/proc/{pid}").exists()]
    check(not leftovers and not harness._live_processes, f"none of {len(child_pids)} child processes left", leftovers)

    failed = [label for ok, label in results if not ok]
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
