"""Admin for hotels, staff and offers.

Offer edits made here are broadcast like API edits: ``offer_realtime`` listens to
the model signals, not to the views.
"""

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.db import models

from hotel import uploads
from hotel.models import Hotel, Offer, StaffProfile


class OfferAdminForm(forms.ModelForm):
    """Applies the staff API's photo checks (format, size, pixels, integrity) to admin uploads too."""

    # Django 6 assumes https for a scheme-less URL; say so now, on every version.
    book_now_url = forms.URLField(required=False, max_length=200, assume_scheme="https")

    class Meta:
        """Every editable field of the offer, as the default admin form has (named, so a new one is a choice)."""

        model = Offer
        fields = [
            "hotel",
            "title",
            "short_description",
            "details_text",
            "details_html",
            "valid_from",
            "valid_to",
            "tag",
            "book_now_url",
            "photo",
            "sort_order",
            "is_active",
        ]

    def clean_photo(self):
        """Reject a newly uploaded photo that the staff API would reject, with the same message."""
        photo = self.cleaned_data.get("photo")
        if isinstance(photo, UploadedFile):
            try:
                uploads.check_photo(photo)
            except uploads.PhotoRejected as exc:
                raise forms.ValidationError(str(exc), code="invalid_photo") from None
        return photo


class StaffProfileInline(admin.TabularInline):
    """A hotel's staff, editable on the hotel's page."""

    model = StaffProfile
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Hotel)
class HotelAdmin(admin.ModelAdmin):
    """Hotels; the slug names the hotel's Pusher channel, so it is filled from the name."""

    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [StaffProfileInline]


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    """Which user works for which hotel."""

    list_display = ["user", "hotel"]
    list_filter = ["hotel"]
    list_select_related = ["user", "hotel"]
    search_fields = ["user__username", "user__email", "hotel__name", "hotel__slug"]
    autocomplete_fields = ["user", "hotel"]


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    """Offers of every hotel."""

    form = OfferAdminForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["title", "hotel", "is_active", "sort_order", "valid_from", "valid_to", "created_at"]
    list_editable = ["is_active", "sort_order"]
    list_filter = ["hotel", "is_active"]
    list_select_related = ["hotel"]
    search_fields = ["title", "short_description", "hotel__name"]
    autocomplete_fields = ["hotel"]
    readonly_fields = ["created_at"]
    date_hierarchy = "created_at"
