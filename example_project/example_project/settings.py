"""Settings of the example hotel backend.

Runs on embedded defaults (SQLite, local media, events written to the log) with no
environment at all; every external service is switched on by an environment variable:

- ``DATABASE_URL``: e.g. ``postgres://postgres@127.0.0.1:5432/hotel``
- ``PUSHER_APP_ID``, ``PUSHER_KEY``, ``PUSHER_SECRET``, ``PUSHER_CLUSTER`` and optional
  ``PUSHER_HOST``, ``PUSHER_PORT``, ``PUSHER_SSL`` (a local soketi)
- ``CLOUDINARY_URL``: media on Cloudinary instead of the local disk
  (``HOTEL_CLOUDINARY_TIMEOUT`` seconds per upload call, default 20)
- ``HOTEL_OFFER_PHOTO_MAX_BYTES``: largest accepted offer photo, default 10 MB

Swagger UI is served at ``/api/docs/`` when ``drf-spectacular-sidecar`` is installed
(it bundles the UI, so no CDN is needed); the schema is always at ``/api/schema/``.
"""

import importlib.util
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-insecure-key-for-development-only")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",")

CLOUDINARY_URL = os.environ.get("CLOUDINARY_URL", "")
SWAGGER_UI_BUNDLED = importlib.util.find_spec("drf_spectacular_sidecar") is not None

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # After staticfiles: its collectstatic override breaks otherwise.
    *(["cloudinary_storage", "cloudinary"] if CLOUDINARY_URL else []),
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    *(["drf_spectacular_sidecar"] if SWAGGER_UI_BUNDLED else []),
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
    # "To others": a write carrying X-Pusher-Socket-ID is not echoed to that browser.
    "offer_realtime.middleware.SocketIdMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}", conn_max_age=60),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if CLOUDINARY_URL:
    # django-cloudinary-storage's MediaCloudinaryStorage, plus a timeout on every call.
    STORAGES["default"] = {"BACKEND": "hotel.storage.OfferCloudinaryStorage"}
HOTEL_CLOUDINARY_TIMEOUT = float(os.environ.get("HOTEL_CLOUDINARY_TIMEOUT", "20"))

# Offer photo uploads (see hotel/uploads.py for the other limits).
HOTEL_OFFER_PHOTO_MAX_BYTES = int(os.environ.get("HOTEL_OFFER_PHOTO_MAX_BYTES", str(10 * 1024 * 1024)))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Hotel staff API (offer_realtime example)",
    "DESCRIPTION": "Staff CRUD for a hotel's offers. Every change is broadcast on the Pusher channel "
    "hotel-<slug> as offer-created, offer-updated, offer-image-updated or offer-deleted.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request components, so the multipart photo upload is typed as binary.
    "COMPONENT_SPLIT_REQUEST": True,
}
if SWAGGER_UI_BUNDLED:
    SPECTACULAR_SETTINGS.update(SWAGGER_UI_DIST="SIDECAR", SWAGGER_UI_FAVICON_HREF="SIDECAR", REDOC_DIST="SIDECAR")

# Pusher, by the names Pusher's own examples (a chat/utils.py) use. Without them the
# example logs events instead of sending them (offer_realtime picks its logging backend).
PUSHER_APP_ID = os.environ.get("PUSHER_APP_ID", "")
PUSHER_KEY = os.environ.get("PUSHER_KEY", "")
PUSHER_SECRET = os.environ.get("PUSHER_SECRET", "")
PUSHER_CLUSTER = os.environ.get("PUSHER_CLUSTER", "mt1")
PUSHER_HOST = os.environ.get("PUSHER_HOST", "")
PUSHER_PORT = os.environ.get("PUSHER_PORT", "")
PUSHER_SSL = os.environ.get("PUSHER_SSL", "true")

# Defaults of offer_realtime fit this project (hotel.Offer, OfferStaffSerializer);
# the environment can switch the channel mode and the delivery mode.
OFFER_REALTIME = {
    "CHANNEL": os.environ.get("OFFER_REALTIME_CHANNEL", "hotel-{hotel_slug}"),
    "DELIVERY": os.environ.get("OFFER_REALTIME_DELIVERY", "background"),
    # Audiences (live.sh sets both, with CHANNEL private): guests get active offers only,
    # built with this serializer, on the public channel; staff get everything on CHANNEL.
    "PUBLIC_SERIALIZER": os.environ.get("OFFER_REALTIME_PUBLIC_SERIALIZER") or None,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "offer_realtime": {"handlers": ["console"], "level": os.environ.get("OFFER_REALTIME_LOG_LEVEL", "INFO")},
        "hotel": {"handlers": ["console"], "level": os.environ.get("HOTEL_LOG_LEVEL", "INFO")},
    },
}
