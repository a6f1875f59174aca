"""A writer process of the convergence test: random writes to one hotel's offers, events to a file.

``python -m tests.browser.writer OUT --seed N --ops K --start EPOCH`` (with
``DJANGO_SETTINGS_MODULE=tests.browser.writer_settings``) waits until ``EPOCH`` (so several
writers overlap), then makes ``K`` random writes to the offers of hotel ``killarney``, and
then each kind it has not made yet: creates (some inactive, some with a photo), edits of
one to three fields, photo uploads, edits with a new photo in the same save, cleared
photos, deletes, and moves to hotel ``galway`` and back. Writes that lose a race with the
other writer (the offer is gone) are skipped. ``OUT`` gets JSON ``{"events": [{name,
channel, data}], "done": {operation: count}, "skipped": count}``: every event sent, in the
order this process sent them.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import random
import time

import django


def png(rng: random.Random) -> bytes:
    """A tiny PNG of a random colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), tuple(rng.randrange(256) for _ in range(3))).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    """Parse the arguments, write, flush the sender, dump the events."""
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--start", type=float, default=0.0)
    args = parser.parse_args()
    django.setup()

    from django.core.files.base import ContentFile
    from django.db import DatabaseError

    from hotel.models import Hotel, Offer
    from offer_realtime import sender
    from offer_realtime.backends import memory

    rng = random.Random(args.seed)
    killarney = Hotel.objects.get(slug="killarney")
    galway = Hotel.objects.get(slug="galway")
    name = f"w{args.seed}"
    counter = iter(range(10**6))

    def any_offer(hotel=killarney):
        ids = list(Offer.objects.filter(hotel=hotel).values_list("pk", flat=True))
        return Offer.objects.get(pk=rng.choice(ids)) if ids else None

    def new_photo(offer) -> None:
        offer.photo.save(f"{name}-{next(counter)}.png", ContentFile(png(rng)), save=False)

    def edit(offer) -> list[str]:
        changes = {
            "title": lambda: f"{name} title {next(counter)}",
            "short_description": lambda: f"{name} short {next(counter)}",
            "details_text": lambda: rng.choice(["", f"{name} details {next(counter)}"]),
            "tag": lambda: rng.choice(["", "Spa", "Golf", f"{name}-{next(counter)}"]),
            "is_active": lambda: not offer.is_active,
            "sort_order": lambda: rng.randrange(5),
            "valid_to": lambda: rng.choice([None, datetime.date(2027, 1, 1) + datetime.timedelta(rng.randrange(300))]),
            "book_now_url": lambda: rng.choice(["", f"https://example.com/{name}/{next(counter)}"]),
        }
        fields = rng.sample(sorted(changes), rng.randint(1, 3))
        for field in fields:
            setattr(offer, field, changes[field]())
        return fields

    def create() -> bool:
        offer = Offer(
            hotel=killarney,
            title=f"{name} new {next(counter)}",
            short_description="New",
            is_active=rng.random() < 0.8,
            sort_order=rng.randrange(5),
        )
        if rng.random() < 0.4:
            new_photo(offer)
        offer.save()
        return True

    def update() -> bool:
        offer = any_offer()
        if offer is None:
            return False
        offer.save(update_fields=edit(offer))
        return True

    def photo() -> bool:
        offer = any_offer()
        if offer is None:
            return False
        new_photo(offer)
        offer.save(update_fields=["photo"])
        return True

    def edit_and_photo() -> bool:
        offer = any_offer()
        if offer is None:
            return False
        fields = edit(offer)
        new_photo(offer)
        offer.save(update_fields=[*fields, "photo"])
        return True

    def clear_photo() -> bool:
        offers = Offer.objects.filter(hotel=killarney).exclude(photo="").exclude(photo=None)
        with_photo = list(offers.values_list("pk", flat=True))
        offer = Offer.objects.get(pk=rng.choice(with_photo)) if with_photo else None
        if offer is None:
            return False
        offer.photo = None
        offer.save(update_fields=["photo"])
        return True

    def delete() -> bool:
        # Keep a few offers to work on.
        offer = any_offer() if Offer.objects.filter(hotel=killarney).count() > 3 else None
        if offer is None:
            return False
        offer.delete()
        return True

    def move(source, target) -> bool:
        offer = any_offer(source)
        if offer is None:
            return False
        offer.hotel = target
        offer.save(update_fields=["hotel"])
        return True

    def move_away() -> bool:
        return move(killarney, galway)

    def move_back() -> bool:
        return move(galway, killarney)

    operations = {
        create: 12,
        update: 30,
        photo: 18,
        edit_and_photo: 8,
        clear_photo: 6,
        delete: 8,
        move_away: 5,
        move_back: 5,
    }
    done: dict[str, int] = {}
    skipped = 0

    def attempt(operation) -> None:
        nonlocal skipped
        try:
            if operation():
                done[operation.__name__] = done.get(operation.__name__, 0) + 1
        except (Offer.DoesNotExist, DatabaseError):
            skipped += 1  # the other writer deleted it in between
        time.sleep(rng.random() * 0.005)

    time.sleep(max(0.0, args.start - time.time()))
    for _ in range(args.ops):
        attempt(rng.choices(list(operations), list(operations.values()))[0])
    # Every kind of write at least once (a few tries each), whatever the dice and the races said.
    for operation in operations:
        for _ in range(5):
            if done.get(operation.__name__):
                break
            attempt(operation)
    assert sender.get_sender().flush(20), "the sender did not finish"
    events = [{"name": e.name, "channel": e.channel, "data": e.data} for e in memory.outbox]
    with open(args.out, "w") as out:
        json.dump({"events": events, "done": done, "skipped": skipped}, out)


if __name__ == "__main__":
    main()
