"""Change tracking (offer_realtime.tracking) on its own: snapshots, and what they cost.

No database: the instances are built in memory, as ``Model.from_db`` builds a loaded one
(the snapshot reads ``instance.__dict__`` only).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import pickle

import pytest
from django.db import models
from django.test.utils import isolate_apps

from hotel.models import Offer
from offer_realtime import tracking


def offer_fields() -> tracking.TrackedFields:
    return tracking.tracked_fields(Offer, "photo", hotel_link="hotel", active_field="is_active")


def loaded_offer(**values) -> Offer:
    """An offer as a query returns it (post_init ran with its loaded values)."""
    row = {
        "id": 7,
        "hotel_id": 1,
        "title": "Spa",
        "short_description": "Two nights",
        "details_text": "",
        "details_html": "",
        "valid_from": datetime.date(2026, 1, 1),
        "valid_to": None,
        "tag": "Spa",
        "book_now_url": "",
        "photo": "offers/a.jpg",
        "sort_order": 1,
        "is_active": True,
        "created_at": datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
        **values,
    }
    names = [f.attname for f in Offer._meta.concrete_fields if f.attname in row]
    return Offer.from_db("default", names, [row[name] for name in names])


def test_which_fields_are_copied_as_they_are_is_decided_once_per_model():
    fields = offer_fields()
    # Django's own immutable-valued fields (str, int, bool, date, datetime, a foreign key's id).
    assert set(fields.plain_attnames) == set(fields.attnames) - {"photo"}
    # The photo compares by its stored value: never copied as it is.
    assert fields.other_attnames == ("photo",)


def test_a_snapshot_converts_the_photo_only():
    """A list of 1,000 offers takes 1,000 snapshots: plain values are not converted one by one."""
    fields = offer_fields()
    assert set(fields.converters) == {"photo"}
    offer = loaded_offer(photo="")
    snapshot = tracking.snapshot_of(offer, fields)
    assert snapshot == {**{name: offer.__dict__[name] for name in fields.attnames}, "photo": None}
    assert snapshot["title"] is offer.__dict__["title"]
    assert "id" not in snapshot  # the primary key is not tracked


def test_only_loaded_instances_are_snapshotted():
    """An offer built in code has no snapshot: what its row holds is unknown."""
    fields = offer_fields()
    built = Offer(pk=7, hotel_id=1, title="Spa")
    assert tracking.snapshot_of(built, fields) is None
    assert {"title", "hotel_id", "photo"} <= tracking.changed_fields(built, fields, None)
    assert tracking.snapshot_of(loaded_offer(), fields) is not None


def test_a_hosts_own_from_db_still_runs_and_is_put_back():
    """Django's docs show overriding ``from_db`` to record loaded values; ours wraps it."""
    with isolate_apps("hotel"):

        class Recorded(models.Model):  # noqa: DJ008 - never printed
            title = models.CharField(max_length=20)

            class Meta:
                app_label = "hotel"

            @classmethod
            def from_db(cls, db, field_names, values):
                instance = super().from_db(db, field_names, values)
                instance.loaded_from = db
                return instance

        own = Recorded.__dict__["from_db"]
        fields = tracking.tracked_fields(Recorded, "photo")
        tracking.track_loads(Recorded, fields)
        try:
            record = Recorded.from_db("default", ["id", "title"], [1, "Spa"])
            assert (record.loaded_from, tracking.snapshot_of(record, fields)) == ("default", {"title": "Spa"})
        finally:
            tracking.untrack_loads(Recorded)
        assert Recorded.__dict__["from_db"] is own

        class Plain(models.Model):  # noqa: DJ008 - never printed
            title = models.CharField(max_length=20)

            class Meta:
                app_label = "hotel"

        plain = tracking.tracked_fields(Plain, "photo")
        tracking.track_loads(Plain, plain)
        tracking.track_loads(Plain, plain)  # again: wrapped once
        assert tracking.snapshot_of(Plain.from_db("default", ["id", "title"], [1, "Spa"]), plain) == {"title": "Spa"}
        tracking.untrack_loads(Plain)
        assert "from_db" not in Plain.__dict__  # inherited from Model: removed again
        assert tracking.snapshot_of(Plain.from_db("default", ["id", "title"], [1, "Spa"]), plain) is None


def test_a_loaded_instance_with_its_snapshot_still_pickles():
    """Hosts cache model instances (pickled): the snapshot holds names and values only."""
    fields = offer_fields()
    offer = loaded_offer()
    tracking.take_snapshot(offer, fields)
    copy = pickle.loads(pickle.dumps(offer))
    assert tracking.snapshot_of(copy, fields) == tracking.snapshot_of(offer, fields)
    copy.title = "Golf"
    assert tracking.changed_fields(copy, fields, None) == {"title"}


def test_snapshot_leaves_deferred_fields_out():
    fields = offer_fields()
    names = ["id", "title"]
    offer = Offer.from_db("default", names, [7, "Spa"])
    tracking.take_snapshot(offer, fields)
    assert tracking.snapshot_of(offer, fields) == {"title": "Spa"}
    offer.title = "Golf"
    assert tracking.changed_fields(offer, fields, None) == {"title"}


def test_plain_field_change_is_found():
    fields = offer_fields()
    offer = loaded_offer()
    tracking.take_snapshot(offer, fields)
    offer.title = "Golf"
    offer.valid_from = datetime.date(2026, 2, 1)
    assert tracking.changed_fields(offer, fields, None) == {"title", "valid_from"}


def test_photo_compares_by_stored_value():
    fields = offer_fields()
    offer = loaded_offer()
    tracking.take_snapshot(offer, fields)
    assert tracking.snapshot_of(offer, fields)["photo"] == "offers/a.jpg"
    offer.photo  # noqa: B018 - the descriptor turns the stored str into a FieldFile
    assert tracking.changed_fields(offer, fields, None) == set()


def _json_field():
    return models.JSONField(default=dict)


def _array_field():
    from django.contrib.postgres.fields import ArrayField

    return ArrayField(models.JSONField(), default=list)


@pytest.mark.parametrize(
    ("make_field", "value", "mutate"),
    [
        (_json_field, {"a": [1]}, lambda value: value["a"].append(2)),
        (_array_field, [{"a": 1}], lambda value: value[0].update(a=2)),
    ],
    ids=["JSONField", "ArrayField"],
)
def test_mutable_value_mutated_in_place_is_a_change(make_field, value, mutate):
    with isolate_apps("tests.testapp"):

        class Doc(models.Model):
            title = models.CharField(max_length=10)
            extra = make_field()

            class Meta:
                app_label = "testapp"

            def __str__(self) -> str:
                return self.title

        fields = tracking.tracked_fields(Doc, "none")
        assert fields.plain_attnames == ("title",)
        assert fields.other_attnames == ("extra",)
        assert fields.copied_attnames == ("extra",)
        doc = Doc.from_db("default", ["id", "title", "extra"], [1, "t", copy.deepcopy(value)])
        tracking.take_snapshot(doc, fields)
        mutate(doc.extra)  # nested, in place: the snapshot must hold a deep copy
        assert tracking.changed_fields(doc, fields, None) == {"extra"}

        # The same, snapshotted as a row loads: the row holds the very object.
        tracking.track_loads(Doc, fields)
        try:
            doc = Doc.from_db("default", ["id", "title", "extra"], [1, "t", copy.deepcopy(value)])
            mutate(doc.extra)
            assert tracking.changed_fields(doc, fields, None) == {"extra"}
            assert tracking.snapshot_of(doc, fields) == {"title": "t", "extra": value}
        finally:
            tracking.untrack_loads(Doc)


def test_a_subclass_of_a_plain_field_holding_a_list_is_copied():
    """A CharField subclass may hold a mutable value (a multi-select stored as text, say):
    only Django's own classes, exactly, are copied as they are."""

    class ListField(models.CharField):
        def from_db_value(self, value, expression, connection):
            return value.split(",") if value else []

    with isolate_apps("tests.testapp"):

        class Tagged(models.Model):
            tags = ListField(max_length=100)

            class Meta:
                app_label = "testapp"

            def __str__(self) -> str:
                return ",".join(self.tags)

        fields = tracking.tracked_fields(Tagged, "none")
        assert fields.other_attnames == ("tags",)
        tagged = Tagged.from_db("default", ["id", "tags"], [1, ["spa"]])
        tracking.take_snapshot(tagged, fields)
        tagged.tags.append("golf")
        assert tracking.changed_fields(tagged, fields, None) == {"tags"}


def test_a_loaded_rows_snapshot_is_converted_only_when_a_save_needs_it():
    """A list view loads many offers and saves none: loading converts nothing (not even the
    photo to its stored value); the first use does it, once."""
    converted = []

    def counting(value):
        converted.append(value)
        return value or None

    fields = dataclasses.replace(offer_fields(), row_converters={**offer_fields().row_converters, "photo": counting})
    tracking.track_loads(Offer, fields)
    try:
        offers = [loaded_offer(title=f"Spa {n}") for n in range(3)]
        assert converted == []
        offers[0].title = "Golf"
        assert tracking.changed_fields(offers[0], fields, None) == {"title"}
        assert tracking.changed_fields(offers[0], fields, None) == {"title"}
        assert converted == ["offers/a.jpg"]  # once, for the one offer a save looked at
    finally:
        tracking.untrack_loads(Offer)
        from offer_realtime import receivers

        receivers.reconnect()


def test_a_loaded_rows_snapshot_is_what_the_row_held():
    fields = offer_fields()
    offer = loaded_offer(details_html="«Spa» 🧖 " * 500)
    assert tracking.snapshot_of(offer, fields) == {
        **{name: offer.__dict__[name] for name in fields.attnames},
        "photo": "offers/a.jpg",
    }
    copy_ = pickle.loads(pickle.dumps(loaded_offer()))  # a row snapshot pickles too
    copy_.tag = "Golf"
    assert tracking.changed_fields(copy_, fields, None) == {"tag"}


def test_a_loaded_photo_renamed_in_place_is_a_change():
    """The row holds the stored name; the FieldFile the descriptor makes of it is another
    object, renamed in place by ``FieldFile.save()``."""
    fields = offer_fields()
    offer = loaded_offer()
    offer.photo.name = "offers/b.jpg"
    assert tracking.changed_fields(offer, fields, None) == {"photo"}
    assert tracking.previous_value(offer, fields, "photo") == (True, "offers/a.jpg")


def test_a_partly_loaded_rows_snapshot_holds_what_was_loaded():
    fields = offer_fields()
    offer = Offer.from_db("default", ["id", "title", "photo"], [7, "Spa", ""])
    assert tracking.snapshot_of(offer, fields) == {"title": "Spa", "photo": None}
    assert tracking.previous_value(offer, fields, "tag") == (False, None)


def test_a_whole_rows_snapshot_is_the_rows_values_and_nothing_more():
    """Each object kept per loaded row makes the garbage collector run sooner: a list
    view of 1,000 offers ran it a quarter more often with a (names, values) pair per row."""
    names = [f.attname for f in Offer._meta.concrete_fields]
    values = [loaded_offer().__dict__[name] for name in names]
    offer = Offer.from_db("default", names, values)
    assert offer.__dict__[tracking.SNAPSHOT_ATTR] is values


def test_a_partly_loaded_row_and_a_proxys_row_keep_their_names_and_still_pickle():
    fields = offer_fields()

    class OfferProxy(Offer):
        class Meta:
            proxy = True
            app_label = "hotel"

    names = [f.attname for f in Offer._meta.concrete_fields]
    whole = [loaded_offer().__dict__[name] for name in names]
    for offer in (
        Offer.from_db("default", ["id", "title", "tag"], [7, "Two nights", "Spa"]),
        OfferProxy.from_db("default", names, whole),
    ):
        assert isinstance(offer.__dict__[tracking.SNAPSHOT_ATTR], tracking.LoadedRow)
        copy_ = pickle.loads(pickle.dumps(offer))
        assert tracking.snapshot_of(copy_, fields) == tracking.snapshot_of(offer, fields)
        assert tracking.snapshot_of(offer, fields)["title"] == offer.title
        copy_.tag = "Golf"
        assert tracking.changed_fields(copy_, fields, None) == {"tag"}


def test_a_row_cached_before_the_model_changed_counts_every_field_as_changed():
    """An instance unpickled from a cache written when the model had one more field: its
    row no longer lines up with the fields, and a save must not fail over it."""
    fields = offer_fields()
    offer = loaded_offer()
    offer.__dict__[tracking.SNAPSHOT_ATTR] = [*offer.__dict__[tracking.SNAPSHOT_ATTR], "gone"]
    assert tracking.snapshot_of(offer, fields) is None
    assert {"title", "photo"} <= tracking.changed_fields(offer, fields, None)
