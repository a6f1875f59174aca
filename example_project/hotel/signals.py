"""Storage housekeeping for offers: a deleted offer's photo leaves storage with it.

Django never deletes a FileField's file. The photo is deleted only after the
deletion commits, so a rolled-back delete keeps an intact offer with its photo.
(Photo replacement cleans up in :func:`hotel.uploads.replace_offer_photo`.)
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete

from hotel.models import Offer
from hotel.uploads import delete_stored_file


def delete_photo_of_deleted_offer(sender: type[Offer], instance: Offer, using: str, **kwargs: Any) -> None:
    """After the deletion of ``instance`` commits, delete its photo file."""
    if instance.photo and instance.photo.name:
        transaction.on_commit(
            partial(delete_stored_file, instance.photo.storage, instance.photo.name, "deleted offer's"), using=using
        )


def connect() -> None:
    """Connect the receivers (idempotent)."""
    post_delete.connect(delete_photo_of_deleted_offer, sender=Offer, dispatch_uid="hotel.delete_photo_of_deleted_offer")
