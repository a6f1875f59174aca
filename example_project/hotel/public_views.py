"""The public side of the example: a hotel's active offers for guests, as JSON and as a live page.

``GET /api/public/hotels/<slug>/offers/`` and ``.../offers/<id>/`` need no login and show
only active offers, with only what a guest sees (no stored photo name, no activity flag).
They are what the guest page loads first and fetches again when an event tells it to
(``offers-updated``) or when it cannot tell from an event's time whether the event is
newer than what it fetched (see ``hotel/static/hotel/offers_live.js``).

Every answer, a 404 included, carries ``X-Offers-As-Of``: the server time (ISO 8601,
microseconds) taken after the offers were read, so a client can compare what it fetched
with the ``changed_at`` of the events (an event changed after that time is not in the
answer), and ``Cache-Control: no-store``, since a cached answer would be older than its
stamp says.

``/hotels/<slug>/offers/`` is the guest page itself: the same list, kept live from the
hotel's public channel with the real public view's rules (README, "The guest page").
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from hotel import serializers as hotel_serializers
from hotel.models import Hotel, Offer
from offer_realtime.events import InvalidChannelName, channel_for
from offer_realtime.settings import get_pusher_credentials, get_settings

#: Response header with the server time the answer's offers were read at (see the module docstring).
AS_OF_HEADER = "X-Offers-As-Of"

_HOTEL_SLUG = OpenApiParameter("hotel_slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The hotel's slug.")
_OFFER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The offer's id.")
_AS_OF = OpenApiParameter(
    AS_OF_HEADER,
    OpenApiTypes.DATETIME,
    OpenApiParameter.HEADER,
    response=True,
    description="Server time after the offers were read; events changed later are not in this answer.",
)


class OfferPublicSerializer(hotel_serializers.OfferPublicSerializer):
    """An active offer as guests see it: the public events' offer without ``is_active``
    (always true here) and, like it, no stored ``photo`` name."""

    class Meta(hotel_serializers.OfferPublicSerializer.Meta):
        fields = [name for name in hotel_serializers.OfferPublicSerializer.Meta.fields if name != "is_active"]
        read_only_fields = fields


class _PublicOffers:
    """Shared by the list and the detail view: no authentication, active offers of the URL's hotel."""

    serializer_class = OfferPublicSerializer
    # No authenticators: a stale session or token never turns a public read into a 401/403.
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    pagination_class = None
    kwargs: dict[str, Any]

    def get_queryset(self) -> QuerySet[Offer]:
        """Active offers of the hotel in the URL (404 for an unknown hotel), in the staff API's order."""
        if getattr(self, "swagger_fake_view", False):
            return Offer.objects.none()
        hotel = get_object_or_404(Hotel, slug=self.kwargs["hotel_slug"])
        return Offer.objects.filter(hotel=hotel, is_active=True).order_by("sort_order", "-created_at", "-pk")

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        """Stamp every answer (404s too: "not there as of then") after its queries ran."""
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        response[AS_OF_HEADER] = timezone.now().isoformat()
        response["Cache-Control"] = "no-store"
        return response


@extend_schema_view(get=extend_schema(parameters=[_HOTEL_SLUG, _AS_OF], auth=[]))
class PublicOfferList(_PublicOffers, generics.ListAPIView):
    """``GET /api/public/hotels/<slug>/offers/``: the hotel's active offers (a plain list)."""


@extend_schema_view(
    get=extend_schema(
        parameters=[_HOTEL_SLUG, _OFFER_ID, _AS_OF],
        auth=[],
        responses={200: OfferPublicSerializer, 404: OpenApiResponse(description="No such active offer.")},
    )
)
class PublicOfferDetail(_PublicOffers, generics.RetrieveAPIView):
    """``GET /api/public/hotels/<slug>/offers/<id>/``: one active offer, 404 when it is not (or no longer) shown."""


def guest_config(hotel_slug: str) -> dict[str, Any]:
    """What ``guest.js`` needs, rendered into the page as a JSON script tag.

    Only a public channel is listened to: with audiences on (``PUBLIC_SERIALIZER``) the
    guests' ``PUBLIC_CHANNEL``; else ``CHANNEL`` unless it is private (a guest cannot
    subscribe), in which case ``key`` is None and the page lists without live updates.
    """
    credentials = get_pusher_credentials()
    conf = get_settings()
    try:
        if conf.audiences:
            channel = channel_for(conf.public_channel, hotel_slug)
        else:
            channel = None if conf.private else channel_for(conf.channel, hotel_slug)
    except InvalidChannelName:
        channel = None
    return {
        "hotelSlug": hotel_slug,
        "key": credentials.key if channel else None,
        "cluster": credentials.cluster or "mt1",
        "host": credentials.host,
        "port": credentials.port,
        "ssl": credentials.ssl,
        "channel": channel,
        "apiUrl": reverse("public-offer-list", kwargs={"hotel_slug": hotel_slug}),
    }


@require_GET
def guest_offers(request: HttpRequest, hotel_slug: str) -> HttpResponse:
    """The guest page of one hotel: its active offers, live. No login; 404 for an unknown hotel."""
    hotel = get_object_or_404(Hotel, slug=hotel_slug)
    return render(request, "hotel/guest.html", {"hotel": hotel, "config": guest_config(hotel_slug)})
