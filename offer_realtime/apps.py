"""App configuration: connects the signal receivers and registers the system checks."""

from django.apps import AppConfig


class OfferRealtimeConfig(AppConfig):
    """Wires offer_realtime into Django when the app registry is ready."""

    name = "offer_realtime"
    verbose_name = "Offer realtime"
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        """Register checks and connect receivers; both are idempotent."""
        from offer_realtime import checks, receivers  # noqa: F401 - checks register on import

        receivers.connect()
