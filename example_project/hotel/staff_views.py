"""The staff API for a hotel's offers.

Broadcasting is not done here: ``offer_realtime`` turns every committed create,
update, photo change and delete into a Pusher event from the model signals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from hotel import uploads
from hotel.models import Offer
from hotel.permissions import IsSameHotel, IsStaffMember
from hotel.serializers import OfferStaffSerializer

logger = logging.getLogger("hotel.staff_views")

_HOTEL_SLUG = OpenApiParameter(
    "hotel_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="Slug of the staff member's own hotel."
)
_OFFER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The offer's id.")


@extend_schema_view(
    list=extend_schema(parameters=[_HOTEL_SLUG]),
    create=extend_schema(parameters=[_HOTEL_SLUG]),
    retrieve=extend_schema(parameters=[_HOTEL_SLUG, _OFFER_ID]),
    update=extend_schema(parameters=[_HOTEL_SLUG, _OFFER_ID]),
    partial_update=extend_schema(parameters=[_HOTEL_SLUG, _OFFER_ID]),
    destroy=extend_schema(parameters=[_HOTEL_SLUG, _OFFER_ID]),
)
class StaffOfferViewSet(viewsets.ModelViewSet):
    """Staff CRUD for the offers of their own hotel, plus a photo upload.

    Every URL carries ``<hotel_slug>``; it must be the requesting staff member's
    hotel (403 otherwise), and only that hotel's offers can be found (404 for any
    other offer id). The list is not paginated: a hotel has a handful of offers and
    the staff frontend expects the plain list.
    """

    serializer_class = OfferStaffSerializer
    # Token first: an anonymous request gets 401 with "WWW-Authenticate: Token".
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, IsStaffMember, IsSameHotel]
    # Explicit, so a project-wide DEFAULT_PAGINATION_CLASS cannot change the list's shape.
    pagination_class = None
    lookup_value_converter = "int"

    def get_queryset(self) -> QuerySet[Offer]:
        """The offers of the staff member's hotel (the permissions already matched it to the URL)."""
        if getattr(self, "swagger_fake_view", False):  # schema generation has no staff user
            return Offer.objects.none()
        hotel = self.request.user.staff_profile.hotel
        return (
            Offer.objects.filter(hotel=hotel, hotel__slug=self.kwargs["hotel_slug"])
            .select_related("hotel")
            .order_by("sort_order", "-created_at", "-pk")
        )

    def perform_create(self, serializer: OfferStaffSerializer) -> None:
        """Create the offer in the staff member's hotel (the client cannot choose another)."""
        serializer.save(hotel=self.request.user.staff_profile.hotel)

    @extend_schema(
        parameters=[_HOTEL_SLUG, _OFFER_ID],
        request={"multipart/form-data": uploads.OfferPhotoUploadSerializer},
        responses={
            200: uploads.UploadImageResponseSerializer,
            400: OpenApiResponse(uploads.ErrorSerializer, description="Missing, empty, oversized or invalid image."),
            404: OpenApiResponse(description="No such offer in this hotel."),
            502: OpenApiResponse(uploads.ErrorSerializer, description="The image storage (Cloudinary) failed."),
        },
        description="Upload or replace the offer's photo; staff frontends get offer-image-updated after commit.",
    )
    @action(detail=True, methods=["post"], url_path="upload-image")
    def upload_image(self, request: Request, pk: Any = None, hotel_slug: str | None = None) -> Response:
        """Store the multipart file ``photo`` as the offer's photo, replacing (and deleting) the old one.

        ``POST /api/staff/hotel/{slug}/offers/{id}/upload-image/``. Bad input answers
        400 ``{"error": ...}`` and a storage failure 502 ``{"error": ...}``; either way
        the offer and its stored photo are unchanged.
        """
        offer = self.get_object()
        # Before request.data is read: refuse a huge body without receiving it all.
        if uploads.request_too_large(request.META.get("CONTENT_LENGTH")):
            return _error(uploads.too_large_message(), status.HTTP_400_BAD_REQUEST)
        serializer = uploads.OfferPhotoUploadSerializer(data=request.data)
        if not serializer.is_valid():
            return _error(uploads.first_error(serializer.errors), status.HTTP_400_BAD_REQUEST)
        try:
            offer = uploads.replace_offer_photo(offer, serializer.validated_data["photo"])
        except uploads.StorageUnavailable:
            return _error(uploads.STORAGE_UNAVAILABLE, status.HTTP_502_BAD_GATEWAY)
        return Response({"message": "Image uploaded successfully", "photo_url": offer.photo.url})


def _error(message: str, status_code: int) -> Response:
    return Response({"error": message}, status=status_code)
