"""Every kind of photo field a Django hotel uses: FileField/ImageField (any storage), the real
host's ``cloudinary.models.CloudinaryField``, and any other field with ``PHOTO_URL``.

Photo changes are detected by stored value, never by object identity; ``photo_url`` is
exactly ``offer.photo.url`` (what the host's serializer gives); a cleared photo is an
``offer-updated`` with the whole offer, never an ``offer-image-updated`` with a null URL.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import transaction
from django.test import override_settings

from hotel.models import Offer
from offer_realtime.checks import check_model
from offer_realtime.events import to_json_data
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_image
from tests.testapp.models import Deal, Venue
from tests.testapp.photos import CDN
from tests.testapp.serializers import DealSerializer

pytestmark = pytest.mark.django_db

CLOUD = "stub-cloud"
STORED = "image/upload/v1700000000/offers/abc123.jpg"
OTHER = "image/upload/v1700000500/offers/def456.jpg"


@pytest.fixture
def cloud(monkeypatch):
    """The Cloudinary SDK configured with a cloud name, as a host configures it (no network)."""
    import cloudinary

    monkeypatch.delenv("CLOUDINARY_URL", raising=False)
    monkeypatch.setattr(cloudinary, "_config", cloudinary.Config())
    cloudinary.config(cloud_name=CLOUD, api_key="123456789012345", api_secret="stub-secret", secure=True)
    return cloudinary


def deal_settings(**extra):
    """The test host with the real host's photo field: ``Deal.photo``, a CloudinaryField."""
    return override_settings(
        OFFER_REALTIME={
            "MODEL": "testapp.Deal",
            "SERIALIZER": "tests.testapp.serializers.DealSerializer",
            "HOTEL_SLUG": "venue.code",
            "CHANNEL": "venue-{hotel_slug}",
            "DELIVERY": "inline",
            **extra,
        }
    )


@pytest.fixture
def venue(db):
    return Venue.objects.create(code="harbour")


@pytest.fixture
def deal(venue, cloud):
    """A deal with a stored Cloudinary photo, created before capturing."""
    with deal_settings():
        yield Deal.objects.create(venue=venue, title="Sail", photo=STORED)


def committed(deal_id) -> dict:
    return to_json_data(DealSerializer(Deal.objects.get(pk=deal_id)).data)


class TestCloudinaryField:
    def test_loaded_value_is_a_resource_whose_url_is_what_the_serializer_gives(self, deal):
        loaded = Deal.objects.get(pk=deal.pk)
        assert type(loaded.photo).__name__ == "CloudinaryResource"
        assert loaded.photo.url == f"https://res.cloudinary.com/{CLOUD}/image/upload/v1700000000/offers/abc123.jpg"
        assert committed(deal.pk)["photo_url"] == loaded.photo.url

    def test_created_carries_the_serializer_data(self, venue, cloud):
        with deal_settings(), capture_broadcasts() as sent:
            new = Deal.objects.create(venue=venue, title="New", photo=STORED)
        assert [(e.name, e.channel) for e in sent] == [("offer-created", "venue-harbour")]
        assert sent[0].without_identity() == {"offer": committed(new.pk), "action": "created"}
        assert sent[0].data["offer"]["photo"] == STORED

    def test_refresh_from_db_then_save_sends_nothing(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.refresh_from_db()
            loaded.save()
            deal.refresh_from_db()
            deal.save()
        assert list(sent) == []

    def test_assigning_the_stored_string_again_sends_nothing(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = STORED
            loaded.save()
        assert list(sent) == []

    def test_a_put_echoing_the_current_photo_sends_only_what_changed(self, deal):
        """The real frontend's edit: every field sent back, ``photo`` as the serializer gave it."""
        loaded = Deal.objects.get(pk=deal.pk)
        echoed = DealSerializer(loaded).data
        assert echoed["photo"] == STORED
        with deal_settings(), capture_broadcasts() as sent:
            serializer = DealSerializer(loaded, data={**echoed, "title": "Sail away"})
            assert serializer.is_valid(), serializer.errors
            serializer.save()
            serializer = DealSerializer(Deal.objects.get(pk=deal.pk), data=dict(serializer.data))
            assert serializer.is_valid(), serializer.errors
            serializer.save()  # an unchanged PUT
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["title"] == "Sail away"

    def test_a_new_version_is_an_image_update_with_the_photos_url(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = OTHER
            loaded.save()
        assert [(e.name, e.channel) for e in sent] == [("offer-image-updated", "venue-harbour")]
        url = Deal.objects.get(pk=deal.pk).photo.url
        assert url == f"https://res.cloudinary.com/{CLOUD}/image/upload/v1700000500/offers/def456.jpg"
        assert sent[0].without_identity() == {
            "offer_id": deal.pk,
            "offer_title": "Sail",
            "photo_url": url,
            "timestamp": sent[0].data["changed_at"],
            "action": "image-updated",
        }

    @pytest.mark.parametrize("change", ["version", "format", "public_id", "type", "resource_type"])
    def test_each_part_of_the_stored_value_counts(self, deal, change):
        value = {
            "version": "image/upload/v1700000001/offers/abc123.jpg",
            "format": "image/upload/v1700000000/offers/abc123.png",
            "public_id": "image/upload/v1700000000/offers/abc124.jpg",
            "type": "image/private/v1700000000/offers/abc123.jpg",
            "resource_type": "video/upload/v1700000000/offers/abc123.jpg",
        }[change]
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = value
            loaded.save()
        assert sent.names == ["offer-image-updated"]

    @pytest.mark.parametrize("cleared", [None, ""])
    def test_clearing_is_one_offer_updated_with_a_null_photo_url(self, deal, cleared):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = cleared
            loaded.save()
        assert sent.names == ["offer-updated"]
        assert sent[0].without_identity() == {"offer": committed(deal.pk), "action": "updated"}
        assert sent[0].data["offer"]["photo_url"] is None

    def test_an_upload_is_sent_to_cloudinary_and_broadcast_with_its_url(self, deal, cloud):
        from tests.example.cloudinary_stub import CloudinaryStub

        with CloudinaryStub() as stub:
            cloud.config(upload_prefix=stub.url)
            with deal_settings(), capture_broadcasts() as sent:
                loaded = Deal.objects.get(pk=deal.pk)
                loaded.photo = make_image("sunset.png")
                loaded.save()
        assert stub.actions() == ["upload"]
        stored = Deal.objects.get(pk=deal.pk).photo
        assert stored.public_id != "offers/abc123"
        assert sent.names == ["offer-image-updated"]
        assert sent[0].data["photo_url"] == stored.url
        assert sent[0].data["photo_url"].startswith(f"https://res.cloudinary.com/{CLOUD}/image/upload/v")

    def test_an_upload_that_lands_on_the_same_stored_value_is_still_a_change(self, deal, cloud, monkeypatch):
        """overwrite=True with a fixed public_id within the same second: same resource, new image."""
        from tests.example import cloudinary_stub

        real = cloudinary_stub._upload_result

        def same_asset(fields, file_name, data):
            return {
                **real(fields, file_name, data),
                "public_id": "offers/abc123",
                "version": 1700000000,
                "format": "jpg",
            }

        monkeypatch.setattr(cloudinary_stub, "_upload_result", same_asset)
        with cloudinary_stub.CloudinaryStub() as stub:
            cloud.config(upload_prefix=stub.url)
            with deal_settings(), capture_broadcasts() as sent:
                loaded = Deal.objects.get(pk=deal.pk)
                loaded.photo = make_image("again.png")
                loaded.save()
                assert loaded.photo.get_prep_value() == STORED
                loaded.save()  # saved again: nothing new
        assert stub.actions() == ["upload"]
        assert sent.names == ["offer-image-updated"]

    def test_update_fields_without_the_photo_ignores_an_unsaved_photo(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = OTHER
            loaded.title = "Renamed"
            loaded.save(update_fields=["title"])
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["photo"] == STORED

    def test_title_and_new_photo_send_updated_then_image_updated(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            loaded.photo = OTHER
            loaded.title = "Renamed"
            loaded.save()
        assert sent.names == ["offer-updated", "offer-image-updated"]
        assert sent[1].data["photo_url"] == sent[0].data["offer"]["photo_url"]

    def test_set_then_cleared_in_one_transaction_is_one_offer_updated(self, deal):
        with deal_settings(), capture_broadcasts() as sent:
            loaded = Deal.objects.get(pk=deal.pk)
            with transaction.atomic():
                loaded.photo = OTHER
                loaded.save()
                loaded.photo = None
                loaded.save()
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["photo_url"] is None

    def test_the_check_passes_with_zero_configuration(self, cloud):
        with deal_settings():
            assert [m for m in check_model() if m.id == "offer_realtime.E004"] == []
            call_command("check")


class TestFileField:
    """The example's ImageField on local storage (and any other storage's FileField)."""

    @pytest.fixture
    def photo_offer(self, hotel):
        offer = Offer.objects.create(hotel=hotel, title="Golf", short_description="Three nights")
        offer.photo.save("old.png", ContentFile(make_image().read()), save=True)
        return offer

    def test_refresh_from_db_or_assigning_the_stored_name_sends_nothing(self, photo_offer):
        with capture_broadcasts() as sent:
            photo_offer.refresh_from_db()
            photo_offer.save()
            loaded = Offer.objects.get(pk=photo_offer.pk)
            loaded.photo = photo_offer.photo.name
            loaded.save()
        assert list(sent) == []

    def test_clearing_is_one_offer_updated_with_a_null_photo_url(self, photo_offer):
        with capture_broadcasts() as sent:
            photo_offer.photo = None
            photo_offer.save()
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["photo_url"] is None
        assert sent[0].data["offer"]["id"] == photo_offer.pk

    def test_an_upload_that_overwrites_the_same_name_is_a_change(self, photo_offer, monkeypatch, settings):
        field = Offer._meta.get_field("photo")
        monkeypatch.setattr(field, "storage", FileSystemStorage(location=settings.MEDIA_ROOT, allow_overwrite=True))
        with capture_broadcasts() as sent:
            photo_offer.photo = make_image("old.png")
            photo_offer.save()
        assert photo_offer.photo.name == "offers/old.png"  # the same stored value
        assert sent.names == ["offer-image-updated"]
        assert sent[0].data["photo_url"] == Offer.objects.get(pk=photo_offer.pk).photo.url
        assert sent[0].data["action"] == "image-updated"

    def test_photo_url_is_the_storages_url(self, photo_offer):
        with capture_broadcasts() as sent:
            photo_offer.photo = make_image("new.png")
            photo_offer.save()
        assert sent[0].data["photo_url"] == Offer.objects.get(pk=photo_offer.pk).photo.url
        assert sent[0].data["photo_url"].startswith("/media/offers/new")


class TestCustomFieldWithPhotoUrl:
    """Any other field: ``PHOTO_URL`` names a callable ``offer -> str | None``."""

    SETTINGS: ClassVar[dict[str, str]] = {
        "PHOTO_FIELD": "image_key",
        "PHOTO_URL": "tests.testapp.photos.image_key_url",
    }

    def test_set_replace_clear(self, venue):
        with deal_settings(**self.SETTINGS):
            deal = Deal.objects.create(venue=venue, title="Kayak")
            with capture_broadcasts() as sent:
                deal.image_key = "kayak-1"
                deal.save()
            assert sent.names == ["offer-image-updated"]
            assert sent[0].data["photo_url"] == f"{CDN}kayak-1.webp"

            with capture_broadcasts() as sent:
                Deal.objects.get(pk=deal.pk).save()
                deal.image_key = "kayak-1"
                deal.save()
            assert list(sent) == []

            with capture_broadcasts() as sent:
                deal.image_key = ""
                deal.save()
            assert sent.names == ["offer-updated"]
            assert sent[0].data["offer"]["image_url"] is None

    def test_the_check_passes_with_photo_url_and_fails_without(self, venue):
        with deal_settings(**self.SETTINGS):
            assert [m for m in check_model() if m.id.startswith("offer_realtime.E0")] == []
        with deal_settings(PHOTO_FIELD="image_key"):
            (message,) = [m for m in check_model() if m.id == "offer_realtime.E021"]
            assert "'image_key'" in message.msg
            assert "PHOTO_URL" in message.hint
            with pytest.raises(SystemCheckError, match=r"offer_realtime\.E021"):
                call_command("check")

    @pytest.mark.parametrize(
        ("path", "fragment", "check_id"),
        [
            ("tests.testapp.photos.missing", "cannot be imported", "offer_realtime.E022"),
            ("tests.testapp.photos.NOT_CALLABLE", "not callable", "offer_realtime.E023"),
        ],
    )
    def test_a_bad_photo_url_is_named(self, path, fragment, check_id):
        with deal_settings(PHOTO_FIELD="image_key", PHOTO_URL=path):
            (message,) = [m for m in check_model() if m.id == check_id]
        assert "PHOTO_URL" in message.msg and fragment in message.msg

    def test_photo_url_overrides_the_url_of_a_file_field(self, hotel):
        with override_settings(OFFER_REALTIME={"PHOTO_URL": "tests.test_photo_fields.absolute_photo_url"}):
            offer = Offer.objects.create(hotel=hotel, title="Spa", short_description="x")
            with capture_broadcasts() as sent:
                offer.photo = make_image("abs.png")
                offer.save()
        assert sent[0].data["photo_url"] == "https://hotel.example" + Offer.objects.get(pk=offer.pk).photo.url


def absolute_photo_url(offer) -> str | None:
    """A PHOTO_URL callable for a FileField, making the URL absolute."""
    return "https://hotel.example" + offer.photo.url if offer.photo else None
