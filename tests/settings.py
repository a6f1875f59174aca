"""Settings for the test suite: the example project's, made deterministic.

SQLite by default; PostgreSQL when ``DATABASE_URL`` points at one, e.g.
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/offer_realtime``.
"""

import os
import tempfile

import dj_database_url
import django

from example_project.settings import *  # noqa: F403
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

# Under nox the suite tests the installed package: noxfile.py puts this tree after
# site-packages on sys.path and names the site-packages here. Fail at once (in pytest and
# in every process a test starts with these settings) if offer_realtime would come from
# anywhere else, e.g. a PYTHONPATH pointing at the tree.
if os.environ.get("OFFER_REALTIME_TEST_SITE_PACKAGES"):
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.find_spec("offer_realtime")
    _origin = Path(_spec.origin).resolve() if _spec and _spec.origin else None
    _site_packages = Path(os.environ["OFFER_REALTIME_TEST_SITE_PACKAGES"]).resolve()
    if _origin is None or not _origin.is_relative_to(_site_packages):
        raise RuntimeError(
            f"offer_realtime is imported from {_origin}, not from the installed package in {_site_packages} "
            "(OFFER_REALTIME_TEST_SITE_PACKAGES): is the tree on PYTHONPATH or pytest's pythonpath?"
        )
