"""Settings for the test suite: the example project's, made deterministic.

SQLite by default; PostgreSQL when ``DATABASE_URL`` points at one, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/offer_realtime``.
"""

import os
import tempfile

import dj_database_url

from example_project.settings import *  # noqa: F401,F403
from example_project.settings import INSTALLED_APPS

DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# Tests never reach a real Pusher unless a test configures one (e.g. soketi).
PUSHER_APP_ID = PUSHER_KEY = PUSHER_SECRET = PUSHER_HOST = PUSHER_PORT = ""
OFFER_REALTIME = {}

MEDIA_ROOT = tempfile.mkdtemp(prefix="offer-realtime-test-media-")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
