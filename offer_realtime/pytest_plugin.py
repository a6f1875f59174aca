"""pytest plugin (registered through the ``pytest11`` entry point): the ``offer_broadcasts`` fixture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from offer_realtime.testing import BroadcastCapture


@pytest.fixture
def offer_broadcasts() -> Iterator[BroadcastCapture]:
    """Events broadcast during the test, captured by an in-memory backend.

    Reading the fixture runs the ``on_commit`` callbacks queued so far, so it works in
    pytest-django ``db`` tests where the transaction never commits::

        def test_create(db, offer_broadcasts):
            Offer.objects.create(...)
            assert offer_broadcasts.names == ["offer-created"]
    """
    from offer_realtime.testing import capture_broadcasts

    with capture_broadcasts() as sent:
        yield sent
