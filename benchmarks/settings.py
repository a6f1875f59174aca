"""Django settings for the benchmarks: the example project's, plus a few switches.

Used by every server process, task worker and setup step the benchmarks start
(``DJANGO_SETTINGS_MODULE=benchmarks.settings``). On top of what the example project
reads from the environment (``DATABASE_URL``, ``PUSHER_*``, ``OFFER_REALTIME_DELIVERY``,
``OFFER_REALTIME_CHANNEL``) it reads:

- ``BENCH_REALTIME_ENABLED``: ``0`` sets ``OFFER_REALTIME["ENABLED"] = False``
  (broadcasting off, app still installed). Default ``1``.
- ``BENCH_REALTIME_INSTALLED``: ``0`` removes ``offer_realtime`` from
  ``INSTALLED_APPS`` (no receivers, no change tracking). Default ``1``.
- ``BENCH_TASK_QUEUE``: the task queue of the ``task`` delivery mode. Default ``default``.
- ``BENCH_ORDERING``: ``0`` sets ``OFFER_REALTIME["ORDERING"] = False`` (no per-offer
  locks across processes). Default ``1``.

The task store is django-tasks-db on the same database (the outbox setup), and
``DEBUG`` is off so that Django does not record every query.
"""

import os

import django

from example_project.settings import *  # noqa: F403
from example_project.settings import INSTALLED_APPS as _EXAMPLE_APPS
from example_project.settings import OFFER_REALTIME as _EXAMPLE_OFFER_REALTIME

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

_installed = os.environ.get("BENCH_REALTIME_INSTALLED", "1") != "0"
INSTALLED_APPS = [
    *(app for app in _EXAMPLE_APPS if _installed or app != "offer_realtime"),
    # Django 5.2 gets the task framework from the django-tasks backport.
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
]

_TASK_QUEUE = os.environ.get("BENCH_TASK_QUEUE", "default")
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": sorted({"default", _TASK_QUEUE})}}

OFFER_REALTIME = {
    **_EXAMPLE_OFFER_REALTIME,
    "ENABLED": os.environ.get("BENCH_REALTIME_ENABLED", "1") != "0",
    "TASK_QUEUE": _TASK_QUEUE,
    "ORDERING": os.environ.get("BENCH_ORDERING", "1") != "0",
}

# Only warnings and errors: request-time logging would be measured too.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
