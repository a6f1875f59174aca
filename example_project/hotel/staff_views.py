"""The staff API for a hotel's offers.

Broadcasting is not done here: ``offer_realtime`` turns every committed create,
update, photo change and delete into a Pusher event from the model signals.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
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
from hotel.serializers import OfferStaffJSONSerializer, OfferStaffSerializer
from offer_realtime.conditional import ConditionalUpdateMixin

logger = logging.getLogger("hotel.staff_views")

_HOTEL_SLUG = OpenApiParameter(
    "hotel_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="Slug of the staff member's own hotel."
)
_OFFER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The offer's id.")

# Conflict-safe edits (offer_realtime.conditional.ConditionalUpdateMixin).
_IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description='The ETag of the offer as you read it (from GET), e.g. `"3f2a..."`: the write is done only if '
    "the offer is still that version, else 412 with the offer as it is now. `*`: any version. Without it "
    'the write is unconditional, unless HOTEL_OFFER_REQUIRE_IF_MATCH is on (428). A weak tag (`W/"..."`) '
    "never matches.",
)
_ETAG_DESCRIPTION = "Strong entity tag of the offer as in the body; send it back as If-Match when you save."
_ETAG_ON_READ = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200], description=_ETAG_DESCRIPTION
)
_ETAG_ON_WRITE = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 412], description=_ETAG_DESCRIPTION
)
_ETAG_ON_DELETE = OpenApiParameter(
    "ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[412], description=_ETAG_DESCRIPTION
)
_PRECONDITION_ANSWERS = {
    412: OpenApiResponse(
        OfferStaffSerializer,
        description="If-Match names another version: the offer was changed (or deleted and re-created) since you "
        "read it. Nothing was changed. The body is the offer as it is now, its ETag in the header.",
    ),
    428: OpenApiResponse(description="No If-Match, and HOTEL_OFFER_REQUIRE_IF_MATCH requires it."),
}


#: Offer writes take JSON, or multipart when a photo file is sent.
_WRITE_BODIES = {"application/json": OfferStaffJSONSerializer, "multipart/form-data": OfferStaffSerializer}
_WRITE_ERRORS = {
    400: OpenApiResponse(
        description="Invalid fields, a missing, empty, oversized or invalid photo file, or a malformed If-Match."
    ),
    502: OpenApiResponse(uploads.ErrorSerializer, description="The image storage (Cloudinary) failed."),
}
_WRITE_DESCRIPTION = (
    "JSON, or multipart/form-data with a `photo` file (checked like upload-image: JPEG, PNG or WebP, "
    "HOTEL_OFFER_PHOTO_MAX_BYTES, HOTEL_OFFER_PHOTO_MAX_PIXELS). `photo: null` removes the photo; "
    '`""` for an empty date or URL; `photo_url` is read-only and ignored.'
)


@extend_schema_view(
    list=extend_schema(parameters=[_HOTEL_SLUG]),
    create=extend_schema(
        parameters=[_HOTEL_SLUG],
        request=_WRITE_BODIES,
        responses={201: OfferStaffSerializer, **_WRITE_ERRORS},
        description=_WRITE_DESCRIPTION,
    ),
    retrieve=extend_schema(parameters=[_HOTEL_SLUG, _OFFER_ID, _ETAG_ON_READ]),
    update=extend_schema(
        parameters=[_HOTEL_SLUG, _OFFER_ID, _IF_MATCH, _ETAG_ON_WRITE],
        request=_WRITE_BODIES,
        responses={
            200: OfferStaffSerializer,
            404: OpenApiResponse(description="No such offer in this hotel."),
            **_WRITE_ERRORS,
            **_PRECONDITION_ANSWERS,
        },
        description=_WRITE_DESCRIPTION,
    ),
    partial_update=extend_schema(
        parameters=[_HOTEL_SLUG, _OFFER_ID, _IF_MATCH, _ETAG_ON_WRITE],
        request=_WRITE_BODIES,
        responses={
            200: OfferStaffSerializer,
            404: OpenApiResponse(description="No such offer in this hotel."),
            **_WRITE_ERRORS,
            **_PRECONDITION_ANSWERS,
        },
        description=_WRITE_DESCRIPTION,
    ),
    destroy=extend_schema(
        parameters=[_HOTEL_SLUG, _OFFER_ID, _IF_MATCH, _ETAG_ON_DELETE],
        responses={
            204: None,
            400: OpenApiResponse(description="A malformed If-Match."),
            404: OpenApiResponse(description="No such offer in this hotel."),
            **_PRECONDITION_ANSWERS,
        },
    ),
)
class StaffOfferViewSet(ConditionalUpdateMixin, viewsets.ModelViewSet):
    """Staff CRUD for the offers of their own hotel, plus a photo upload.

    Every URL carries ``<hotel_slug>``; it must be the requesting staff member's
    hotel (403 otherwise), and only that hotel's offers can be found (404 for any
    other offer id). The list is not paginated: a hotel has a handful of offers and
    the staff frontend expects the plain list.

    Conflict-safe edits (:class:`~offer_realtime.conditional.ConditionalUpdateMixin`): a
    GET of one offer carries its ``ETag``; a PATCH, PUT or DELETE sent with it as
    ``If-Match`` is refused with 412 (and the offer as it is now) when another write
    came first. The serializer compares under the row lock it takes anyway, after a new
    photo is stored, so a slow upload holds no lock.
    """

    serializer_checks_precondition = True

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

    def requires_if_match(self) -> bool:
        """428 for writes without If-Match when the ``HOTEL_OFFER_REQUIRE_IF_MATCH`` setting is on (default off)."""
        return bool(getattr(settings, "HOTEL_OFFER_REQUIRE_IF_MATCH", False))

    def perform_create(self, serializer: OfferStaffSerializer) -> None:
        """Create the offer in the staff member's hotel (the client cannot choose another)."""
        serializer.save(hotel=self.request.user.staff_profile.hotel)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """``POST``: JSON, or multipart with an optional ``photo`` file (checked like ``upload-image``)."""
        return _refuse_oversized_upload(request) or super().create(request, *args, **kwargs)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """``PUT``/``PATCH``: as ``create``; 404 if the offer was deleted, even while this request ran."""
        return _refuse_oversized_upload(request) or super().update(request, *args, **kwargs)

    def perform_destroy(self, instance: Offer) -> None:
        """Delete the offer as it is now, under its row lock.

        Deleting the row read at the start of the request would delete the photo file it
        named then, while a concurrent upload may have replaced it since: that upload's
        file would be orphaned. 404 when another request deleted it first; 412 when the
        request's ``If-Match`` names another version than the locked row's.
        """
        with transaction.atomic():
            locked = uploads.lock_offer(instance.pk, self.get_queryset())
            self.check_precondition(locked)
            locked.delete()

    def handle_exception(self, exc: Exception) -> Response:
        """A storage failure while saving a photo is 502 ``{"error": ...}`` (nothing was changed)."""
        if isinstance(exc, uploads.StorageUnavailable):
            return _error(uploads.STORAGE_UNAVAILABLE, status.HTTP_502_BAD_GATEWAY)
        return super().handle_exception(exc)

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


def _refuse_oversized_upload(request: Request) -> Response | None:
    """400 for a multipart body too large to hold an acceptable photo, judged from Content-Length.

    Runs before ``request.data`` is read, so a huge upload is refused without Django
    receiving (and spooling to disk) the whole body.
    """
    if request.content_type.startswith("multipart/") and uploads.request_too_large(request.META.get("CONTENT_LENGTH")):
        return Response({"photo": [uploads.too_large_message()]}, status=status.HTTP_400_BAD_REQUEST)
    return None
