"""A backend that discards events."""

from __future__ import annotations

from collections.abc import Sequence

from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import Event


class NullBackend(BaseBackend):
    """Sends nothing; for projects or environments that want broadcasting off."""

    def send(self, events: Sequence[Event]) -> None:
        """Do nothing."""
