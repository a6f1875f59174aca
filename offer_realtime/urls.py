"""URLs to include for private channels: ``path("api/", include("offer_realtime.urls"))``."""

from django.urls import path

from offer_realtime.views import channel_auth

app_name = "offer_realtime"

urlpatterns = [
    path("pusher/auth/", channel_auth, name="channel-auth"),
]
