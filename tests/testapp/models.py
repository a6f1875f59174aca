"""A host with other names than the seed's, to test OFFER_REALTIME configuration."""

from cloudinary.models import CloudinaryField
from django.db import models


class Venue(models.Model):
    """Plays the hotel; its channel key is ``code``."""

    code = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.code


class Promotion(models.Model):
    """Plays the offer, with an image field called ``banner`` and a JSON field."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE)
    headline = models.CharField(max_length=100)
    banner = models.FileField(upload_to="banners/", blank=True)
    extra = models.JSONField(default=dict, blank=True)
    touched_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.headline

    @property
    def title(self) -> str:
        """The offer title the events carry."""
        return self.headline


class Deal(models.Model):
    """Plays the real hotel backend's offer: its photo is a ``cloudinary.models.CloudinaryField``.

    ``image_key`` stands for any other kind of photo field (a key into some CDN), for
    the ``PHOTO_URL`` setting.
    """

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE, related_name="deals")
    title = models.CharField(max_length=200)
    details_html = models.TextField(blank=True)
    photo = CloudinaryField("offer_photo", blank=True, null=True)
    image_key = models.CharField(max_length=100, blank=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.title
