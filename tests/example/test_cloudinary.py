"""Offer photos on Cloudinary, against a loopback stand-in for its upload API.

The project's settings pick Cloudinary storage only when ``CLOUDINARY_URL`` is set at
start-up, and django-cloudinary-storage reads its credentials when first imported.
The fixture therefore sets ``CLOUDINARY_URL`` (to the stub) before importing it, gives
the SDK a fresh configuration for the test, and overrides ``STORAGES``.
"""

from __future__ import annotations

import time

import pytest
from django.db import DatabaseError
from django.test.signals import setting_changed

from hotel import uploads
from offer_realtime.testing import capture_broadcasts
from tests.example.cloudinary_stub import CLOUD_NAME, CloudinaryStub
from tests.example.conftest import image_bytes, stored_files, upload

pytestmark = pytest.mark.django_db

RES = f"https://res.cloudinary.com/{CLOUD_NAME}/image/upload/v1/"


@pytest.fixture
def cloudinary_stub(monkeypatch, settings):
    """Cloudinary storage, with the SDK talking to a loopback stub; yields the stub."""
    import cloudinary

    with CloudinaryStub() as stub:
        monkeypatch.setenv("CLOUDINARY_URL", stub.cloudinary_url)
        # A fresh SDK configuration parsed from that URL; the old one comes back afterwards.
        monkeypatch.setattr(cloudinary, "_config", cloudinary.Config())
        cloudinary.config(secure=True)
        from cloudinary_storage import app_settings

        import hotel.storage  # noqa: F401 - imports cloudinary_storage while CLOUDINARY_URL is set

        # app_settings re-imports itself (and re-checks credentials) whenever MEDIA_URL
        # changes; without CLOUDINARY_URL after this test that would raise in other tests.
        setting_changed.disconnect(app_settings.reload_settings)
        settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "hotel.storage.OfferCloudinaryStorage"}}
        settings.HOTEL_CLOUDINARY_TIMEOUT = 5
        yield stub


def _post_photo(api, offer, name="sunset.jpg", data=None):
    return api.post(
        f"/api/staff/hotel/killarney/offers/{offer.pk}/upload-image/",
        {"photo": upload(name, data or image_bytes("JPEG"), "image/jpeg")},
    )


def test_upload_goes_to_cloudinary_and_broadcasts_its_url(api, spa_offer, cloudinary_stub, media_root):
    data = image_bytes("JPEG", (64, 48))
    with capture_broadcasts() as sent:
        response = _post_photo(api, spa_offer, data=data)

    assert response.status_code == 200, response.content
    [request] = cloudinary_stub.requests
    assert request.action == "upload"
    assert request.path == f"/v1_1/{CLOUD_NAME}/image/upload"
    assert request.file_bytes == data
    assert request.fields["folder"] == "media/offers"
    assert request.fields["tags"] == "media"
    assert request.fields["api_key"] and request.fields["signature"]
    spa_offer.refresh_from_db()
    public_id = spa_offer.photo.name
    assert public_id.startswith("media/offers/sunset_")
    url = RES + public_id
    assert response.json() == {"message": "Image uploaded successfully", "photo_url": url}
    assert [(e.name, e.channel) for e in sent] == [("offer-image-updated", "hotel-killarney")]
    assert sent[0].data["photo_url"] == url
    assert sent[0].data["offer_id"] == spa_offer.pk
    assert stored_files(media_root) == []  # nothing on the local disk


def test_replacing_destroys_the_old_asset_after_commit(api, spa_offer, cloudinary_stub):
    with capture_broadcasts() as sent:
        assert _post_photo(api, spa_offer, "first.jpg").status_code == 200
        spa_offer.refresh_from_db()
        first = spa_offer.photo.name
        assert cloudinary_stub.actions() == ["upload"]
        assert sent.names == ["offer-image-updated"]  # reading runs the first request's commit

        assert _post_photo(api, spa_offer, "second.jpg").status_code == 200
        spa_offer.refresh_from_db()
        second = spa_offer.photo.name

    assert cloudinary_stub.actions() == ["upload", "upload", "destroy"]
    assert cloudinary_stub.destroyed() == [first]
    assert second.startswith("media/offers/second_")
    assert [e.data["photo_url"] for e in sent] == [RES + first, RES + second]


@pytest.mark.parametrize("failure", ["error-answer", "hang", "unreachable"])
def test_cloudinary_failure_is_502_and_changes_nothing(api, spa_offer, cloudinary_stub, settings, failure):
    import cloudinary

    with capture_broadcasts() as sent:
        assert _post_photo(api, spa_offer, "first.jpg").status_code == 200
        spa_offer.refresh_from_db()
        first = spa_offer.photo.name
        sent.clear()

        if failure == "error-answer":
            cloudinary_stub.mode = "fail"
        elif failure == "hang":
            cloudinary_stub.mode = "hang"
            settings.HOTEL_CLOUDINARY_TIMEOUT = 0.5
        else:
            cloudinary.config(upload_prefix="http://127.0.0.1:9")  # discard port: nothing listens
        started = time.monotonic()
        response = _post_photo(api, spa_offer, "second.jpg")
        elapsed = time.monotonic() - started

    assert response.status_code == 502
    assert response.json() == {"error": uploads.STORAGE_UNAVAILABLE}
    assert elapsed < 4, "the upload timeout did not apply"
    spa_offer.refresh_from_db()
    assert spa_offer.photo.name == first
    assert "destroy" not in cloudinary_stub.actions()
    assert list(sent) == []


def test_database_failure_after_upload_destroys_the_new_asset(api, spa_offer, cloudinary_stub, monkeypatch):
    from hotel.models import Offer

    def failing_save(self, *args, **kwargs):
        raise DatabaseError("simulated failure while saving the offer")

    monkeypatch.setattr(Offer, "save", failing_save)
    with capture_broadcasts() as sent:
        with pytest.raises(DatabaseError):
            _post_photo(api, spa_offer)
    monkeypatch.undo()  # also ends the stub's environment; the stub itself is done

    [upload_request, destroy_request] = cloudinary_stub.requests
    assert (upload_request.action, destroy_request.action) == ("upload", "destroy")
    assert destroy_request.fields["public_id"].startswith("media/offers/sunset_")
    spa_offer.refresh_from_db()
    assert spa_offer.photo.name == ""
    assert list(sent) == []


def test_deleting_an_offer_destroys_its_asset_after_commit(api, spa_offer, cloudinary_stub):
    with capture_broadcasts() as sent:
        assert _post_photo(api, spa_offer).status_code == 200
        spa_offer.refresh_from_db()
        public_id = spa_offer.photo.name
        assert sent.names == ["offer-image-updated"]
        assert api.delete(f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/").status_code == 204

    assert cloudinary_stub.destroyed() == [public_id]
    assert sent.names == ["offer-image-updated", "offer-deleted"]


def test_failed_destroy_of_the_old_asset_does_not_fail_the_request(api, spa_offer, cloudinary_stub, caplog):
    """The new photo is committed either way; the orphan is logged for someone to clean up."""
    with capture_broadcasts() as sent:
        assert _post_photo(api, spa_offer, "first.jpg").status_code == 200
        spa_offer.refresh_from_db()
        first = spa_offer.photo.name
        sent.clear()

        real_answer = cloudinary_stub._handle

        def fail_destroy(handler, body):
            cloudinary_stub.mode = "fail" if handler.path.endswith("/destroy") else "ok"
            real_answer(handler, body)

        cloudinary_stub._handle = fail_destroy
        response = _post_photo(api, spa_offer, "second.jpg")
        assert response.status_code == 200

    assert cloudinary_stub.destroyed() == [first]
    assert sent.names == ["offer-image-updated"]
    assert f"Could not delete replaced photo '{first}'" in caplog.text


# -- the main endpoint (POST/PATCH with a multipart photo, JSON null) --------------------------

OFFERS = "/api/staff/hotel/killarney/offers/"


def test_create_with_a_photo_uploads_it_to_cloudinary(api, killarney, cloudinary_stub, media_root):
    from hotel.models import Offer

    data = image_bytes("JPEG", (64, 48))
    with capture_broadcasts() as sent:
        response = api.post(
            OFFERS,
            {
                "title": "Spa",
                "short_description": "x",
                "is_active": "true",
                "photo": upload("spa.jpg", data, "image/jpeg"),
            },
            format="multipart",
        )

    assert response.status_code == 201, response.content
    [request] = cloudinary_stub.requests
    assert (request.action, request.file_bytes, request.fields["folder"]) == ("upload", data, "media/offers")
    offer = Offer.objects.get()
    assert offer.photo.name.startswith("media/offers/spa_")
    assert response.json()["photo_url"] == response.json()["photo"] == RES + offer.photo.name
    assert sent.names == ["offer-created"]
    assert sent[0].data["offer"]["photo_url"] == RES + offer.photo.name
    assert stored_files(media_root) == []


def test_patch_with_a_photo_replaces_it_and_destroys_the_old_asset_after_commit(api, spa_offer, cloudinary_stub):
    url = f"{OFFERS}{spa_offer.pk}/"
    with capture_broadcasts() as sent:
        assert api.patch(url, {"photo": upload("first.jpg", image_bytes("JPEG"), "image/jpeg")}).status_code == 200
        spa_offer.refresh_from_db()
        first = spa_offer.photo.name
        assert sent.names == ["offer-image-updated"]

        second = upload("second.jpg", image_bytes("JPEG"), "image/jpeg")
        response = api.patch(url, {"title": "Renamed", "photo": second})
        assert response.status_code == 200, response.content
        spa_offer.refresh_from_db()

    assert spa_offer.photo.name.startswith("media/offers/second_")
    assert cloudinary_stub.actions() == ["upload", "upload", "destroy"]
    assert cloudinary_stub.destroyed() == [first]
    assert sent.names == ["offer-image-updated", "offer-updated", "offer-image-updated"]
    assert sent[2].data["photo_url"] == RES + spa_offer.photo.name


def test_json_null_removes_the_photo_and_destroys_the_asset(api, spa_offer, cloudinary_stub):
    url = f"{OFFERS}{spa_offer.pk}/"
    with capture_broadcasts():
        assert _post_photo(api, spa_offer).status_code == 200
        spa_offer.refresh_from_db()
        public_id = spa_offer.photo.name

        response = api.patch(url, {"photo": None}, format="json")

    assert response.status_code == 200
    assert response.json()["photo_url"] is None
    spa_offer.refresh_from_db()
    assert not spa_offer.photo
    assert cloudinary_stub.destroyed() == [public_id]


@pytest.mark.parametrize("method", ["post", "patch"])
def test_main_endpoint_cloudinary_failure_is_502_and_changes_nothing(api, spa_offer, cloudinary_stub, method):
    from hotel.models import Offer

    cloudinary_stub.mode = "fail"
    url = OFFERS if method == "post" else f"{OFFERS}{spa_offer.pk}/"
    body = {"title": "Renamed", "short_description": "x", "photo": upload("a.jpg", image_bytes("JPEG"), "image/jpeg")}
    with capture_broadcasts() as sent:
        response = getattr(api, method)(url, body, format="multipart")

    assert response.status_code == 502
    assert response.json() == {"error": uploads.STORAGE_UNAVAILABLE}
    assert list(Offer.objects.values_list("title", "photo")) == [("Spa Weekend", "")]
    assert list(sent) == []


def test_main_endpoint_database_failure_after_upload_destroys_the_new_asset(
    api, spa_offer, cloudinary_stub, monkeypatch
):
    from hotel.models import Offer

    def failing_save(self, *args, **kwargs):
        raise DatabaseError("simulated failure while saving the offer")

    monkeypatch.setattr(Offer, "save", failing_save)
    with capture_broadcasts() as sent:
        with pytest.raises(DatabaseError):
            api.patch(f"{OFFERS}{spa_offer.pk}/", {"photo": upload("a.jpg", image_bytes("JPEG"), "image/jpeg")})
    monkeypatch.undo()

    assert cloudinary_stub.actions() == ["upload", "destroy"]
    spa_offer.refresh_from_db()
    assert not spa_offer.photo
    assert list(sent) == []
