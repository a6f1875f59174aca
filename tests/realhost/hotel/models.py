"""The real host's hotel models, in the shape REAL-HOST.md records (written for the tests).

Only ``Offer`` matters to offer_realtime; ``Hotel`` and ``Staff`` carry a few of the
host's unrelated fields (a Cloudinary logo among them) so the app meets a realistic
neighbourhood, not a minimal one.
"""

from cloudinary.models import CloudinaryField
from django.conf import settings
from django.db import models


class Hotel(models.Model):
    """A hotel; its slug names the staff URLs and the Pusher channel ``hotel-<slug>``."""

    name = models.CharField(max_length=255)
    slug = models.SlugField(unique=True)
    subdomain = models.CharField(max_length=100, blank=True)
    logo = CloudinaryField("logo", blank=True, null=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Staff(models.Model):
    """A staff member of one hotel, reachable as ``request.user.staff_profile``."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile")
    hotel = models.ForeignKey(Hotel, on_delete=models.CASCADE, related_name="staff_members")
    department = models.CharField(max_length=100, blank=True)
    is_on_duty = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"{self.user} @ {self.hotel}"


class Offer(models.Model):
    """A special offer shown on the hotel's public page and managed by its staff."""

    hotel = models.ForeignKey(Hotel, on_delete=models.CASCADE, related_name="offers")
    title = models.CharField(max_length=200)
    short_description = models.TextField()
    details_text = models.TextField(blank=True)
    details_html = models.TextField(blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    tag = models.CharField(max_length=50, blank=True)
    book_now_url = models.URLField(blank=True)
    photo = CloudinaryField("offer_photo", blank=True, null=True)
    sort_order = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sort_order", "-created_at"]

    def __str__(self) -> str:
        return f"{self.title} ({self.hotel.name})"
