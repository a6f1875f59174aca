"""The example project around the API: demo data command, OpenAPI schema, admin, start-up message."""

from __future__ import annotations

import io
import logging
import re

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import payload, token_client

# -- demo_data -----------------------------------------------------------------------------


def _run_demo_data(*args: str) -> str:
    out = io.StringIO()
    call_command("demo_data", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_demo_data_is_idempotent_and_prints_a_working_curl():
    from hotel.models import Hotel, Offer, StaffProfile

    with capture_broadcasts() as sent:
        first = _run_demo_data()
    counts = (Hotel.objects.count(), StaffProfile.objects.count(), Offer.objects.count(), Token.objects.count())
    second = _run_demo_data()

    assert first == second
    assert counts == (2, 2, 4, 2)
    assert (Hotel.objects.count(), StaffProfile.objects.count(), Offer.objects.count(), Token.objects.count()) == counts
    assert sorted(Hotel.objects.values_list("slug", flat=True)) == ["galway", "killarney"]
    # The demo offers are broadcast like any other new offer.
    assert sorted({(e.name, e.channel) for e in sent}) == [
        ("offer-created", "hotel-galway"),
        ("offer-created", "hotel-killarney"),
    ]

    killarney_key = Token.objects.get(user__username="killarney-staff").key
    galway_key = Token.objects.get(user__username="galway-staff").key
    assert f"token {killarney_key}" in first and f"token {galway_key}" in first
    expected_curl = (
        "curl -X POST http://127.0.0.1:8000/api/staff/hotel/killarney/offers/ \\\n"
        f'  -H "Authorization: Token {killarney_key}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        '  -d \'{"title":"Test Offer","short_description":"Test","is_active":true}\'\n'
    )
    assert expected_curl in first

    # The printed token and body work as printed; the other hotel's token does not.
    body = re.search(r"-d '(.*)'", first).group(1)
    killarney = token_client(Token.objects.get(key=killarney_key))
    response = killarney.post("/api/staff/hotel/killarney/offers/", body, content_type="application/json")
    assert response.status_code == 201
    assert token_client(Token.objects.get(key=galway_key)).get("/api/staff/hotel/killarney/offers/").status_code == 403


def _logins(output: str) -> dict[str, str]:
    """``{username: password}`` as demo_data prints them (a changed password is not printed)."""
    return dict(re.findall(r"user (\S+), password ([0-9a-f]{16})\b", output))


@pytest.mark.django_db
def test_demo_data_prints_board_logins_that_work(client):
    from hotel.models import Hotel

    output = _run_demo_data()
    logins = _logins(output)

    assert set(logins) == {"killarney-staff", "galway-staff", "admin"}
    assert "Staff board http://127.0.0.1:8000/staff/" in output
    # What a person does with it: the login form at /staff/, then the board of their hotel.
    for hotel in Hotel.objects.all():
        username = f"{hotel.slug}-staff"
        response = client.post("/accounts/login/", {"username": username, "password": logins[username]})
        assert response.status_code == 302, response.content.decode()[:500]
        response = client.get("/staff/", follow=True)
        assert response.redirect_chain == [(f"/staff/{hotel.slug}/offers/live/", 302)]
        assert response.status_code == 200 and hotel.name in response.content.decode()
        client.logout()
    bad = client.post("/accounts/login/", {"username": "killarney-staff", "password": logins["galway-staff"]})
    assert bad.status_code == 200 and "did not match" in bad.content.decode()


@pytest.mark.django_db
def test_demo_data_creates_an_admin_who_can_use_the_admin(client):
    from django.contrib.auth import get_user_model

    output = _run_demo_data()
    password = _logins(output)["admin"]

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.is_active
    assert "Admin http://127.0.0.1:8000/admin/: user admin, password " in output
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": password, "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get("/admin/hotel/offer/").status_code == 200
    # The staff users are not admins.
    client.logout()
    staff_password = _logins(output)["killarney-staff"]
    response = client.post("/admin/login/", {"username": "killarney-staff", "password": staff_password})
    assert response.status_code == 200  # the form again, with an error


@pytest.mark.django_db
def test_demo_data_prints_the_same_logins_every_run_and_creates_no_duplicates():
    from django.contrib.auth import get_user_model

    first = _run_demo_data()
    users = sorted(get_user_model().objects.values_list("username", "password"))
    second = _run_demo_data()

    assert second == first
    assert _logins(first) and _logins(second) == _logins(first)
    # The stored hashes did not change either: a second run sets no new passwords.
    assert sorted(get_user_model().objects.values_list("username", "password")) == users
    assert len(users) == 3


@pytest.mark.django_db
def test_demo_data_leaves_a_changed_password_alone_unless_reset():
    from django.contrib.auth import get_user_model

    printed = _logins(_run_demo_data())
    user = get_user_model().objects.get(username="galway-staff")
    user.set_password("chosen-in-the-admin")
    user.save()

    output = _run_demo_data()
    assert "galway-staff" not in _logins(output) and _logins(output)["killarney-staff"] == printed["killarney-staff"]
    assert "user galway-staff, password (changed since demo_data set it; --reset-passwords sets it back)" in output
    user.refresh_from_db()
    assert user.check_password("chosen-in-the-admin")

    assert _logins(_run_demo_data("--reset-passwords")) == printed
    user.refresh_from_db()
    assert user.check_password(printed["galway-staff"])


@pytest.mark.django_db
def test_demo_data_passwords_depend_on_the_secret_key(settings):
    first = _logins(_run_demo_data())
    settings.SECRET_KEY = "another-deployment-key"

    second = _logins(_run_demo_data("--reset-passwords"))
    assert set(second) == set(first) and all(second[name] != first[name] for name in first)
    assert len(set(second.values())) == 3


@pytest.mark.django_db
def test_demo_data_warns_about_the_public_development_key(settings):
    from hotel.management.commands.demo_data import DEVELOPMENT_SECRET_KEY

    settings.SECRET_KEY = DEVELOPMENT_SECRET_KEY
    assert "anyone can compute them" in _run_demo_data()
    settings.SECRET_KEY = "a-real-secret"
    assert "anyone can compute them" not in _run_demo_data()


@pytest.mark.django_db
def test_demo_data_base_url_from_option_or_django_port(monkeypatch):
    output = _run_demo_data("--base-url", "https://hotel.example.com/")
    assert "curl -X POST https://hotel.example.com/api/staff/hotel/killarney/offers/" in output
    assert "Open https://hotel.example.com/ in a browser" in output

    # live.sh and a runserver on another port say it with DJANGO_PORT.
    monkeypatch.setenv("DJANGO_PORT", "8123")
    output = _run_demo_data()
    assert "curl -X POST http://127.0.0.1:8123/api/staff/hotel/killarney/offers/" in output
    assert "Staff board http://127.0.0.1:8123/staff/" in output
    assert ":8000" not in output
    assert "curl -X POST http://127.0.0.1:9000/" in _run_demo_data("--base-url", "http://127.0.0.1:9000")


# -- the home page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_home_page_links_to_every_page(client):
    empty = client.get("/")
    assert empty.status_code == 200
    assert "No hotels yet" in empty.content.decode() and "demo_data" in empty.content.decode()

    output = _run_demo_data()
    response = client.get("/")
    html = response.content.decode()

    assert response.status_code == 200
    hrefs = set(re.findall(r'href="([^"]+)"', html))
    assert {"/staff/", "/admin/", "/hotels/killarney/offers/", "/hotels/galway/offers/"} <= hrefs
    assert "/api/docs/" in hrefs or "/api/schema/" in hrefs
    for username in ("killarney-staff", "galway-staff", "admin"):
        assert f"<code>{username}</code>" in html
    # Every link answers (the staff board and the admin with their login pages).
    for href in hrefs - {"data:,"}:
        if href.endswith(".css"):
            continue
        assert client.get(href, follow=True).status_code == 200, href
    # Passwords are printed in the terminal, never served.
    assert not any(password in html for password in _logins(output).values())


# -- OpenAPI schema ------------------------------------------------------------------------


def test_schema_generates_valid_without_warnings(tmp_path):
    """``manage.py spectacular --validate --fail-on-warn`` passes."""
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/staff/hotel/{hotel_slug}/offers/{id}/upload-image/" in target.read_text()


@pytest.mark.django_db
def test_schema_endpoint_describes_the_upload():
    from rest_framework.test import APIClient

    response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    schema = response.json()
    upload = schema["paths"]["/api/staff/hotel/{hotel_slug}/offers/{id}/upload-image/"]["post"]
    body = upload["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    component = body["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][component]["properties"]["photo"] == {
        "type": "string",
        "format": "binary",
        "description": schema["components"]["schemas"][component]["properties"]["photo"]["description"],
    }
    assert schema["components"]["schemas"][component]["required"] == ["photo"]
    assert set(upload["responses"]) == {"200", "400", "404", "502"}
    assert {p["name"]: p["schema"]["type"] for p in upload["parameters"]} == {"hotel_slug": "string", "id": "integer"}
    assert {"tokenAuth": []} in upload["security"]
    offers = schema["paths"]["/api/staff/hotel/{hotel_slug}/offers/"]["get"]
    assert offers["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/staff/hotel/{hotel_slug}/offers/", "post"),
        ("/api/staff/hotel/{hotel_slug}/offers/{id}/", "put"),
        ("/api/staff/hotel/{hotel_slug}/offers/{id}/", "patch"),
    ],
)
def test_schema_shows_json_and_multipart_bodies_for_offer_writes(path, method):
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"][path][method]
    body = operation["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}

    def properties(media_type):
        name = body[media_type]["schema"]["$ref"].rsplit("/", 1)[1]
        return schema["components"]["schemas"][name]["properties"]

    multipart, json_body = properties("multipart/form-data"), properties("application/json")
    assert multipart["photo"]["format"] == "binary" and multipart["photo"]["nullable"] is True
    assert json_body["photo"]["type"] == "string" and "format" not in json_body["photo"]
    assert json_body["photo"]["nullable"] is True
    fields = {
        "title",
        "short_description",
        "details_text",
        "details_html",
        "valid_from",
        "valid_to",
        "tag",
        "book_now_url",
        "photo",
        "sort_order",
        "is_active",
    }
    assert set(multipart) == set(json_body) == fields  # photo_url, id, created_at are read-only
    assert json_body["valid_from"]["nullable"] is True
    assert {"400", "502"} <= set(operation["responses"])


@pytest.mark.django_db
def test_swagger_ui_needs_no_cdn(client, settings):
    pytest.importorskip("drf_spectacular_sidecar")
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert not re.search(r"https?://(?!localhost|testserver)", re.sub(r"<!--.*?-->", "", html, flags=re.S))


# -- admin ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admin_change_broadcasts_offer_updated(admin_client, killarney):
    from hotel.models import Offer
    from tests.example.test_staff_api import offer_json

    offer = Offer.objects.create(hotel=killarney, title="Spa Weekend", short_description="Two nights")
    form = {
        "hotel": killarney.pk,
        "title": "Spa Weekend (admin edit)",
        "short_description": "Two nights",
        "details_text": "Edited in the admin",
        "details_html": "",
        "tag": "Spa",
        "book_now_url": "",
        "valid_from": "",
        "valid_to": "",
        "is_active": "on",
        "sort_order": "3",
        "_save": "Save",
    }
    with capture_broadcasts() as sent:
        response = admin_client.post(f"/admin/hotel/offer/{offer.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:2000]
    offer.refresh_from_db()
    assert offer.title == "Spa Weekend (admin edit)"
    assert [(e.name, e.channel) for e in sent] == [("offer-updated", "hotel-killarney")]
    assert payload(sent[0]) == {"offer": offer_json(offer), "action": "updated"}


@pytest.mark.django_db
@pytest.mark.parametrize("model", ["hotel", "staffprofile", "offer"])
def test_admin_pages_load(admin_client, killarney, model):
    assert admin_client.get(f"/admin/hotel/{model}/").status_code == 200
    assert admin_client.get(f"/admin/hotel/{model}/add/").status_code == 200


# -- start-up message ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environ", "serving"),
    [
        (["manage.py", "runserver"], {"RUN_MAIN": "true"}, True),  # the autoreloader's serving child
        (["manage.py", "runserver"], {}, False),  # the autoreloader's watching parent
        (["manage.py", "runserver", "--noreload"], {}, True),
        (["manage.py", "migrate"], {}, False),
        (["manage.py", "demo_data"], {"RUN_MAIN": "true"}, False),
        (["pytest"], {}, False),
    ],
)
def test_only_the_serving_process_announces(argv, environ, serving):
    from hotel.startup import is_serving_process

    assert is_serving_process(argv, environ) is serving


def test_start_up_line_without_pusher_credentials(caplog, monkeypatch):
    from hotel import startup

    monkeypatch.setattr(startup, "_announced", False)
    with caplog.at_level(logging.INFO, logger="hotel.startup"):
        startup.announce_event_delivery(force=True)
        startup.announce_event_delivery(force=True)  # once per process

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            (
                "Pusher is not configured (PUSHER_APP_ID, PUSHER_KEY, PUSHER_SECRET not set): offer events are "
                "only written to the log ('offer_realtime.events'), not sent."
            ),
        )
    ]


def test_start_up_line_with_pusher_credentials(settings):
    from hotel.startup import event_delivery_description

    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "42", "key", "secret"
    settings.PUSHER_CLUSTER = "eu"
    assert event_delivery_description() == "Offer events are sent to Pusher app 42 (cluster eu)."
    settings.PUSHER_HOST, settings.PUSHER_PORT = "127.0.0.1", "6001"
    assert event_delivery_description() == "Offer events are sent to Pusher app 42 (127.0.0.1:6001)."


def test_start_up_is_silent_outside_the_server(caplog, monkeypatch):
    from hotel import startup

    monkeypatch.setattr(startup, "_announced", False)
    monkeypatch.setattr("sys.argv", ["manage.py", "migrate"])
    with caplog.at_level(logging.INFO, logger="hotel.startup"):
        startup.announce_event_delivery()

    assert caplog.records == []
