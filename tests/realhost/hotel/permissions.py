"""The staff permissions the host's offer viewset uses."""

from rest_framework.permissions import BasePermission


class IsStaffMember(BasePermission):
    """The user has a staff profile."""

    def has_permission(self, request, view) -> bool:
        return hasattr(request.user, "staff_profile")


class IsSameHotel(BasePermission):
    """The URL's ``hotel_slug`` is the staff member's own hotel."""

    def has_permission(self, request, view) -> bool:
        staff = getattr(request.user, "staff_profile", None)
        return staff is not None and staff.hotel.slug == view.kwargs.get("hotel_slug")
