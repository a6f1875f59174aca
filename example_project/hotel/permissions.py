"""Permissions of the staff API: only a hotel's own staff may touch its offers."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from hotel.models import Hotel, StaffProfile


def staff_hotel(user: Any) -> Hotel | None:
    """The hotel ``user`` works for, or None for anonymous users and users without a staff profile."""
    if not getattr(user, "is_authenticated", False):
        return None
    try:
        return user.staff_profile.hotel
    except StaffProfile.DoesNotExist:
        return None


class IsStaffMember(BasePermission):
    """The user has a staff profile, i.e. works for some hotel.

    Refuses anonymous requests too; DRF answers those 401 (not 403) because the
    request was not authenticated by any of the view's authenticators.
    """

    message = "You are not a member of any hotel's staff."

    def has_permission(self, request: Request, view: Any) -> bool:
        """True when the requesting user has a staff profile."""
        return staff_hotel(request.user) is not None


class IsSameHotel(BasePermission):
    """The ``hotel_slug`` in the URL is the slug of the user's own hotel.

    Checked for every action before any object is looked up, so another hotel's
    URLs answer 403 whether or not that hotel (or the offer) exists: nothing about
    other hotels can be learned from the answer.
    """

    message = "You can only manage the offers of your own hotel."

    def has_permission(self, request: Request, view: Any) -> bool:
        """True when the URL names the hotel the user works for."""
        hotel = staff_hotel(request.user)
        slug = view.kwargs.get("hotel_slug")
        return hotel is not None and slug is not None and hotel.slug == slug

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        """The object belongs to the user's hotel (the queryset already ensures it; this guards overrides)."""
        hotel = staff_hotel(request.user)
        return hotel is not None and getattr(obj, "hotel_id", None) == hotel.pk
