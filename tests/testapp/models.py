"""A host with other names than the seed's, to test OFFER_REALTIME configuration."""

from django.db import models


class Venue(models.Model):
    """Plays the hotel; its channel key is ``code``."""

    code = models.SlugField(unique=True)


class Promotion(models.Model):
    """Plays the offer, with an image field called ``banner`` and a JSON field."""

    venue = models.ForeignKey(Venue, on_delete=models.CASCADE)
    headline = models.CharField(max_length=100)
    banner = models.FileField(upload_to="banners/", blank=True)
    extra = models.JSONField(default=dict, blank=True)
    touched_at = models.DateTimeField(auto_now=True)

    @property
    def title(self) -> str:
        """The offer title the events carry."""
        return self.headline
