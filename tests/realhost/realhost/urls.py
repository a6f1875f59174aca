"""URLs of the stand-in host: the staff offers API at the real host's paths."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/staff/hotel/<slug:hotel_slug>/", include("hotel.staff_urls")),
]
