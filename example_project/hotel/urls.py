"""Staff API URLs, included at ``api/staff/``.

- ``hotel/<slug>/offers/``: list, create
- ``hotel/<slug>/offers/<id>/``: retrieve, update, partial update, delete
- ``hotel/<slug>/offers/<id>/upload-image/``: photo upload (multipart field ``photo``)
"""

from rest_framework.routers import SimpleRouter

from hotel.staff_views import StaffOfferViewSet

# Path converters rather than regexes: the slug and id types are then part of the
# URL itself (a non-numeric id is a plain 404) and visible to the schema generator.
router = SimpleRouter(use_regex_path=False)
router.register("hotel/<slug:hotel_slug>/offers", StaffOfferViewSet, basename="staff-offer")

urlpatterns = router.urls
