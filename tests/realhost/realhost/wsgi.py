"""WSGI entry point; the real host runs it under gunicorn with sync workers."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realhost.settings")

application = get_wsgi_application()
