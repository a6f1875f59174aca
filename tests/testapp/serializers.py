"""Serializer for the test host's Promotion."""

from rest_framework import serializers

from tests.testapp.models import Deal, Promotion


class PromotionSerializer(serializers.ModelSerializer):
    """A promotion as the events carry it."""

    class Meta:
        model = Promotion
        fields = ["id", "headline", "banner", "extra"]


class DealSerializer(serializers.ModelSerializer):
    """A deal as the real host serializes its offer: ``photo`` writable, ``photo_url`` its URL."""

    photo_url = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()

    class Meta:
        model = Deal
        fields = ["id", "title", "details_html", "photo", "photo_url", "image_key", "image_url", "is_active"]
        read_only_fields = ["id"]

    def get_photo_url(self, deal: Deal) -> str | None:
        """``deal.photo.url`` when there is a photo, as the real host's serializer does."""
        return deal.photo.url if deal.photo else None

    def get_image_url(self, deal: Deal) -> str | None:
        """The URL of ``image_key`` (the custom photo kind), as the PHOTO_URL callable gives it."""
        from tests.testapp.photos import image_key_url

        return image_key_url(deal)
