"""``manage.py offer_realtime_requeue_stale``: give a dead worker's offer deliveries to another.

``django-tasks-db`` marks a task RUNNING when a worker claims it and never looks at it
again; a worker killed mid-delivery leaves it RUNNING for good. This command puts
offer_realtime's tasks that have been RUNNING longer than ``--older-than`` seconds back
to READY, so a live worker delivers them: at-least-once delivery, with each event's
``event_id`` unchanged so a client drops a repeat. Run it periodically (cron, or a
scheduler) with a threshold above the longest real delivery
(``TIMEOUT`` x ``RETRY_ATTEMPTS`` is a safe bound when retries wait in the worker).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone


class Command(BaseCommand):
    """Requeue offer_realtime tasks stuck in RUNNING (django-tasks-db only)."""

    help = "Put offer_realtime tasks RUNNING for longer than --older-than seconds back to READY."

    def add_arguments(self, parser: CommandParser) -> None:
        """--older-than: how long a delivery may run before it counts as abandoned."""
        parser.add_argument("--older-than", type=float, default=300.0, help="seconds (default 300)")

    def handle(self, *args: Any, older_than: float, **options: Any) -> None:
        """Requeue and report how many."""
        try:
            from django_tasks_db.models import DBTaskResult
        except ImportError as exc:
            raise CommandError("django-tasks-db is not installed: nothing to requeue.") from exc
        try:
            from django.tasks import TaskResultStatus
        except ImportError:
            from django_tasks import TaskResultStatus  # type: ignore[no-redef,unused-ignore]

        cutoff = timezone.now() - datetime.timedelta(seconds=older_than)
        count = DBTaskResult.objects.filter(
            status=TaskResultStatus.RUNNING,
            task_path__startswith="offer_realtime.tasks.",
            started_at__lt=cutoff,
        ).update(status=TaskResultStatus.READY, started_at=None)
        if options["verbosity"] >= 1:
            self.stdout.write(
                f"Requeued {count} offer_realtime task(s) running since before {cutoff:%Y-%m-%d %H:%M:%S}."
            )
