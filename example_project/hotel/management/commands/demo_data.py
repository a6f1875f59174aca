"""``manage.py demo_data``: hotels, staff with API tokens, and offers to try the staff API with.

Idempotent: running it again finds what it created before (same users, same tokens,
no duplicate offers) and prints the same tokens.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from hotel.models import Hotel, Offer, StaffProfile

#: (slug, name, staff username, offers as (title, short description, tag, sort order))
DEMO_HOTELS = [
    (
        "killarney",
        "Killarney Park Hotel",
        "killarney-staff",
        [
            ("Spa Weekend", "Two nights with breakfast and a spa treatment", "Spa", 1),
            ("Golf Break", "Three nights and two rounds at the lakeside course", "Golf", 2),
            ("Midweek Escape", "Any two nights Sunday to Thursday", "Midweek", 3),
        ],
    ),
    (
        "galway",
        "Galway Bay Hotel",
        "galway-staff",
        [
            ("Seafood Supper", "Dinner for two on the bay", "Dining", 1),
        ],
    ),
]


class Command(BaseCommand):
    """Create (or find again) the demo hotels, their staff tokens and offers, and print how to call the API."""

    help = (
        "Create demo hotels 'killarney' and 'galway', a staff user with an API token for each, "
        "and a few offers; print the tokens and a ready-to-paste curl. Safe to run repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--base-url`` for the printed curl command."""
        parser.add_argument(
            "--base-url",
            default="http://localhost:8000",
            help="Where the development server listens, for the printed curl (default: %(default)s).",
        )

    def handle(self, *args: Any, base_url: str, **options: Any) -> None:
        """Create the demo data in one transaction, then print tokens and a curl."""
        with transaction.atomic():
            tokens = {slug: self._hotel(slug, name, username, offers) for slug, name, username, offers in DEMO_HOTELS}

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for slug, name, username, _ in DEMO_HOTELS:
            self.stdout.write(f"  {name} ({slug}): staff user {username}, token {tokens[slug]}")
        base = base_url.rstrip("/")
        self.stdout.write("\nCreate an offer in killarney (events go to channel hotel-killarney):\n")
        self.stdout.write(
            f"curl -X POST {base}/api/staff/hotel/killarney/offers/ \\\n"
            f'  -H "Authorization: Token {tokens["killarney"]}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d \'{"title":"Test Offer","short_description":"Test","is_active":true}\''
        )
        self.stdout.write("\nThe galway token gets 403 on every killarney URL; use it to try the tenancy rules.")

    def _hotel(self, slug: str, name: str, username: str, offers: list[tuple[str, str, str, int]]) -> str:
        hotel, _ = Hotel.objects.get_or_create(slug=slug, defaults={"name": name})
        user, created = get_user_model().objects.get_or_create(username=username)
        if created:
            # API access is by token; nobody should log in with a guessable demo password.
            user.set_unusable_password()
            user.save(update_fields=["password"])
        StaffProfile.objects.update_or_create(user=user, defaults={"hotel": hotel})
        token, _ = Token.objects.get_or_create(user=user)
        today = timezone.localdate()
        for title, short_description, tag, sort_order in offers:
            Offer.objects.get_or_create(
                hotel=hotel,
                title=title,
                defaults={
                    "short_description": short_description,
                    "tag": tag,
                    "sort_order": sort_order,
                    "valid_from": today,
                    "valid_to": today + datetime.timedelta(days=90),
                },
            )
        return token.key
