"""URLs of the example project."""

from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/staff/", include("hotel.urls")),
    # Channel authorization for OFFER_REALTIME_CHANNEL=private-hotel-{hotel_slug}.
    path("api/realtime/", include("offer_realtime.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
]
if settings.SWAGGER_UI_BUNDLED:
    # Only with drf-spectacular-sidecar: otherwise Swagger UI would load its assets from a CDN.
    urlpatterns.append(path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"))
urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
