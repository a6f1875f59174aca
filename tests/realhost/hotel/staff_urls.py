"""``/api/staff/hotel/<hotel_slug>/offers/`` and its detail and upload-image routes."""

from rest_framework.routers import SimpleRouter

from hotel.staff_views import StaffOfferViewSet

router = SimpleRouter()
router.register("offers", StaffOfferViewSet, basename="staff-offer")

urlpatterns = router.urls
