"""``manage.py offer_realtime_ping [--hotel SLUG]``: is Pusher reachable with these settings?"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from offer_realtime.diagnostics import PING_EVENT, ping


class Command(BaseCommand):
    """Send a test event with the configured backend and credentials, and say what happened."""

    help = "Send a test event with the configured backend and credentials; exit 1 on failure."

    def add_arguments(self, parser: CommandParser) -> None:
        """--hotel: whose channel the ping goes to."""
        parser.add_argument("--hotel", default="ping", help="hotel slug whose channel gets the ping (default: ping)")

    def handle(self, *args: Any, hotel: str, **options: Any) -> None:
        """Run the ping and report it."""
        result = ping(hotel)
        if not result.ok:
            raise CommandError(f"{PING_EVENT} on {result.channel} via {result.backend} failed. {result.error}")
        if options["verbosity"] >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {PING_EVENT} sent on {result.channel} via {result.backend} in {result.elapsed_ms:.1f} ms."
                )
            )
