"""The event contract: pure builders and channel rules."""

import datetime
import decimal
import enum
import json
import uuid

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.safestring import SafeString

from offer_realtime import events


def test_created_payload_is_the_seed_contract():
    event = events.offer_created("hotel-killarney", 7, {"id": 7, "price": decimal.Decimal("9.50")})
    assert (event.name, event.channel) == ("offer-created", "hotel-killarney")
    assert event.data == {"offer": {"id": 7, "price": "9.50"}, "action": "created"}


def test_updated_payload():
    event = events.offer_updated("hotel-a", 1, {"id": 1})
    assert event.name == "offer-updated"
    assert event.data == {"offer": {"id": 1}, "action": "updated"}


def test_deleted_payload():
    event = events.offer_deleted("hotel-a", 3, "Spa")
    assert event.name == "offer-deleted"
    assert event.data == {"offer_id": 3, "offer_title": "Spa", "action": "deleted"}


def test_image_updated_payload_has_iso_timestamp():
    when = datetime.datetime(2026, 11, 24, 10, 30, 5, 120000, tzinfo=datetime.timezone.utc)
    event = events.offer_image_updated("hotel-a", 3, "Spa", "https://cdn/x.jpg", when)
    assert event.name == "offer-image-updated"
    assert event.data == {
        "offer_id": 3,
        "offer_title": "Spa",
        "photo_url": "https://cdn/x.jpg",
        "timestamp": "2026-11-24T10:30:05.120000+00:00",
        "action": "image-updated",
    }
    assert datetime.datetime.fromisoformat(event.data["timestamp"]) == when


@pytest.mark.parametrize("url", [None, ""])
def test_image_updated_never_carries_a_null_url(url):
    """The frontend appends "?t=..." to photo_url as it is: a cleared photo is an offer-updated."""
    with pytest.raises(ValueError, match="needs a photo_url"):
        events.offer_image_updated("hotel-a", 3, "Spa", url, datetime.datetime.now(datetime.timezone.utc))


def test_offers_updated_is_the_frontends_sync_signal():
    event = events.offers_sync("hotel-a", 7)
    assert (event.name, event.channel, event.offer_id) == ("offers-updated", "hotel-a", 7)
    assert event.data == {"action": "sync", "offer_id": 7, "reason": "too-large"}


def test_there_is_no_truncated_stub_builder():
    assert not hasattr(events, "truncated")


@pytest.mark.parametrize("slug", ["killarney", "a-b_c=d@e,f.g;h", "x" * 158])
def test_valid_channels(slug):
    assert events.channel_for("hotel-{hotel_slug}", slug) == f"hotel-{slug}"


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("kìllarney", "characters"),
        ("with space", "characters"),
        ("x" * 159, "at most 164"),
        ("", None),
    ],
)
def test_invalid_channels_are_refused(slug, reason):
    name = f"hotel-{slug}" if slug else ""
    problem = events.channel_name_problem(name)
    assert problem is not None
    if reason:
        assert reason in problem
    if slug:
        with pytest.raises(events.InvalidChannelName):
            events.channel_for("hotel-{hotel_slug}", slug)


def test_an_event_is_encoded_once_and_a_replaced_one_again(monkeypatch):
    """Its size is checked where it is built and the same text is sent: one encoding."""
    calls = []
    dumps = events.json.dumps
    monkeypatch.setattr(events.json, "dumps", lambda *args, **kwargs: calls.append(1) or dumps(*args, **kwargs))
    event = events.offer_deleted("hotel-a", 1, "Caf\u00e9 \U0001f600")
    calls.clear()  # building it may encode (to_json_data)
    assert event.size() == len(event.encoded().encode("utf-8"))
    assert event.encoded() == '{"offer_id":1,"offer_title":"Caf\u00e9 \U0001f600","action":"deleted"}'
    assert len(calls) == 1
    identified = events.with_identity(event, "id-1", identified_at())
    assert '"event_id":"id-1"' in identified.encoded()
    assert len(calls) == 2
    # The cache is no part of an event's value.
    assert identified != event and events.with_identity(event, "id-1", identified_at()) == identified


def identified_at() -> datetime.datetime:
    return datetime.datetime(2026, 12, 7, tzinfo=datetime.timezone.utc)


# -- to_json_data: plain data copied directly, anything else through JSON -------------------


def test_plain_offer_data_is_copied_not_shared():
    source = {"id": 7, "title": "Spa “Weekend” 🎉", "tags": ["spa", {"n": 1.5}], "photo_url": None, "ok": True}
    event = events.offer_created("hotel-a", 7, source)
    assert event.data["offer"] == source
    text = event.encoded()
    # The event owns its data: the caller's dict (and what is nested in it) may change later.
    source["title"] = "changed"
    source["tags"][1]["n"] = 2
    assert event.data["offer"]["title"] == "Spa “Weekend” 🎉"
    assert event.data["offer"]["tags"] == ["spa", {"n": 1.5}]
    assert event.encoded() == text


class _Kind(enum.IntEnum):
    SPA = 1


@pytest.mark.parametrize(
    "value",
    [
        {"price": decimal.Decimal("9.50")},
        {"id": uuid.UUID("0b7e1f62-6a9a-4d55-9a43-2f0c3e5a8d11")},
        {"dates": ("2026-12-07", "2026-12-08")},
        {1: "an int key"},
        {"kind": _Kind.SPA},
        {"title": SafeString("<b>Spa</b>")},
        {"when": datetime.date(2026, 12, 7)},
        {"nested": [{"price": decimal.Decimal("1.10")}]},
        {"ratio": float("nan")},
    ],
)
def test_data_json_would_change_is_what_a_json_round_trip_gives(value):
    expected = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
    got = events.to_json_data(value)
    assert json.dumps(got) == json.dumps(expected)
    assert [type(v) for v in got.values()] == [type(v) for v in expected.values()]


def test_with_identity_replaces_other_fields_in_the_same_step():
    when = datetime.datetime(2026, 12, 7, 10, 0, tzinfo=datetime.timezone.utc)
    event = events.with_identity(events.offer_deleted("hotel-a", 3, "Spa"), "id-1", when, socket_id="1.2", group="g")
    assert (event.socket_id, event.group) == ("1.2", "g")
    assert event.data == {
        "offer_id": 3,
        "offer_title": "Spa",
        "action": "deleted",
        "event_id": "id-1",
        "changed_at": "2026-12-07T10:00:00+00:00",
    }
