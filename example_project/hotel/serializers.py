"""Serializers of the staff API; ``OfferStaffSerializer`` is also what the events carry."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from hotel import uploads
from hotel.models import Offer

NOT_A_FILE = "Send the photo as a file upload (multipart/form-data), or null to remove it."


class EmptyAsNullDateField(serializers.DateField):
    """A date that also accepts ``""`` as "no date" (what the staff frontend sends for an empty date input)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("help_text", 'An ISO date (YYYY-MM-DD); null or "" for none.')
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        """Treat ``""`` as ``None``; everything else as a normal nullable date."""
        return super().validate_empty_values(None if data == "" else data)


class OfferPhotoField(serializers.ImageField):
    """The offer's photo: read as its URL; written as an uploaded image file, or null to remove it.

    - an uploaded file is checked like ``upload-image`` checks it (:func:`hotel.uploads.check_photo`:
      format, size, pixels, integrity) and validates to a :class:`hotel.uploads.CheckedPhoto`;
    - ``null`` removes the photo;
    - ``""`` (an empty form field, no file chosen) and the offer's current photo echoed back
      (its stored name or URL, as a GET gave it, e.g. a PUT of the whole offer) leave it as it is;
    - any other value is refused with a message saying how to send a photo.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault(
            "help_text",
            "On write: a JPEG, PNG or WebP file (multipart/form-data) to set or replace the photo, or null to "
            "remove it. On read: the photo's URL.",
        )
        super().__init__(**kwargs)

    def get_value(self, dictionary: Any) -> Any:
        """The submitted value; an empty string (a form's empty file field) counts as not sent."""
        value = dictionary.get(self.field_name, empty)
        return empty if isinstance(value, str) and value == "" else value

    def to_internal_value(self, data: Any) -> uploads.CheckedPhoto:
        """Check an uploaded file; skip the field when ``data`` is the current photo; refuse anything else."""
        if isinstance(data, UploadedFile):
            if not data.size:
                raise serializers.ValidationError(uploads.EMPTY)
            try:
                return uploads.check_photo(data)
            except uploads.PhotoRejected as exc:
                raise serializers.ValidationError(str(exc)) from None
        if isinstance(data, str) and self._is_current_photo(data):
            raise SkipField()
        raise serializers.ValidationError(NOT_A_FILE)

    def _is_current_photo(self, value: str) -> bool:
        instance = getattr(self.parent, "instance", None)
        photo = getattr(instance, "photo", None)
        if not photo:
            return False
        current = {photo.name, photo.url}
        request = self.context.get("request")
        if request is not None:
            current.add(request.build_absolute_uri(photo.url))
        return value in current


class OfferStaffSerializer(serializers.ModelSerializer):
    """An offer as staff see it (the ``offer`` of offer-created and offer-updated), and as staff write it.

    Writes accept what the staff frontend sends: JSON with every form field (``""`` for
    empty dates and URLs, the read-only ``photo_url`` echoed back and ignored), or
    multipart with the non-empty fields and a ``photo`` file. Saving stores a new photo
    before the transaction, locks an existing offer's row for the write (so a write to an
    offer deleted meanwhile is a 404, never a re-created offer) and deletes the replaced
    or removed photo after commit (:func:`hotel.uploads.save_with_photo`).
    """

    valid_from = EmptyAsNullDateField(required=False, allow_null=True)
    valid_to = EmptyAsNullDateField(required=False, allow_null=True)
    photo = OfferPhotoField()
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

    def get_photo_url(self, offer: Offer) -> str | None:
        """The photo's URL as the storage gives it (absolute on Cloudinary), or None."""
        return offer.photo.url if offer.photo else None

    def create(self, validated_data: dict[str, Any]) -> Offer:
        """Create the offer; a new photo is stored first and removed again if the create fails."""
        photo = validated_data.pop("photo", uploads.UNCHANGED)

        def write(name: str | uploads.Unchanged | None) -> tuple[Offer, str]:
            data = validated_data if name is uploads.UNCHANGED else {**validated_data, "photo": name}
            return super(OfferStaffSerializer, self).create(data), ""

        return uploads.save_with_photo(photo, write)

    def update(self, instance: Offer, validated_data: dict[str, Any]) -> Offer:
        """Update the offer under its row lock; a replaced or removed photo is deleted after commit.

        Raises ``Http404`` when the offer was deleted since it was read, and
        ``offer_realtime.conditional.PreconditionFailed`` (412) when the view's
        ``check_precondition`` (in the context) finds the locked row is not the version
        the request's ``If-Match`` names; a new photo stored for it is deleted again.
        """
        photo = validated_data.pop("photo", uploads.UNCHANGED)

        def write(name: str | uploads.Unchanged | None) -> tuple[Offer, str]:
            # Write onto the row as it is now, not as it was read before validation: a
            # field this request does not change (the photo above all) keeps what another
            # request committed meanwhile.
            same_hotel = Offer.objects.filter(hotel_id=instance.hotel_id).select_related("hotel")
            locked = uploads.lock_offer(instance.pk, same_hotel)
            # If-Match (offer_realtime.conditional): compared with the row as it is under
            # the lock, so of two edits of one version only the first is written (412).
            check_precondition = self.context.get("check_precondition")
            if check_precondition is not None:
                check_precondition(locked)
            old_name = locked.photo.name or ""
            data = validated_data if name is uploads.UNCHANGED else {**validated_data, "photo": name}
            return super(OfferStaffSerializer, self).update(locked, data), old_name

        return uploads.save_with_photo(photo, write)


class OfferPublicSerializer(serializers.ModelSerializer):
    """An active offer in the events guests get (``OFFER_REALTIME["PUBLIC_SERIALIZER"]``).

    What the public API (``hotel.public_views``) gives, plus ``is_active`` (always true in
    these events: the real public view checks it); no stored ``photo`` name.
    """

    photo_url = serializers.SerializerMethodField()

    class Meta:
        model = Offer
        # The staff fields, in their order, less the stored photo name.
        fields = [name for name in OfferStaffSerializer.Meta.fields if name != "photo"]
        read_only_fields = fields

    def get_photo_url(self, offer: Offer) -> str | None:
        """The photo's URL as the storage gives it (the same value the image events carry), or None."""
        return offer.photo.url if offer.photo else None


class OfferStaffJSONSerializer(OfferStaffSerializer):
    """The JSON request body of offer writes, for the OpenAPI schema only.

    The same fields; ``photo`` cannot carry a file in JSON: ``null`` removes the photo,
    and ``""`` or the current value echoed back leave it unchanged.
    """

    photo = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text='null removes the photo; "" or the current value (as a GET gave it) leaves it unchanged. '
        "Send a new photo as a file with multipart/form-data.",
    )
