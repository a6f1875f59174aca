"""Settings for the test suite: the example project's, made deterministic.

SQLite by default; PostgreSQL when ``DATABASE_URL`` points at one, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/offer_realtime``.
"""

import os
import tempfile

import dj_database_url

from example_project.settings import *  # noqa: F401,F403
from example_project.settings import INSTALLED_APPS

_SQLITE_DIR = tempfile.mkdtemp(prefix="offer-realtime-test-db-")

# SQLite as a deployment uses it: a file in WAL mode with a busy timeout, not the
# in-memory shared-cache database Django's test runner would pick, on which a read from
# the background sender thread makes a concurrent write fail at once ("table is
# locked"). A file also lets a second process (manage.py shell, a db_worker) share it.
DATABASES = {
    "default": dj_database_url.parse(os.environ["DATABASE_URL"])
    if os.environ.get("DATABASE_URL")
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(_SQLITE_DIR, "offer_realtime.sqlite3"),
        "TEST": {"NAME": os.path.join(_SQLITE_DIR, "test_offer_realtime.sqlite3")},
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20},
    },
}

import django

# django_tasks_db: the task store of the "task" delivery mode tests; on Django 5.2
# the task framework itself comes from the django-tasks backport.
INSTALLED_APPS = [
    *INSTALLED_APPS,
    "tests.testapp",
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
]
TASKS = {
    "default": {
        "BACKEND": "django.tasks.backends.immediate.ImmediateBackend"
        if django.VERSION >= (6, 0)
        else "django_tasks.backends.immediate.ImmediateBackend"
    },
    "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}

# Tests never reach a real Pusher unless a test configures one (e.g. soketi).
PUSHER_APP_ID = PUSHER_KEY = PUSHER_SECRET = PUSHER_HOST = PUSHER_PORT = ""
# Inline delivery keeps tests that use a real backend deterministic; the background
# and task modes have tests of their own (capture_broadcasts always delivers inline).
OFFER_REALTIME = {"DELIVERY": "inline"}

MEDIA_ROOT = tempfile.mkdtemp(prefix="offer-realtime-test-media-")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
