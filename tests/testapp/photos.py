"""A ``PHOTO_URL`` callable for the test host's custom photo kind (``Deal.image_key``)."""

from __future__ import annotations

CDN = "https://cdn.example.test/images/"


def image_key_url(deal) -> str | None:
    """The URL of the deal's image, or None when it has none."""
    return f"{CDN}{deal.image_key}.webp" if deal.image_key else None


NOT_CALLABLE = "a string, not a function"
