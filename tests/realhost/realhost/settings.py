"""Settings of the stand-in for the real hotel backend (REAL-HOST.md).

The shape is that project's: token authentication, DRF's global page-number
pagination (10 per page) and IsAuthenticated by default, Cloudinary media, the
``PUSHER_*`` names its own ``chat/utils.py`` client reads. ``offer_realtime`` is
added with one line in ``INSTALLED_APPS`` and no ``OFFER_REALTIME`` setting: that is
the drop-in this project exists to prove.

Everything deployment-specific comes from the environment, as on the host's PaaS:
``DATABASE_URL``, ``CLOUDINARY_URL``, ``PUSHER_*``. ``PUSHER_HOST``/``PUSHER_PORT``/
``PUSHER_SSL`` exist only so that the test suite can point it at a local soketi.
"""

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "realhost-stand-in-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "cloudinary_storage",
    "django.contrib.staticfiles",
    "cloudinary",
    "rest_framework",
    "rest_framework.authtoken",
    "hotel",
    "offer_realtime",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "realhost.urls"
WSGI_APPLICATION = "realhost.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Only the test suite runs this project on SQLite (the host runs PostgreSQL); two
    # gunicorn workers, their sender threads and a `manage.py shell` share the file.
    # IMMEDIATE: a write transaction takes the lock when it begins, so it waits (timeout)
    # instead of failing with "database is locked" when a deferred one cannot upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
MEDIA_URL = "/media/"
# Media on Cloudinary (CLOUDINARY_URL), through django-cloudinary-storage; the offer
# photo and the hotel logo are CloudinaryFields and upload through the SDK directly.
STORAGES = {
    "default": {"BACKEND": "cloudinary_storage.storage.MediaCloudinaryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 10,
}

# What the host's chat/utils.py builds its Pusher client from.
PUSHER_APP_ID = os.environ.get("PUSHER_APP_ID", "")
PUSHER_KEY = os.environ.get("PUSHER_KEY", "")
PUSHER_SECRET = os.environ.get("PUSHER_SECRET", "")
PUSHER_CLUSTER = os.environ.get("PUSHER_CLUSTER", "eu")
if os.environ.get("PUSHER_HOST"):  # the test suite's soketi instead of hosted Pusher
    PUSHER_HOST = os.environ["PUSHER_HOST"]
    PUSHER_PORT = os.environ.get("PUSHER_PORT")
    PUSHER_SSL = os.environ.get("PUSHER_SSL", "true")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
