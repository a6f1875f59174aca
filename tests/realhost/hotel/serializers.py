"""The host's offer serializer: its data is what offer_realtime broadcasts."""

from rest_framework import serializers

from hotel.models import Offer


class OfferStaffSerializer(serializers.ModelSerializer):
    """Every field of an offer for its staff.

    ``photo`` is writable: DRF has no mapping for a CloudinaryField and falls back to a
    ``ModelField``, which hands an uploaded file to the model (its ``pre_save`` uploads
    it) and reads the stored value as ``image/upload/v<version>/<public_id>.<format>``.
    """

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
        read_only_fields = ["id", "created_at"]

    def get_photo_url(self, obj: Offer) -> str | None:
        """The photo's Cloudinary URL, or None without a photo."""
        if obj.photo:
            return obj.photo.url
        return None
