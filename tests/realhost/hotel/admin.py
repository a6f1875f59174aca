"""The host's admin for offers (a save there is broadcast like any other)."""

from django.contrib import admin

from hotel.models import Hotel, Offer, Staff

admin.site.register(Hotel)
admin.site.register(Staff)


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    """Offers listed by hotel."""

    list_display = ["title", "hotel", "is_active", "sort_order"]
    list_filter = ["hotel", "is_active"]
