"""Issue 10, items a-g of h-authtx: settings, channel auth, log redaction, socket-id noise,
rollbacks and task-mode fallbacks, measured in one process on a throw-away test database
(SQLite, or PostgreSQL with ``DATABASE_URL``). Needs no soketi.

Self-contained, so it also runs on a checkout from before the fixes, for the "before"
figures::

    python benchmarks/issue10_auth_tx.py [--rollbacks 20000]
    git worktree add /tmp/before 3725aa5 && cp benchmarks/issue10_auth_tx.py /tmp/before/benchmarks/
    (cd /tmp/before && PYTHONPATH=$PWD:$PWD/example_project python benchmarks/issue10_auth_tx.py)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import socket
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _path in (str(REPO / "example_project"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402 (after the sys.path and settings set-up above)

django.setup()

from django.conf import settings  # noqa: E402
from django.core import checks  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import (  # noqa: E402
    override_settings,
    setup_databases,
    setup_test_environment,
    teardown_databases,
)

BAD_VALUES = {
    "ENABLED": ["maybe", None, 2],
    "MODEL": [5, None, ""],
    "SERIALIZER": [None, 3, ""],
    "HOTEL_SLUG": [["hotel", "slug"], None, "hotel..slug"],
    "PHOTO_FIELD": [3, None, ""],
    "CHANNEL": [None, 7, ""],
    "BACKEND": [42, ["pusher"]],
    "TIMEOUT": ["3s", None, 0, -1, float("nan")],
    "IGNORE_FIELDS": [None, "updated_at", 5],
    "MAX_PAYLOAD_BYTES": ["10 KB", None, 0],
    "SOCKET_ID_HEADER": [b"X", None, ""],
    "USER_HOTEL_SLUG": [{"a": 1}, None, ""],
    "DELIVERY": [["inline"], None, 5],
    "QUEUE_SIZE": ["many", None, 0],
    "QUEUE_PUT_TIMEOUT": [[], None, -1],
    "RETRY_ATTEMPTS": [2.5, None, "five"],
    "RETRY_BASE_DELAY": ["soon", None, -1],
    "RETRY_MAX_DELAY": [None, "x"],
    "FLUSH_TIMEOUT": [{}, None],
    "TASK_BACKEND": [None, 7],
    "TASK_QUEUE": [7, None],
    "PRESENCE_USER": [5, ["a.b"]],
    "PHOTO_URL": [5, ["a.b"]],
}
BAD_PUSHER = {
    "PUSHER_PORT": ["abc", 0, 70000],
    "PUSHER_APP_ID": ["app-1", {"id": 1}],
    "PUSHER_KEY": [5],
    "PUSHER_SSL": ["maybe", None],
}


class Rollback(Exception):
    pass


def row(*cells: object) -> None:
    print("| " + " | ".join(str(c) for c in cells) + " |")


def measure_settings(hotel) -> None:
    from hotel.models import Offer
    from offer_realtime.settings import DEFAULTS

    total = load_raised = save_raised = named = 0
    ids: set[str] = set()
    cases = [
        ({"OFFER_REALTIME": {key: v}}, f"OFFER_REALTIME['{key}']")
        for key, values in BAD_VALUES.items()
        if key in DEFAULTS
        for v in values
    ]
    cases += [
        ({"PUSHER_APP_ID": "1", "PUSHER_KEY": "k", "PUSHER_SECRET": "s", key: v}, key)
        for key, values in BAD_PUSHER.items()
        for v in values
    ]
    for overrides, name in cases:
        total += 1
        override = override_settings(**overrides)
        try:
            override.enable()
        except Exception:  # noqa: BLE001 - the settings load itself raised (setting_changed receivers)
            load_raised += 1
            save_raised += 1
            continue
        try:
            try:
                messages = [m for m in checks.run_checks() if m.id.startswith("offer_realtime")]
                hits = [m for m in messages if name in m.msg]
                named += bool(hits)
                ids.update(m.id for m in hits)
            except Exception:  # noqa: BLE001
                load_raised += 1
            try:
                Offer.objects.create(hotel=hotel, title="x", short_description="x")
            except Exception:  # noqa: BLE001
                save_raised += 1
        finally:
            with contextlib.suppress(Exception):
                override.disable()
    print(f"\n### a. Settings: {total} wrong-typed or out-of-range values\n")
    row("`check` raised", "a save raised", "reported by a check naming the setting", "distinct check ids used")
    row("---", "---", "---", "---")
    row(load_raised, save_raised, named, len(ids))


def measure_auth() -> None:
    from django.contrib.auth import get_user_model
    from rest_framework.parsers import JSONParser
    from rest_framework.test import APIClient
    from rest_framework.views import APIView

    user = get_user_model().objects.create_user("killarney")
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    url = "/realtime/pusher/auth/"
    conf = {
        "OFFER_REALTIME": {"CHANNEL": "private-hotel-{hotel_slug}", "USER_HOTEL_SLUG": "username"},
        "ROOT_URLCONF": "tests.urls",
        "PUSHER_APP_ID": "1",
        "PUSHER_KEY": "k",
        "PUSHER_SECRET": "s",
    }
    good = {"socket_id": "1.2", "channel_name": "private-hotel-killarney"}
    print("\n### b, c. Channel authorization\n")
    row("request", "answers")
    row("---", "---")
    with override_settings(**conf):
        statuses = [
            client.post(url, {**good, field: bad}, format="json").status_code
            for field in good
            for bad in (123.456, 7, ["1.2"], {"id": "1.2"}, None, True)
        ]
        row("`socket_id`/`channel_name` a JSON number, list, object, null or bool (12)", summary(statuses))
        statuses = [
            client.post(url, {**good, "socket_id": s}).status_code
            for s in ("1.2.3", " 1.2", "1.2\n", "\u0661.\u0662", "1" * 200 + ".2")
        ]
        row("malformed socket id in a form (5)", summary(statuses))
        saved = APIView.parser_classes
        APIView.parser_classes = [JSONParser]  # what DEFAULT_PARSER_CLASSES = [JSONParser] does at import
        try:
            row("pusher-js's form post on a JSON-only host", summary([client.post(url, good).status_code]))
        finally:
            APIView.parser_classes = saved
        with override_settings(OFFER_REALTIME={**conf["OFFER_REALTIME"], "CHANNEL": "presence-hotel-{hotel_slug}"}):
            response = client.post(url, {"socket_id": "1.2", "channel_name": "presence-hotel-killarney"})
            body = response.json() if response.status_code == 200 else {}
            row("presence channel", f"{response.status_code}, channel_data: {'channel_data' in body}")


def summary(statuses: list[int]) -> str:
    return ", ".join(f"{statuses.count(s)} x {s}" for s in sorted(set(statuses)))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def captured(level=logging.DEBUG):
    handler, logger = Lines(), logging.getLogger("offer_realtime")
    old = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def measure_redaction_and_noise() -> None:
    from rest_framework.test import APIClient

    from offer_realtime import events, signals
    from offer_realtime.delivery import send_batch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    errors = []

    def on_failed(sender, error, **kwargs):
        errors.append(str(error))

    signals.broadcast_failed.connect(on_failed)
    with (
        captured() as records,
        override_settings(
            PUSHER_APP_ID="1",
            PUSHER_KEY="k",
            PUSHER_SECRET="s",
            PUSHER_HOST="127.0.0.1",
            PUSHER_PORT=port,
            PUSHER_SSL=False,
            OFFER_REALTIME={"DELIVERY": "inline"},
        ),
    ):
        send_batch([events.offer_deleted("hotel-a", i, "t") for i in range(3)])
        send_batch([events.offer_deleted("hotel-a", 9, "t")])
    signals.broadcast_failed.disconnect(on_failed)
    signed = [r for r in records if "auth_signature=" in r.getMessage() and "auth_signature=[" not in r.getMessage()]
    print("\n### d, e. Logs\n")
    row("measure", "count")
    row("---", "---")
    row(f"log lines with a signed query string, of {len(records)} after a refused connection", len(signed))
    row(
        f"signal errors with a signed query string, of {len(errors)}",
        sum("auth_signature=" in e and "auth_signature=[" not in e for e in errors),
    )
    with captured() as records:
        for _ in range(100):
            APIClient().get("/api/staff/hotel/killarney/offers/", HTTP_X_PUSHER_SOCKET_ID="evil")
    noisy = [r for r in records if "socket id" in r.getMessage() and r.levelno > logging.DEBUG]
    row("log lines above DEBUG for 100 anonymous requests with a malformed X-Pusher-Socket-ID", len(noisy))


def measure_rollbacks(hotel, count: int) -> None:
    from hotel.models import Offer
    from offer_realtime.changes import Change

    def live() -> int:
        return sum(1 for obj in gc.get_objects() if type(obj) is Change)

    print(f"\n### f. {count:,} rollbacks ({connection.vendor})\n")
    row("rolled back", "Change objects still held", "seconds")
    row("---", "---", "---")
    with override_settings(OFFER_REALTIME={"DELIVERY": "inline", "BACKEND": "null"}):
        offer = Offer.objects.create(hotel=hotel, title="x", short_description="x")
        gc.disable()
        try:
            for kind in ("transactions", "savepoints"):
                outer = transaction.atomic() if kind == "savepoints" else contextlib.nullcontext()
                with outer:
                    before, started = live(), time.perf_counter()
                    for i in range(count):
                        with contextlib.suppress(Rollback), transaction.atomic():
                            offer.title = f"d{i}"
                            offer.save()
                            raise Rollback
                    row(kind, live() - before, f"{time.perf_counter() - started:.1f}")
        finally:
            gc.enable()


def measure_task_mode(hotel) -> None:
    from django_tasks_db.models import DBTaskResult

    from hotel.models import Offer
    from offer_realtime import metrics, sender
    from tests.pusher_stub import PusherStub

    print("\n### g. Task mode\n")
    row("failure", "save raised", "events sent", "`task_fallback`")
    row("---", "---", "---", "---")
    table = DBTaskResult._meta.db_table
    for what, extra, break_table in (
        ("outbox insert fails (task table missing)", {"TASK_BACKEND": "db"}, True),
        ("unknown `TASK_BACKEND` at run time", {"TASK_BACKEND": "nope"}, False),
    ):
        metrics.reset()
        raised = False
        with PusherStub() as stub, override_settings(**stub.settings(), OFFER_REALTIME={"DELIVERY": "task", **extra}):
            if break_table:
                with connection.cursor() as cursor:
                    cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
            try:
                with transaction.atomic():
                    Offer.objects.create(hotel=hotel, title="committed", short_description="x")
            except Exception:  # noqa: BLE001
                raised = True
            finally:
                if break_table:
                    with connection.cursor() as cursor:
                        cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
            sender.get_sender().flush(5)
            row(what, raised, len(stub.events()), metrics.snapshot().get("task_fallback", "(no counter)"))
        sender.reset_sender()


def main() -> None:
    """Run every measurement and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rollbacks", type=int, default=20_000)
    args = parser.parse_args()
    setup_test_environment(debug=False)
    settings.LOGGING = {"version": 1}
    logging.getLogger("django").setLevel(logging.CRITICAL)
    logging.getLogger("offer_realtime").propagate = False
    logging.getLogger("offer_realtime").addHandler(logging.NullHandler())  # tables only on stdout
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from django.db import connections

        from hotel.models import Hotel

        hotel = Hotel.objects.create(name="Killarney", slug="killarney")
        measure_settings(hotel)
        measure_auth()
        measure_redaction_and_noise()
        measure_task_mode(hotel)
        measure_rollbacks(hotel, args.rollbacks)
        connections.close_all()
    finally:
        from offer_realtime import sender

        sender.reset_sender()
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
