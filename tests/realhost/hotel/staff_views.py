"""The host's staff API for offers, as thin as it is once offer_realtime broadcasts.

The seed guide put a ``pusher_client.trigger`` in each of these methods; with
offer_realtime installed there is none, and the host's ``upload-image`` action is
kept as it was (no validation beyond "is there a file").
"""

from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from hotel.models import Offer
from hotel.permissions import IsSameHotel, IsStaffMember
from hotel.serializers import OfferStaffSerializer


class StaffOfferViewSet(viewsets.ModelViewSet):
    """Staff CRUD for the offers of their own hotel."""

    serializer_class = OfferStaffSerializer
    permission_classes = [IsAuthenticated, IsStaffMember, IsSameHotel]

    def get_queryset(self):
        """Only the offers of the staff member's hotel."""
        staff = self.request.user.staff_profile
        return Offer.objects.filter(hotel=staff.hotel).order_by("sort_order", "-created_at")

    def perform_create(self, serializer):
        """A new offer belongs to the staff member's hotel."""
        serializer.save(hotel=self.request.user.staff_profile.hotel)

    @action(detail=True, methods=["post"], url_path="upload-image")
    def upload_image(self, request, pk=None, hotel_slug=None):
        """POST multipart ``photo``: set or replace the offer's photo."""
        offer = self.get_object()
        if "photo" not in request.FILES:
            return Response({"error": "No photo file provided"}, status=status.HTTP_400_BAD_REQUEST)
        offer.photo = request.FILES["photo"]
        offer.save()
        return Response(
            {"message": "Image uploaded successfully", "photo_url": offer.photo.url if offer.photo else None},
            status=status.HTTP_200_OK,
        )
