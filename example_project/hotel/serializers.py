"""Serializers of the staff API; ``OfferStaffSerializer`` is also what the events carry."""

from rest_framework import serializers

from hotel.models import Offer


class OfferStaffSerializer(serializers.ModelSerializer):
    """An offer as staff see it (the ``offer`` of offer-created and offer-updated)."""

    hotel = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    photo_url = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        fields = [
            "id",
            "hotel",
            "title",
            "short_description",
            "details",
            "price",
            "valid_from",
            "valid_until",
            "photo",
            "photo_url",
            "is_active",
            "sort_order",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "hotel", "photo", "photo_url", "created_at", "updated_at"]

    def get_photo_url(self, offer: Offer) -> str | None:
        """The photo's URL as the storage gives it (absolute on Cloudinary), or None."""
        return offer.photo.url if offer.photo else None
