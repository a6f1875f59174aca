"""The hotel domain of the example project: hotels, their staff and their offers."""

from typing import Any

from django.conf import settings
from django.db import models


class Hotel(models.Model):
    """A hotel; its slug names its Pusher channel (``hotel-<slug>``)."""

    name = models.CharField(max_length=200)
    # ASCII only and short: the slug becomes part of a Pusher channel name.
    slug = models.SlugField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class StaffProfile(models.Model):
    """Links a user to the one hotel they work for (``request.user.staff_profile.hotel``)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    hotel = models.ForeignKey(Hotel, on_delete=models.CASCADE, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} @ {self.hotel}"


class Offer(models.Model):
    """A special offer a hotel shows its guests; every change is broadcast to staff.

    The fields, their names, types and options are the real hotel backend's (the one the
    staff frontend was written for), except the photo: an ``ImageField`` here, stored on
    local media or on Cloudinary through django-cloudinary-storage, where that project
    has a ``cloudinary.models.CloudinaryField``.
    """

    hotel = models.ForeignKey(Hotel, on_delete=models.CASCADE, related_name="offers")
    title = models.CharField(max_length=200)
    short_description = models.TextField()
    details_text = models.TextField(blank=True)
    # Rich HTML, can be long: the one field that can push an event over Pusher's 10 KB.
    details_html = models.TextField(blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    tag = models.CharField(max_length=50, blank=True)
    book_now_url = models.URLField(blank=True)
    photo = models.ImageField(upload_to="offers/", blank=True, null=True)
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sort_order", "-created_at"]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save; an offer loaded from the database is only ever updated, never re-inserted.

        Django's ``save()`` of an existing instance runs ``UPDATE`` and, when that matched no
        row, ``INSERT``: an edit racing a delete would bring the deleted offer back with the
        same id (after its photo file was deleted and ``offer-deleted`` was sent). Here such
        a save raises ``DatabaseError("Forced update did not affect any rows.")`` instead.
        A new instance, even with an explicit id, is saved as Django always does.
        """
        if self.pk is not None and not self._state.adding and not kwargs.get("force_insert"):
            kwargs["force_update"] = True
        super().save(*args, **kwargs)
