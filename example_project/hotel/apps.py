"""The example project's hotel app."""

from django.apps import AppConfig


class HotelConfig(AppConfig):
    """Hotels, staff and offers."""

    name = "hotel"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect the storage housekeeping; say where offer events go when runserver starts (WSGI: wsgi.py)."""
        from hotel import signals
        from hotel.startup import announce_event_delivery

        signals.connect()
        announce_event_delivery()
