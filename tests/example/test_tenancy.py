"""Who may call what: every endpoint against every way of reaching another hotel's data.

Each refused request must leave the database and storage untouched and send no event.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from tests.example.conftest import image_bytes, stored_files, token_client, upload

pytestmark = pytest.mark.django_db

# name -> (method, URL template, body maker, detail endpoint?)
ENDPOINTS = {
    "list": ("get", "/api/staff/hotel/{slug}/offers/", None, False),
    "create": ("post", "/api/staff/hotel/{slug}/offers/", lambda: {"title": "Intruder offer"}, False),
    "retrieve": ("get", "/api/staff/hotel/{slug}/offers/{id}/", None, True),
    "update": ("put", "/api/staff/hotel/{slug}/offers/{id}/", lambda: {"title": "Hijacked"}, True),
    "partial_update": ("patch", "/api/staff/hotel/{slug}/offers/{id}/", lambda: {"title": "Hijacked"}, True),
    "destroy": ("delete", "/api/staff/hotel/{slug}/offers/{id}/", None, True),
    "upload_image": (
        "post",
        "/api/staff/hotel/{slug}/offers/{id}/upload-image/",
        lambda: {"photo": upload("x.png", image_bytes("PNG"))},
        True,
    ),
}

# case -> (whose credentials, URL slug, which offer id, expected status)
#   "other-hotel-slug":      killarney staff on galway's URLs and galway's offer
#   "unknown-hotel-slug":    killarney staff on a hotel that does not exist
#   "own-slug-other-offer":  killarney staff, killarney URL, galway's offer id
#   "anonymous":             no credentials at all, on galway's URLs
#   "no-staff-profile":      a valid token of a user who works for no hotel
#   "bad-token":             a token that does not exist
CASES = {
    "other-hotel-slug": ("killarney", "galway", "galway", 403),
    "unknown-hotel-slug": ("killarney", "no-such-hotel", "galway", 403),
    "own-slug-other-offer": ("killarney", "killarney", "galway", 404),
    "anonymous": (None, "galway", "galway", 401),
    "no-staff-profile": ("nobody", "galway", "galway", 403),
    "bad-token": ("forged", "galway", "galway", 401),
}

MATRIX = [
    pytest.param(endpoint, case, id=f"{endpoint}-{case}")
    for endpoint, (_, _, _, detail) in ENDPOINTS.items()
    for case in CASES
    # "another hotel's offer id under your own slug" only exists for detail URLs.
    if detail or case != "own-slug-other-offer"
]


def _state(media_root):
    from hotel.models import Offer

    return list(Offer.objects.order_by("pk").values()), stored_files(media_root)


@pytest.mark.parametrize(("endpoint", "case"), MATRIX)
def test_refused(endpoint, case, killarney_token, galway_token, seafood_offer, photo_offer, media_root):
    from offer_realtime.testing import capture_broadcasts

    method, template, body, _ = ENDPOINTS[endpoint]
    who, slug, offer_of, expected = CASES[case]
    if who == "killarney":
        client = token_client(killarney_token)
    elif who == "nobody":
        client = token_client(Token.objects.create(user=get_user_model().objects.create_user("no-profile")))
    elif who == "forged":
        client = token_client(None)
        client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    else:
        client = token_client(None)
    offer_id = seafood_offer.pk if offer_of == "galway" else photo_offer.pk
    url = template.format(slug=slug, id=offer_id)
    before = _state(media_root)

    with capture_broadcasts() as sent:
        kwargs = {"format": "multipart" if endpoint == "upload_image" else "json"} if body else {}
        response = getattr(client, method)(url, body() if body else None, **kwargs)

    assert response.status_code == expected, response.content
    if expected == 401:
        assert response["WWW-Authenticate"] == "Token"
    assert "detail" in response.json()
    # Nothing of another hotel leaks into the answer.
    assert "Seafood" not in response.content.decode()
    assert _state(media_root) == before
    assert list(sent) == []


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_galway_staff_is_refused_on_killarney(endpoint, galway_token, photo_offer, media_root):
    """The mirror image: galway staff on every killarney URL (with a killarney offer id)."""
    from offer_realtime.testing import capture_broadcasts

    method, template, body, _ = ENDPOINTS[endpoint]
    before = _state(media_root)
    with capture_broadcasts() as sent:
        kwargs = {"format": "multipart" if endpoint == "upload_image" else "json"} if body else {}
        response = getattr(token_client(galway_token), method)(
            template.format(slug="killarney", id=photo_offer.pk), body() if body else None, **kwargs
        )

    assert response.status_code == 403
    assert response.json() == {"detail": "You can only manage the offers of your own hotel."}
    assert _state(media_root) == before
    assert list(sent) == []


def test_list_shows_only_own_hotel(killarney_token, galway_token, spa_offer, seafood_offer):
    killarney_list = token_client(killarney_token).get("/api/staff/hotel/killarney/offers/").json()
    galway_list = token_client(galway_token).get("/api/staff/hotel/galway/offers/").json()

    assert [o["id"] for o in killarney_list] == [spa_offer.pk]
    assert [o["id"] for o in galway_list] == [seafood_offer.pk]


def test_no_staff_profile_message(db):
    user = get_user_model().objects.create_user("guest")
    response = token_client(Token.objects.create(user=user)).get("/api/staff/hotel/killarney/offers/")

    assert response.status_code == 403
    assert response.json() == {"detail": "You are not a member of any hotel's staff."}


def test_session_authentication_works_and_keeps_csrf(killarney_token, spa_offer):
    """Logged-in staff (e.g. from the browsable API) can read; unsafe methods need the CSRF token."""
    from rest_framework.test import APIClient

    session = APIClient(enforce_csrf_checks=True)
    session.force_login(killarney_token.user)

    assert session.get("/api/staff/hotel/killarney/offers/").status_code == 200
    response = session.patch(f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/", {"title": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
