"""URLs of the example project."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from hotel import board_views, home_views, public_views

urlpatterns = [
    # Links to every page below, for whoever opens the server's address.
    path("", home_views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/staff/", include("hotel.urls")),
    # Channel authorization for OFFER_REALTIME_CHANNEL=private-hotel-{hotel_slug}.
    path("api/realtime/", include("offer_realtime.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The staff live offer board (session login; the API's tenancy rules).
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="hotel/login.html", next_page="staff-home"),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("staff/", board_views.staff_home, name="staff-home"),
    path("staff/<slug:hotel_slug>/offers/live/", board_views.offer_board, name="offer-board"),
    path("staff/assets/pusher.min.js", board_views.pusher_js, name="pusher-js"),
    # The guest page and its public, read-only API: active offers only, no login.
    path("hotels/<slug:hotel_slug>/offers/", public_views.guest_offers, name="guest-offers"),
    path(
        "api/public/hotels/<slug:hotel_slug>/offers/",
        public_views.PublicOfferList.as_view(),
        name="public-offer-list",
    ),
    path(
        "api/public/hotels/<slug:hotel_slug>/offers/<int:pk>/",
        public_views.PublicOfferDetail.as_view(),
        name="public-offer-detail",
    ),
]
if settings.SWAGGER_UI_BUNDLED:
    # Only with drf-spectacular-sidecar: otherwise Swagger UI would load its assets from a CDN.
    urlpatterns.append(path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"))
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
