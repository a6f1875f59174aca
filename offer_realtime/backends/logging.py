"""A backend that writes events to the log: the default without Pusher credentials."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from offer_realtime.backends.base import BaseBackend
from offer_realtime.events import Event

logger = logging.getLogger("offer_realtime.events")


class LoggingBackend(BaseBackend):
    """Logs each event at INFO on the ``offer_realtime.events`` logger."""

    def send(self, events: Sequence[Event]) -> None:
        """Log ``events``."""
        for event in events:
            logger.info("%s on %s: %s", event.name, event.channel, json.dumps(event.data, sort_keys=True))
