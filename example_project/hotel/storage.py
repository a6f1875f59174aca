"""Cloudinary media storage with network timeouts.

django-cloudinary-storage calls ``cloudinary.uploader.upload()`` and ``destroy()``
without a timeout, and the SDK's ``cloudinary.config(timeout=...)`` only applies to
the Admin API, not to uploads: a stalled Cloudinary would hold a request (and a
worker) forever. This subclass passes ``timeout`` to both calls; a timeout then
raises ``cloudinary.exceptions.Error`` like any other upload failure.

Importing this module imports ``cloudinary_storage``, which reads its credentials
at import time (``CLOUDINARY_URL`` or ``CLOUDINARY_STORAGE``); settings name it as a
dotted path, so it is only imported once Cloudinary is configured.

Setting: ``HOTEL_CLOUDINARY_TIMEOUT`` (seconds per connect and per read, default 20).
"""

from __future__ import annotations

from typing import Any

import cloudinary.uploader
from cloudinary_storage.storage import MediaCloudinaryStorage
from django.conf import settings

#: Seconds; enough for a 10 MB photo on a slow uplink (it bounds each socket
#: operation, not the whole transfer) while failing fast when Cloudinary stalls.
DEFAULT_TIMEOUT = 20.0


def cloudinary_timeout() -> float:
    """The timeout for calls to Cloudinary's upload API, from ``HOTEL_CLOUDINARY_TIMEOUT``."""
    return float(getattr(settings, "HOTEL_CLOUDINARY_TIMEOUT", DEFAULT_TIMEOUT))


class OfferCloudinaryStorage(MediaCloudinaryStorage):
    """``MediaCloudinaryStorage`` whose uploads and deletions give up after a timeout."""

    def _upload(self, name: str, content: Any) -> dict:
        options = {
            "use_filename": True,
            "resource_type": self._get_resource_type(name),
            "tags": self.TAG,
            "timeout": cloudinary_timeout(),
        }
        folder = name.rpartition("/")[0]
        if folder:
            options["folder"] = folder
        return cloudinary.uploader.upload(content, **options)

    def delete(self, name: str) -> bool:
        """Delete the asset ``name``; True when Cloudinary says it was deleted."""
        response = cloudinary.uploader.destroy(
            name, invalidate=True, resource_type=self._get_resource_type(name), timeout=cloudinary_timeout()
        )
        return response.get("result") == "ok"
