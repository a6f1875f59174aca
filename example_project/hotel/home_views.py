"""``/``: where a person who just opened the example's address finds every page it serves."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from hotel.models import Hotel, StaffProfile
from hotel.startup import event_delivery_description


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Links to the staff board (with who can log in), the guest pages, the admin and the API docs.

    Passwords are never shown here: anyone who can reach the server could read them.
    ``manage.py demo_data`` prints them, the same on every run.
    """
    hotels = list(Hotel.objects.order_by("name"))
    staff = StaffProfile.objects.select_related("user", "hotel").order_by("hotel__name", "user__username")
    context = {
        "hotels": hotels,
        "staff": [(profile.user.get_username(), profile.hotel) for profile in staff],
        "api_docs": "/api/docs/" if settings.SWAGGER_UI_BUNDLED else "/api/schema/",
        "events": event_delivery_description(),
    }
    return render(request, "hotel/home.html", context)
