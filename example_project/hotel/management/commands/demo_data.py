"""``manage.py demo_data``: hotels, staff, an admin and offers to try the example with.

It prints everything a person needs to use the running example: a password login for
each hotel's staff board, a password login for the admin, each staff member's API token
and a ready-to-paste ``curl`` for the server's real address.

Idempotent: running it again finds what it created before (same users, same tokens,
no duplicate offers) and prints the same logins, so they can be looked up again later.

The passwords are derived from ``SECRET_KEY`` (an HMAC of the username), not stored:
they stay the same on every run and for every fresh database of one deployment, and
nobody can compute them without the key. The example's development default key is
public, so with it anyone can, which is why the command says so: keep such a server on
this machine (it also lets anyone forge its sessions). A password someone changed (in
the admin, say) is left alone and not printed; ``--reset-passwords`` sets it back.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
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

#: The superuser for ``/admin/``.
DEMO_ADMIN = "admin"

#: The example's settings.py fallback when ``DJANGO_SECRET_KEY`` is not set.
DEVELOPMENT_SECRET_KEY = "example-project-insecure-key-for-development-only"


def default_base_url() -> str:
    """Where ``manage.py runserver`` listens: 127.0.0.1, on ``DJANGO_PORT`` (8000) as live.sh uses it."""
    return f"http://127.0.0.1:{os.environ.get('DJANGO_PORT') or '8000'}"


def demo_password(username: str) -> str:
    """The demo password of ``username``: the same on every run, secret as long as ``SECRET_KEY`` is."""
    return salted_hmac("hotel.demo_data.password", username, algorithm="sha256").hexdigest()[:16]


class Command(BaseCommand):
    """Create (or find again) the demo hotels, staff, admin and offers, and print how to log in and call the API."""

    help = (
        "Create demo hotels 'killarney' and 'galway' with a few offers, a staff user (password and API token) "
        "for each and an admin user; print their logins and a ready-to-paste curl. Safe to run repeatedly."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--base-url`` for the printed addresses, ``--reset-passwords``."""
        parser.add_argument(
            "--base-url",
            default=default_base_url(),
            help="Where the server listens, for the printed addresses and curl "
            "(default: http://127.0.0.1:$DJANGO_PORT, port 8000 when DJANGO_PORT is not set; now %(default)s).",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Set the demo users' passwords back to the printed ones, also where someone changed them.",
        )

    def handle(self, *args: Any, base_url: str, reset_passwords: bool, **options: Any) -> None:
        """Create the demo data in one transaction, then print the logins and a curl."""
        with transaction.atomic():
            staff = {
                slug: self._hotel(slug, name, username, offers, reset_passwords)
                for slug, name, username, offers in DEMO_HOTELS
            }
            admin_password = self._admin(reset_passwords)

        base = base_url.rstrip("/")
        write = self.stdout.write
        write(self.style.SUCCESS("Demo data ready.") + f" Open {base}/ in a browser: it links to every page.")
        write(f"\nStaff board {base}/staff/ (each hotel's staff see their own hotel):")
        for slug, name, username, _ in DEMO_HOTELS:
            password, token = staff[slug]
            write(f"  {name}: user {username}, password {self._shown(password)}, API token {token}")
        write(f"Admin {base}/admin/: user {DEMO_ADMIN}, password {self._shown(admin_password)}")
        write(f"Guest page (no login): {base}/hotels/killarney/offers/")
        if settings.SECRET_KEY == DEVELOPMENT_SECRET_KEY:
            write(
                self.style.WARNING(
                    "These passwords come from the public development SECRET_KEY: anyone can compute them. "
                    "Serve this database on 127.0.0.1 only, or set DJANGO_SECRET_KEY."
                )
            )
        write("\nCreate an offer in killarney with its staff token:\n")
        write(
            f"curl -X POST {base}/api/staff/hotel/killarney/offers/ \\\n"
            f'  -H "Authorization: Token {staff["killarney"][1]}" \\\n'
            '  -H "Content-Type: application/json" \\\n'
            '  -d \'{"title":"Test Offer","short_description":"Test","is_active":true}\''
        )
        write("\nThe galway token gets 403 on every killarney URL; use it to try the tenancy rules.")

    def _shown(self, password: str | None) -> str:
        return password or "(changed since demo_data set it; --reset-passwords sets it back)"

    def _hotel(
        self, slug: str, name: str, username: str, offers: list[tuple[str, str, str, int]], reset: bool
    ) -> tuple[str | None, str]:
        hotel, _ = Hotel.objects.get_or_create(slug=slug, defaults={"name": name})
        user, _ = get_user_model().objects.get_or_create(username=username)
        password = self._password(user, reset)
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
        return password, token.key

    def _admin(self, reset: bool) -> str | None:
        user, _ = get_user_model().objects.get_or_create(username=DEMO_ADMIN)
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        return self._password(user, reset)

    def _password(self, user: AbstractBaseUser, reset: bool) -> str | None:
        """The user's demo password, set when it has none yet (or ``reset``); None if someone changed it."""
        password = demo_password(user.get_username())
        # A user just created has an empty password, which Django counts as usable (it matches nothing).
        if reset or not user.password or not user.has_usable_password():
            user.set_password(password)
            user.save(update_fields=["password"])
            return password
        return password if user.check_password(password) else None
