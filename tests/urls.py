"""The example project's URLs plus offer_realtime's channel-authorization endpoint."""

from django.urls import include, path

from example_project.urls import urlpatterns as example_urlpatterns

urlpatterns = [*example_urlpatterns, path("realtime/", include("offer_realtime.urls"))]
