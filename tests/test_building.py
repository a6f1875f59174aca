"""offer_realtime.building: committed changes -> events, one serializer per build."""

from __future__ import annotations

import pytest
from django.test import override_settings

from hotel.models import Offer
from hotel.serializers import OfferStaffSerializer
from offer_realtime import building
from offer_realtime.changes import Change

pytestmark = pytest.mark.django_db


class CountingSerializer(OfferStaffSerializer):
    """The example's staff serializer, counting its instances and the offers it saw."""

    created = 0
    seen: list[str] = []

    def __init__(self, *args, **kwargs):
        type(self).created += 1
        super().__init__(*args, **kwargs)

    def to_representation(self, instance):
        # What a serializer reading self.instance (not its argument) would see.
        type(self).seen.append(self.instance.title)
        return super().to_representation(instance)


class PlainSerializer:
    """Not a DRF serializer: only the documented contract, ``Serializer(offer, context={}).data``."""

    created = 0

    def __init__(self, offer, context=None):
        type(self).created += 1
        self.offer = offer

    @property
    def data(self):
        return {"title": self.offer.title, "serializer": "plain"}


def _creations(offers):
    return [Change.created(offer.pk) for offer in offers]


@pytest.fixture
def offers(hotel):
    return Offer.objects.bulk_create([Offer(hotel=hotel, title=f"Offer {i} ✨ “quoted”") for i in range(12)])


def test_one_drf_serializer_serves_every_offer_of_a_build_with_the_same_data(offers):
    CountingSerializer.created, CountingSerializer.seen = 0, []
    with override_settings(OFFER_REALTIME={"SERIALIZER": "tests.test_building.CountingSerializer"}):
        built = building.build_events(_creations(offers), "default")
    # One instance for twelve offers (DRF builds a ModelSerializer's fields per instance).
    assert CountingSerializer.created == 1
    assert CountingSerializer.seen == [offer.title for offer in offers]
    for event, offer in zip(built, offers, strict=True):
        assert event.data["offer"] == dict(OfferStaffSerializer(Offer.objects.get(pk=offer.pk), context={}).data)


def test_a_serializer_that_is_not_drfs_is_called_per_offer(offers):
    PlainSerializer.created = 0
    with override_settings(OFFER_REALTIME={"SERIALIZER": "tests.test_building.PlainSerializer"}):
        built = building.build_events(_creations(offers), "default")
    assert PlainSerializer.created == len(offers)
    assert [event.data["offer"] for event in built] == [
        {"title": offer.title, "serializer": "plain"} for offer in offers
    ]
