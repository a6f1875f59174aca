"""The host's ``hotel`` app."""

from django.apps import AppConfig


class HotelConfig(AppConfig):
    """Hotels, their staff and their offers."""

    name = "hotel"
    default_auto_field = "django.db.models.BigAutoField"
