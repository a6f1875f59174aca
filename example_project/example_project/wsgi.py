"""WSGI entry point of the example project (``gunicorn example_project.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
application = get_wsgi_application()

# One line per server process saying whether offer events reach Pusher (gunicorn
# --preload makes it one line in all).
from hotel.startup import announce_event_delivery  # noqa: E402 - needs the app registry

announce_event_delivery(force=True)
