"""Serializers of the staff API; ``OfferStaffSerializer`` is also what the events carry."""

from rest_framework import serializers

from hotel.models import Offer


class OfferStaffSerializer(serializers.ModelSerializer):
    """An offer as staff see it (the ``offer`` of offer-created and offer-updated)."""

    photo_url = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        fields = [
            "id",
            "title",
            "short_description",
            "details_text",
            "details_html",
            "valid_from",
            "valid_to",
            "tag",
            "book_now_url",
            "photo",
            "photo_url",
            "sort_order",
            "is_active",
            "created_at",
        ]
        read_only_fields = ["id", "photo", "created_at"]

    def get_photo_url(self, offer: Offer) -> str | None:
        """The photo's URL as the storage gives it (absolute on Cloudinary), or None."""
        return offer.photo.url if offer.photo else None
