"""Photo upload validation and storage housekeeping (local file storage).

Every refused upload must answer 400 ``{"error": <message>}``, leave the offer's
photo and the stored files exactly as they were, and send no event.
"""

from __future__ import annotations

import io

import pytest
from django.db import DatabaseError
from PIL import Image

from hotel import uploads
from hotel.models import Offer
from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, png_with_dimensions, stored_files, upload

pytestmark = pytest.mark.django_db

ACCEPTED = "Upload a JPEG, PNG or WebP photo."


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    """A PNG with one flipped byte inside its image data: the chunk's CRC no longer matches."""
    data = bytearray(image_bytes("PNG", (32, 32), noise=True))
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0xFF
    return bytes(data)


def _noise_jpeg() -> bytes:
    return image_bytes("JPEG", (256, 256), noise=True, quality=95)


# (id, multipart body or None for an empty POST, request format, expected error)
BAD_UPLOADS = [
    ("no-file-field", {}, "multipart", "No photo file provided"),
    ("empty-body", None, None, "No photo file provided"),
    ("photo-is-a-text-field", {"photo": "not a file"}, "multipart", "No photo file provided"),
    ("json-body", {"photo": "image.jpg"}, "json", "No photo file provided"),
    (
        "file-under-another-name",
        {"image": upload("image.jpg", image_bytes("JPEG"))},
        "multipart",
        "No photo file provided",
    ),
    ("empty-file", {"photo": upload("image.jpg", b"", "image/jpeg")}, "multipart", "The photo file is empty."),
    (
        "text-named-jpg",
        {"photo": upload("image.jpg", b"hello, I am not a picture\n" * 20, "image/jpeg")},
        "multipart",
        f"The file is not an image. {ACCEPTED}",
    ),
    (
        "svg",
        {
            "photo": upload(
                "image.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/png"
            )
        },
        "multipart",
        f"The file is not an image. {ACCEPTED}",
    ),
    (
        "pdf",
        {"photo": upload("menu.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "image/jpeg")},
        "multipart",
        f"The file is not an image. {ACCEPTED}",
    ),
    (
        "png-header-only",
        {"photo": upload("image.png", b"\x89PNG\r\n\x1a\n", "image/png")},
        "multipart",
        f"The file is not an image. {ACCEPTED}",
    ),
    (
        "gif",
        {"photo": upload("anim.gif", image_bytes("GIF"), "image/gif")},
        "multipart",
        f"GIF images are not accepted. {ACCEPTED}",
    ),
    (
        "bmp",
        {"photo": upload("photo.jpg", image_bytes("BMP"), "image/jpeg")},
        "multipart",
        f"BMP images are not accepted. {ACCEPTED}",
    ),
    (
        "tiff",
        {"photo": upload("photo.png", image_bytes("TIFF"), "image/png")},
        "multipart",
        f"TIFF images are not accepted. {ACCEPTED}",
    ),
    (
        "truncated-jpeg",
        {"photo": upload("image.jpg", _truncated(_noise_jpeg()), "image/jpeg")},
        "multipart",
        uploads.DAMAGED,
    ),
    (
        "truncated-png",
        {"photo": upload("image.png", _truncated(image_bytes("PNG", (64, 64), noise=True)))},
        "multipart",
        uploads.DAMAGED,
    ),
    ("corrupt-png-crc", {"photo": upload("image.png", _corrupt_png())}, "multipart", uploads.DAMAGED),
    (
        "bomb-beyond-pillow-error-limit",
        {"photo": upload("bomb.png", png_with_dimensions(30_000, 30_000))},
        "multipart",
        "The image has too many pixels: the limit is 50 megapixels. Resize it and try again.",
    ),
    (
        "bomb-in-pillow-warning-range",
        {"photo": upload("bomb.png", png_with_dimensions(10_000, 10_000))},
        "multipart",
        "The image has too many pixels: the limit is 50 megapixels. Resize it and try again.",
    ),
    (
        "over-our-pixel-limit",
        {"photo": upload("big.png", png_with_dimensions(8_000, 7_000))},
        "multipart",
        "The image has too many pixels: the limit is 50 megapixels. Resize it and try again.",
    ),
]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("body", "fmt", "message"), [case[1:] for case in BAD_UPLOADS], ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_upload_is_400_and_changes_nothing(api, photo_offer, media_root, body, fmt, message):
    url = f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/"
    before = stored_files(media_root)
    row = Offer.objects.filter(pk=photo_offer.pk).values().get()

    with capture_broadcasts() as sent:
        response = api.post(url, body, format=fmt) if body is not None else api.post(url)

    assert response.status_code == 400, response.content
    assert response.json() == {"error": message}
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert Offer.objects.filter(pk=photo_offer.pk).values().get() == row
    assert stored_files(media_root) == before == ["offers/old.png"]
    assert list(sent) == []


def test_bad_upload_without_a_previous_photo_changes_nothing(api, spa_offer, media_root):
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/upload-image/",
            {"photo": upload("image.jpg", b"not an image", "image/jpeg")},
        )

    assert response.status_code == 400
    spa_offer.refresh_from_db()
    assert spa_offer.photo.name == ""
    assert stored_files(media_root) == []
    assert list(sent) == []


@pytest.mark.parametrize("size_over", [1, 70_000], ids=["checked-on-the-file", "refused-from-content-length"])
def test_file_over_the_size_limit(api, photo_offer, media_root, settings, size_over):
    """Just over the limit is caught on the file; far over it, from Content-Length before reading the body."""
    settings.HOTEL_OFFER_PHOTO_MAX_BYTES = 4096
    data = image_bytes("PNG", (400, 400), noise=True)[: 4096 + size_over]

    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/", {"photo": upload("big.png", data)}
        )

    assert response.status_code == 400
    assert response.json() == {"error": "The photo is too large: the limit is 4 KB."}
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_default_size_limit_is_10_mb(settings):
    del settings.HOTEL_OFFER_PHOTO_MAX_BYTES
    assert uploads.max_bytes() == 10 * 1024 * 1024
    assert uploads.too_large_message() == "The photo is too large: the limit is 10 MB."


def test_configured_pixel_limit(api, photo_offer, settings):
    settings.HOTEL_OFFER_PHOTO_MAX_PIXELS = 1000
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/",
            {"photo": upload("image.png", image_bytes("PNG", (40, 40)))},
        )

    assert response.status_code == 400
    assert response.json() == {
        "error": "The image has too many pixels: the limit is 0.001 megapixels. Resize it and try again."
    }
    assert list(sent) == []


def test_configured_formats(api, spa_offer, settings):
    settings.HOTEL_OFFER_PHOTO_FORMATS = ["PNG"]
    response = api.post(
        f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/upload-image/",
        {"photo": upload("image.jpg", image_bytes("JPEG"), "image/jpeg")},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "JPEG images are not accepted. Upload a PNG photo."}


def _mpo_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "MPO", save_all=True, append_images=[Image.new("RGB", (32, 32))])
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "stored"),
    [
        ("sunset.jpg", image_bytes("JPEG"), "offers/sunset.jpg"),
        ("sunset.png", image_bytes("PNG"), "offers/sunset.png"),
        ("sunset.webp", image_bytes("WEBP"), "offers/sunset.webp"),
        # Phone cameras' JPEGs that Pillow calls MPO.
        ("IMG_0001.JPG", _mpo_bytes(), "offers/IMG_0001.jpg"),
        # The stored extension follows the content, never the client's name.
        ("photo.php", image_bytes("PNG"), "offers/photo.png"),
        ("holiday.jpeg.html", image_bytes("JPEG"), "offers/holiday.jpeg.jpg"),
        ("../../../etc/passwd", image_bytes("PNG"), "offers/passwd.png"),
        ("x" * 200 + ".png", image_bytes("PNG"), "offers/" + "x" * 40 + ".png"),
    ],
    ids=["jpeg", "png", "webp", "mpo", "php-name", "double-extension", "path-traversal", "long-name"],
)
def test_accepted_images_and_stored_names(api, spa_offer, media_root, name, data, stored):
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/upload-image/",
            {"photo": upload(name, data, "application/octet-stream")},
        )

    assert response.status_code == 200, response.content
    spa_offer.refresh_from_db()
    assert spa_offer.photo.name == stored
    assert response.json() == {"message": "Image uploaded successfully", "photo_url": f"/media/{stored}"}
    assert stored_files(media_root) == [stored]
    assert (media_root / stored).read_bytes() == data
    assert sent.names == ["offer-image-updated"]
    assert sent[0].data["photo_url"] == f"/media/{stored}"


def test_replacing_deletes_the_old_file_only_after_commit(
    api, photo_offer, media_root, django_capture_on_commit_callbacks
):
    url = f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/"
    with capture_broadcasts() as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = api.post(url, {"photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")})
        assert response.status_code == 200
        # Not committed yet: both files exist, so a rollback would leave a valid photo.
        assert stored_files(media_root) == ["offers/new.jpg", "offers/old.png"]
        for callback in callbacks:
            callback()

    assert stored_files(media_root) == ["offers/new.jpg"]
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/new.jpg"
    assert [(e.name, e.data["photo_url"]) for e in sent] == [("offer-image-updated", "/media/offers/new.jpg")]


def test_replacing_with_the_same_file_name_keeps_both_names_distinct(api, photo_offer, media_root):
    """A new upload called like the old file gets another name, so deleting the old one is safe."""
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/",
            {"photo": upload("old.png", image_bytes("PNG", (9, 9)))},
        )

    assert response.status_code == 200
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name != "offers/old.png"
    assert stored_files(media_root) == [photo_offer.photo.name]
    assert sent.names == ["offer-image-updated"]


def test_database_failure_after_storing_deletes_the_new_file(api, photo_offer, media_root, monkeypatch):
    from hotel.models import Offer

    def failing_save(self, *args, **kwargs):
        raise DatabaseError("simulated failure while saving the offer")

    monkeypatch.setattr(Offer, "save", failing_save)
    with capture_broadcasts() as sent:
        with pytest.raises(DatabaseError):
            api.post(
                f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/",
                {"photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")},
            )
    monkeypatch.undo()

    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_local_storage_failure_is_502_and_changes_nothing(api, photo_offer, media_root, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    def disk_full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/",
            {"photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")},
        )

    assert response.status_code == 502
    assert response.json() == {"error": uploads.STORAGE_UNAVAILABLE}
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_offer_deleted_while_uploading_is_404_and_leaves_no_file(api, photo_offer, media_root, monkeypatch):
    from hotel.models import Offer

    real_check = uploads.check_photo

    def check_then_delete_offer(file):
        checked = real_check(file)
        Offer.objects.filter(pk=photo_offer.pk).delete()  # another request wins the race
        return checked

    monkeypatch.setattr(uploads, "check_photo", check_then_delete_offer)
    with capture_broadcasts():
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/upload-image/",
            {"photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")},
        )

    assert response.status_code == 404
    assert stored_files(media_root) == []  # the new file removed; the old one with its deleted offer


def test_admin_upload_uses_the_same_checks(admin_client, photo_offer, media_root):
    data = {
        "hotel": photo_offer.hotel_id,
        "title": photo_offer.title,
        "short_description": photo_offer.short_description,
        "details_text": "",
        "details_html": "",
        "tag": "",
        "book_now_url": "",
        "valid_from": "",
        "valid_to": "",
        "is_active": "on",
        "sort_order": "0",
        "photo": upload("gif.png", image_bytes("GIF"), "image/png"),
    }
    with capture_broadcasts() as sent:
        response = admin_client.post(f"/admin/hotel/offer/{photo_offer.pk}/change/", data)

    assert response.status_code == 200  # the form again, with the error
    assert f"GIF images are not accepted. {ACCEPTED}" in response.content.decode()
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert list(sent) == []
