"""The one start-up line saying where offer events go (Pusher, or only the log)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence

logger = logging.getLogger("hotel.startup")

_announced = False


def is_serving_process(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """True in the process that will answer requests under ``manage.py runserver``.

    With the autoreloader, runserver runs twice: a watching parent and a serving child
    (``RUN_MAIN=true``); only the child should speak. Other management commands
    (migrate, shell, demo_data, ...) stay quiet.
    """
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    return environ.get("RUN_MAIN") == "true" or "--noreload" in argv


def event_delivery_description() -> str:
    """Where offer events go with the current settings, as one sentence."""
    from offer_realtime.settings import BACKEND_ALIASES, get_pusher_credentials, get_settings

    conf = get_settings()
    if not conf.enabled:
        return "Offer events are switched off (OFFER_REALTIME['ENABLED'] is false)."
    if conf.backend == BACKEND_ALIASES["logging"]:
        missing = ", ".join(get_pusher_credentials().missing) or "Pusher credentials"
        return (
            f"Pusher is not configured ({missing} not set): offer events are only written to the "
            "log ('offer_realtime.events'), not sent."
        )
    if conf.backend == BACKEND_ALIASES["pusher"]:
        credentials = get_pusher_credentials()
        if credentials.host:
            where = f"{credentials.host}:{credentials.port}" if credentials.port else credentials.host
        else:
            where = f"cluster {credentials.cluster}"
        return f"Offer events are sent to Pusher app {credentials.app_id} ({where})."
    return f"Offer events are sent with {conf.backend}."


def announce_event_delivery(force: bool = False) -> None:
    """Log :func:`event_delivery_description` once per process (when serving, unless ``force``)."""
    global _announced
    if _announced or not (force or is_serving_process(sys.argv, os.environ)):
        return
    _announced = True
    from offer_realtime.settings import BACKEND_ALIASES, get_settings

    level = logging.WARNING if get_settings().backend == BACKEND_ALIASES["logging"] else logging.INFO
    logger.log(level, event_delivery_description())
