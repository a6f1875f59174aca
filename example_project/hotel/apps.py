"""The example project's hotel app."""

from django.apps import AppConfig


class HotelConfig(AppConfig):
    """Hotels, staff and offers."""

    name = "hotel"
    default_auto_field = "django.db.models.BigAutoField"
