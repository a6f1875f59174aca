"""Signal-level rules: which change sends which event, with the exact payload."""

from __future__ import annotations

import datetime
import json
import warnings

import pytest
from django.core import serializers as django_serializers
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hotel.models import Hotel, Offer
from hotel.serializers import OfferStaffSerializer
from offer_realtime.events import to_json_data
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_image

pytestmark = pytest.mark.django_db


def serialized(offer_id):
    """What the frontend should receive as ``offer``: the committed row, serialized."""
    return to_json_data(OfferStaffSerializer(Offer.objects.get(pk=offer_id)).data)


def test_create_sends_offer_created_with_serializer_data(hotel):
    with capture_broadcasts() as sent:
        offer = Offer.objects.create(hotel=hotel, title="Spa weekend", short_description="Two nights")
    assert len(sent) == 1
    event = sent[0]
    assert (event.name, event.channel) == ("offer-created", "hotel-killarney")
    assert event.without_identity() == {"offer": serialized(offer.pk), "action": "created"}
    assert event.data["offer"]["title"] == "Spa weekend"


def test_create_with_photo_is_one_offer_created(hotel):
    with capture_broadcasts() as sent:
        offer = Offer.objects.create(hotel=hotel, title="Spa", photo=make_image())
    assert sent.names == ["offer-created"]
    assert sent[0].data["offer"]["photo_url"] == offer.photo.url


def test_update_sends_offer_updated(offer):
    with capture_broadcasts() as sent:
        offer.title = "Golf weekend"
        offer.save()
    assert sent.names == ["offer-updated"]
    assert sent[0].channel == "hotel-killarney"
    assert sent[0].without_identity() == {"offer": serialized(offer.pk), "action": "updated"}
    assert sent[0].data["offer"]["title"] == "Golf weekend"


def test_save_that_changes_nothing_sends_nothing(offer):
    with capture_broadcasts() as sent:
        offer.save()
        Offer.objects.get(pk=offer.pk).save()
        offer.title = offer.title
        offer.save(update_fields=["title"])
    assert list(sent) == []


def test_an_offer_built_with_an_existing_pk_and_saved_is_an_update(offer):
    """``Offer(pk=..., ...).save()`` overwrites the row without loading it: nothing is
    known of what the row held, so it is an update (and the photo may have changed)."""
    with capture_broadcasts() as sent:
        Offer(
            pk=offer.pk, hotel=offer.hotel, title="Overwritten", short_description="New", created_at=offer.created_at
        ).save()
    assert Offer.objects.get(pk=offer.pk).title == "Overwritten"
    assert "offer-updated" in sent.names
    updated = next(event for event in sent if event.name == "offer-updated")
    assert updated.data["offer"]["title"] == "Overwritten"


def test_a_field_set_in_code_and_saved_later_is_an_update(transactional_db, offer):
    """An instance built in code with an existing pk, saved one field at a time: the field
    saved second was never written nor read before, so its save is an update. (Each save
    commits on its own: in one transaction the two would be one update anyway.)"""
    built = Offer(pk=offer.pk, hotel=offer.hotel, title="Spa weekend", tag="golf", created_at=offer.created_at)
    with capture_broadcasts() as sent:
        built.save(update_fields=["title"])
        built.save(update_fields=["tag"])
    assert Offer.objects.get(pk=offer.pk).tag == "golf"
    assert sent.names == ["offer-updated", "offer-updated"]
    assert [event.data["offer"]["tag"] for event in sent] == [offer.tag, "golf"]


class TestRefreshFromDb:
    """``refresh_from_db()`` makes what it read the baseline: what the row holds is what
    a later save is compared against."""

    def test_a_value_written_back_after_a_refresh_is_an_update(self, offer):
        # Another writer changed the title; this instance reads it, then puts the old one
        # back. The row changed (and the boards show the other writer's title), so it is
        # an update, not "nothing changed".
        Offer.objects.filter(pk=offer.pk).update(title="Changed elsewhere")
        with capture_broadcasts() as sent:
            offer.refresh_from_db()
            assert offer.title == "Changed elsewhere"
            offer.title = "Spa weekend"
            offer.save()
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["title"] == "Spa weekend"

    def test_saving_what_a_refresh_read_sends_nothing(self, offer):
        Offer.objects.filter(pk=offer.pk).update(title="Changed elsewhere")
        with capture_broadcasts() as sent:
            offer.refresh_from_db()
            offer.save()
        assert list(sent) == []

    def test_a_refresh_of_some_fields_makes_only_those_the_baseline(self, offer):
        Offer.objects.filter(pk=offer.pk).update(title="Changed elsewhere", tag="golf")
        with capture_broadcasts() as sent:
            offer.short_description = "Edited here"
            offer.refresh_from_db(fields=["title"])
            offer.title = "Spa weekend"  # back to what it was: a change of the row
            offer.save(update_fields=["title", "short_description"])
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["title"] == "Spa weekend"
        assert sent[0].data["offer"]["short_description"] == "Edited here"

    def test_a_deferred_field_loaded_on_access_is_its_baseline(self, offer):
        with capture_broadcasts() as sent:
            loaded = Offer.objects.defer("title").get(pk=offer.pk)
            assert loaded.title == "Spa weekend"  # loaded now, by refresh_from_db(fields=["title"])
            loaded.save()
        assert list(sent) == []

    def test_a_host_override_of_refresh_from_db_is_kept(self, offer, monkeypatch):
        from offer_realtime import receivers

        calls = []

        def refresh_from_db(self, using=None, fields=None, **kwargs):
            calls.append(fields)
            return super(Offer, self).refresh_from_db(using=using, fields=fields, **kwargs)

        receivers.disconnect()
        monkeypatch.setattr(Offer, "refresh_from_db", refresh_from_db, raising=False)
        receivers.connect()
        try:
            Offer.objects.filter(pk=offer.pk).update(title="Changed elsewhere")
            with capture_broadcasts() as sent:
                offer.refresh_from_db(fields=["title"])
                offer.title = "Spa weekend"
                offer.save()
            assert calls == [["title"]]
            assert sent.names == ["offer-updated"]
        finally:
            receivers.disconnect()
            restored = Offer.__dict__.get("refresh_from_db")
            monkeypatch.undo()
            receivers.connect()
        assert restored is refresh_from_db  # disconnect() put the host's own back


def test_photo_set_with_update_fields_sends_only_image_updated(offer):
    before = timezone.now()
    with capture_broadcasts() as sent:
        offer.photo = make_image("new.png")
        offer.save(update_fields=["photo"])
    assert sent.names == ["offer-image-updated"]
    data = sent[0].without_identity()
    assert set(data) == {"offer_id", "offer_title", "photo_url", "timestamp", "action"}
    assert data["action"] == "image-updated"
    assert data["offer_id"] == offer.pk
    assert data["offer_title"] == "Spa weekend"
    assert data["photo_url"] == Offer.objects.get(pk=offer.pk).photo.url
    assert data["photo_url"].startswith("/media/offers/new")
    stamp = datetime.datetime.fromisoformat(data["timestamp"])
    assert before <= stamp <= timezone.now()


def test_full_save_that_only_changed_the_photo_sends_only_image_updated(offer):
    with capture_broadcasts() as sent:
        offer.photo = make_image()
        offer.save()
    assert sent.names == ["offer-image-updated"]


def test_photo_replaced_and_cleared(offer):
    offer.photo = make_image("first.png")
    offer.save()
    with capture_broadcasts() as sent:
        offer.photo = make_image("second.png")
        offer.save()
    assert sent.names == ["offer-image-updated"]
    assert "second" in sent[0].data["photo_url"]
    with capture_broadcasts() as sent:
        offer.photo = None
        offer.save()
    # Cleared: the whole offer with its null photo_url, never an image event with null.
    assert sent.names == ["offer-updated"]
    assert sent[0].without_identity() == {"offer": serialized(offer.pk), "action": "updated"}
    assert sent[0].data["offer"]["photo_url"] is None


def test_photo_and_title_in_one_save_send_both_events(offer):
    with capture_broadcasts() as sent:
        offer.title = "New"
        offer.photo = make_image()
        offer.save()
    assert sent.names == ["offer-updated", "offer-image-updated"]


def test_update_fields_limits_what_counts_as_changed(offer):
    with capture_broadcasts() as sent:
        offer.title = "Not saved"
        offer.short_description = "Saved"
        offer.save(update_fields=["short_description"])
    assert sent.names == ["offer-updated"]
    assert sent[0].data["offer"]["title"] == "Spa weekend"
    assert sent[0].data["offer"]["short_description"] == "Saved"


class TestHotelMove:
    """An offer moved to another hotel leaves the old hotel's board and joins the new one's."""

    def moved(self, sent, offer_id, title="Spa weekend", old="hotel-killarney", new="hotel-galway"):
        assert [(e.name, e.channel) for e in sent] == [("offer-deleted", old), ("offer-created", new)]
        assert sent[0].without_identity() == {"offer_id": offer_id, "offer_title": title, "action": "deleted"}
        assert sent[1].without_identity() == {"offer": serialized(offer_id), "action": "created"}
        assert sent[0].data["event_id"] != sent[1].data["event_id"]
        return True

    @pytest.mark.parametrize("how", ["instance", "id", "update_fields"])
    def test_move_is_deleted_on_the_old_channel_then_created_on_the_new(self, offer, other_hotel, how):
        with capture_broadcasts() as sent:
            if how == "instance":
                offer.hotel = other_hotel
                offer.save()
            elif how == "id":
                loaded = Offer.objects.get(pk=offer.pk)
                loaded.hotel_id = other_hotel.pk
                loaded.save()
            else:
                offer.hotel = other_hotel
                offer.save(update_fields=["hotel"])
        assert self.moved(sent, offer.pk)

    def test_the_old_hotels_slug_is_read_without_joining_every_foreign_key(self, offer, other_hotel):
        # select_related() with no names follows every non-null foreign key, and Django 6.1
        # deprecates it: the old hotel's slug is read with a plain query.
        with (
            warnings.catch_warnings(record=True) as caught,
            capture_broadcasts() as sent,
            CaptureQueriesContext(connection) as queries,
        ):
            warnings.simplefilter("always")
            offer.hotel = other_hotel
            offer.save()
            assert len(sent) == 2
        assert [w for w in caught if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))] == []
        hotel_reads = [q["sql"] for q in queries.captured_queries if 'FROM "hotel_hotel"' in q["sql"]]
        assert hotel_reads, queries.captured_queries
        assert all("JOIN" not in sql for sql in hotel_reads)

    def test_moved_and_edited_in_one_save_or_transaction(self, offer, other_hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.title = "Before the move"
                offer.save()
                offer.hotel = other_hotel
                offer.photo = make_image()
                offer.save()
                offer.title = "After the move"
                offer.save()
        assert self.moved(sent, offer.pk, title="After the move")
        assert sent[1].data["offer"]["photo_url"] == offer.photo.url

    def test_moved_and_back_in_one_transaction_sends_nothing_or_just_the_edit(self, offer, other_hotel, hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.hotel = other_hotel
                offer.save()
                offer.hotel = hotel
                offer.save()
        assert list(sent) == []
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.hotel = other_hotel
                offer.save()
                offer.title = "Edited"
                offer.hotel = hotel
                offer.save()
        assert [(e.name, e.channel) for e in sent] == [("offer-updated", "hotel-killarney")]
        assert sent[0].data["offer"]["title"] == "Edited"

    def test_moved_twice_in_one_transaction_leaves_the_first_hotel(self, offer, other_hotel):
        third = Hotel.objects.create(name="Cork", slug="cork")
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.hotel = other_hotel
                offer.save()
                offer.hotel = third
                offer.save()
        assert self.moved(sent, offer.pk, new="hotel-cork")

    def test_moved_then_deleted_is_deleted_where_it_was_seen(self, offer, other_hotel):
        offer_id = offer.pk
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.hotel = other_hotel
                offer.save()
                offer.delete()
        assert [(e.name, e.channel, e.data["offer_id"]) for e in sent] == [
            ("offer-deleted", "hotel-killarney", offer_id)
        ]

    def test_created_then_moved_is_one_created_on_the_new_hotel(self, hotel, other_hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer = Offer.objects.create(hotel=hotel, title="New")
                offer.hotel = other_hotel
                offer.save()
        assert [(e.name, e.channel) for e in sent] == [("offer-created", "hotel-galway")]

    def test_separate_transactions_each_move(self, offer, other_hotel, hotel):
        with capture_broadcasts() as sent:
            offer.hotel = other_hotel
            offer.save()
            assert len(sent) == 2
            offer.hotel = hotel
            offer.save()
        assert [(e.name, e.channel) for e in sent] == [
            ("offer-deleted", "hotel-killarney"),
            ("offer-created", "hotel-galway"),
            ("offer-deleted", "hotel-galway"),
            ("offer-created", "hotel-killarney"),
        ]

    def test_the_write_adds_no_query_and_the_old_hotel_costs_one_at_build_time(self, offer, other_hotel):
        from django.db import connection as default_connection

        with capture_broadcasts() as sent:
            loaded = Offer.objects.get(pk=offer.pk)
            with CaptureQueriesContext(default_connection) as write:
                loaded.hotel_id = other_hotel.pk
                loaded.save(update_fields=["hotel"])
            with CaptureQueriesContext(default_connection) as build:
                sent.run_on_commit()
        assert [q["sql"].split()[0] for q in write] == ["UPDATE"]
        # The committed offers (hotel joined), then the old hotels of the moved ones.
        assert len(build) == 2 and "JOIN" in build[0]["sql"] and "hotel_hotel" in build[1]["sql"]
        assert self.moved(sent, offer.pk)

    def test_an_old_hotel_deleted_since_is_skipped(self, offer, other_hotel, caplog):
        third = Hotel.objects.create(name="Cork", slug="cork")
        with capture_broadcasts() as sent:
            offer.hotel = third
            offer.save()
            assert len(sent) == 2  # reading runs the commit
            with transaction.atomic():
                offer.hotel = other_hotel
                offer.save()
                third.delete()  # nothing of the old hotel's is left to tell
        assert [(e.name, e.channel) for e in sent] == [
            ("offer-deleted", "hotel-killarney"),
            ("offer-created", "hotel-cork"),
            ("offer-created", "hotel-galway"),
        ]

    def test_a_slug_on_the_offer_itself_needs_no_query(self, offer):
        from django.db import connection as default_connection
        from django.test import override_settings

        offer.tag = "spa"
        offer.save()
        with override_settings(OFFER_REALTIME={"HOTEL_SLUG": "tag", "CHANNEL": "tag-{hotel_slug}"}):
            with capture_broadcasts() as sent:
                loaded = Offer.objects.get(pk=offer.pk)
                loaded.tag = "golf"
                loaded.save()
                with CaptureQueriesContext(default_connection) as build:
                    sent.run_on_commit()
        assert len(build) == 1
        assert [(e.name, e.channel) for e in sent] == [("offer-deleted", "tag-spa"), ("offer-created", "tag-golf")]

    def test_an_unknown_old_hotel_is_a_plain_update_on_the_new_one(self, offer, other_hotel):
        """Loaded without the hotel field, the old hotel is unknown without a query: the
        change stays an offer-updated, on the hotel the offer is in now."""
        with capture_broadcasts() as sent:
            partial = Offer.objects.only("title").get(pk=offer.pk)
            partial.hotel_id = other_hotel.pk
            partial.save()
        assert [(e.name, e.channel) for e in sent] == [("offer-updated", "hotel-galway")]

    def test_another_host_moves_between_venues(self, db):
        from tests.testapp.models import Promotion, Venue

        harbour, pier = Venue.objects.create(code="harbour"), Venue.objects.create(code="pier")
        promo = Promotion.objects.create(venue=harbour, headline="Sail")
        with override_promotion_settings(), capture_broadcasts() as sent:
            promo = Promotion.objects.get(pk=promo.pk)
            promo.venue = pier
            promo.save()
        assert [(e.name, e.channel) for e in sent] == [
            ("offer-deleted", "venue-harbour-offers"),
            ("offer-created", "venue-pier-offers"),
        ]
        assert sent[0].data["offer_title"] == "Sail"


def test_delete_sends_offer_deleted(offer):
    offer_id = offer.pk
    with capture_broadcasts() as sent:
        offer.delete()
    assert [(e.name, e.channel, e.without_identity()) for e in sent] == [
        ("offer-deleted", "hotel-killarney", {"offer_id": offer_id, "offer_title": "Spa weekend", "action": "deleted"})
    ]


def test_queryset_delete_sends_one_event_per_offer(hotel):
    offers = [Offer.objects.create(hotel=hotel, title=f"O{i}") for i in range(3)]
    with capture_broadcasts() as sent:
        Offer.objects.filter(hotel=hotel).delete()
    assert sorted(e.data["offer_id"] for e in sent) == sorted(o.pk for o in offers)
    assert set(sent.names) == {"offer-deleted"}


def test_cascade_delete_of_the_hotel_sends_offer_deleted(offer, hotel):
    with capture_broadcasts() as sent:
        hotel.delete()
    assert [(e.name, e.channel, e.data["offer_id"]) for e in sent] == [("offer-deleted", "hotel-killarney", offer.pk)]
    assert not Hotel.objects.exists()


def test_raw_saves_from_loaddata_send_nothing(hotel, tmp_path):
    offer = Offer(hotel=hotel, title="Fixture offer", pk=4242)
    offer.created_at = timezone.now()
    fixture = tmp_path / "offers.json"
    fixture.write_text(django_serializers.serialize("json", [offer]))
    with capture_broadcasts() as sent:
        call_command("loaddata", str(fixture), verbosity=0)
    assert Offer.objects.filter(pk=4242).exists()
    assert list(sent) == []


def test_tracking_adds_no_query_and_loads_no_deferred_field(offer):
    with CaptureQueriesContext(connection) as queries:
        loaded = list(Offer.objects.only("id", "title"))
    assert len(queries) == 1
    partial = loaded[0]
    assert partial.get_deferred_fields() >= {"short_description", "photo", "hotel_id"}
    with capture_broadcasts() as sent:
        with CaptureQueriesContext(connection) as queries:
            partial.title = "Renamed"
            partial.save()
        # Exactly Django's own UPDATE: tracking touched no deferred field.
        assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
        assert partial.get_deferred_fields() >= {"short_description", "photo", "hotel_id"}
    assert sent.names == ["offer-updated"]
    assert sent[0].data["offer"]["title"] == "Renamed"


def test_json_field_mutated_in_place_counts_as_change(db):
    from tests.testapp.models import Promotion, Venue

    promo = Promotion.objects.create(venue=Venue.objects.create(code="v1"), headline="H", extra={"a": 1})
    with override_promotion_settings(), capture_broadcasts() as sent:
        promo = Promotion.objects.get(pk=promo.pk)
        promo.extra["a"] = 2
        promo.save()
    assert sent.names == ["offer-updated"]
    assert sent[0].data["offer"]["extra"] == {"a": 2}


def override_promotion_settings(**extra):
    from django.test import override_settings

    return override_settings(
        OFFER_REALTIME={
            "MODEL": "testapp.Promotion",
            "SERIALIZER": "tests.testapp.serializers.PromotionSerializer",
            "HOTEL_SLUG": "venue.code",
            "PHOTO_FIELD": "banner",
            "CHANNEL": "venue-{hotel_slug}-offers",
            **extra,
        }
    )


def test_another_host_configured_through_offer_realtime(db):
    from tests.testapp.models import Promotion, Venue

    venue = Venue.objects.create(code="harbour")
    with override_promotion_settings():
        with capture_broadcasts() as sent:
            promo = Promotion.objects.create(venue=venue, headline="Sail")
            # Offer is no longer the tracked model.
            Offer.objects.create(hotel=Hotel.objects.create(name="h", slug="h"), title="ignored")
        with capture_broadcasts() as sent_photo:
            promo.banner = make_image("b.png")
            promo.save()
    assert [(e.name, e.channel) for e in sent] == [("offer-created", "venue-harbour-offers")]
    assert sent[0].without_identity() == {
        "offer": {"id": promo.pk, "headline": "Sail", "banner": None, "extra": {}},
        "action": "created",
    }
    assert sent_photo.names == ["offer-image-updated"]
    assert sent_photo[0].data["offer_title"] == "Sail"
    # Back on the defaults, Offer is tracked again.
    with capture_broadcasts() as sent:
        Offer.objects.create(hotel=Hotel.objects.get(slug="h"), title="tracked")
    assert sent.names == ["offer-created"]


def test_ignore_fields_setting(offer):
    from django.test import override_settings

    with override_settings(OFFER_REALTIME={"IGNORE_FIELDS": ["sort_order"]}):
        with capture_broadcasts() as sent:
            offer = Offer.objects.get(pk=offer.pk)
            offer.sort_order = 5
            offer.save()
    assert list(sent) == []


def test_kill_switch(offer):
    from django.test import override_settings

    with override_settings(OFFER_REALTIME={"ENABLED": False}):
        with capture_broadcasts() as sent:
            offer.title = "x"
            offer.save()
            offer.delete()
    assert list(sent) == []


def test_unicode_slug_is_refused_with_a_logged_error_not_sent(caplog):
    hotel = Hotel.objects.create(name="Cork", slug="córk")
    with capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="x")
    assert list(sent) == []
    assert "hotel-córk" in caplog.text and "invalid" in caplog.text


class TestTransactions:
    """Events follow commits: nothing for rolled-back work, coalesced within a transaction."""

    def test_rolled_back_transaction_sends_nothing(self, hotel):
        with capture_broadcasts() as sent:
            with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside atomic() is the rollback under test
                with transaction.atomic():
                    Offer.objects.create(hotel=hotel, title="never")
                    raise RuntimeError
        assert list(sent) == []
        assert not Offer.objects.filter(title="never").exists()

    def test_rolled_back_savepoint_drops_only_its_changes(self, hotel, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                created = Offer.objects.create(hotel=hotel, title="kept")
                with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside atomic() is the rollback under test
                    with transaction.atomic():
                        offer.title = "rolled back"
                        offer.save()
                        raise RuntimeError
        assert [(e.name, e.data["offer"]["id"]) for e in sent] == [("offer-created", created.pk)]

    def test_savepoint_rollback_of_the_last_change_still_flushes_earlier_ones(self, hotel, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.title = "kept"
                offer.save()
                try:
                    with transaction.atomic():
                        Offer.objects.create(hotel=hotel, title="rolled back")
                        raise RuntimeError
                except RuntimeError:
                    pass
        assert [(e.name, e.data["offer"]["title"]) for e in sent] == [("offer-updated", "kept")]

    def test_nothing_is_sent_before_commit(self, hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                Offer.objects.create(hotel=hotel, title="a")
                assert sent._sent == []  # not read through the capture: that would commit
        assert sent.names == ["offer-created"]

    def test_create_and_updates_coalesce_to_one_created_with_final_state(self, hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer = Offer.objects.create(hotel=hotel, title="draft")
                offer.title = "final"
                offer.save()
                offer.photo = make_image()
                offer.save()
        assert sent.names == ["offer-created"]
        assert sent[0].data["offer"]["title"] == "final"
        assert sent[0].data["offer"]["photo_url"] == offer.photo.url

    def test_several_updates_coalesce_to_one_updated(self, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                for title in ("one", "two", "three"):
                    offer.title = title
                    offer.save()
        assert sent.names == ["offer-updated"]
        assert sent[0].data["offer"]["title"] == "three"

    def test_create_then_delete_sends_nothing(self, hotel):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                Offer.objects.create(hotel=hotel, title="short-lived").delete()
        assert list(sent) == []

    def test_update_then_delete_sends_only_deleted(self, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.title = "x"
                offer.save()
                offer.delete()
        assert sent.names == ["offer-deleted"]
        assert sent[0].data["offer_title"] == "x"

    def test_serializer_data_reflects_the_committed_state_not_the_instance(self, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.title = "committed"
                offer.save()
                offer.title = "changed in memory only"
        assert sent[0].data["offer"]["title"] == "committed"

    def test_events_of_several_offers_in_one_transaction(self, hotel, offer):
        with capture_broadcasts() as sent:
            with transaction.atomic():
                new = Offer.objects.create(hotel=hotel, title="new")
                offer.title = "changed"
                offer.save()
        assert [(e.name, e.offer_id) for e in sent] == [("offer-created", new.pk), ("offer-updated", offer.pk)]


class TestExplicitBroadcast:
    """offer_realtime.broadcast() for writes that bypass signals."""

    def test_queryset_update_sends_nothing_by_itself(self, offer):
        with capture_broadcasts() as sent:
            Offer.objects.filter(pk=offer.pk).update(title="bulk")
        assert list(sent) == []

    def test_broadcast_after_bulk_paths(self, hotel, offer):
        import offer_realtime

        with capture_broadcasts() as sent:
            with transaction.atomic():
                Offer.objects.filter(pk=offer.pk).update(title="bulk")
                offer_realtime.broadcast(offer, "updated")
                made = Offer.objects.bulk_create([Offer(hotel=hotel, title="b1")])
                for new in made:
                    offer_realtime.broadcast(new, "created")
        assert [(e.name, e.data["offer"]["title"]) for e in sent] == [
            ("offer-updated", "bulk"),
            ("offer-created", "b1"),
        ]

    def test_broadcast_image_updated_and_deleted(self, offer):
        import offer_realtime

        with capture_broadcasts() as sent:
            offer_realtime.broadcast(offer, "image-updated")  # no photo: as if cleared
        assert sent.names == ["offer-updated"]
        Offer.objects.filter(pk=offer.pk).update(photo="offers/bulk.png")
        with capture_broadcasts() as sent:
            offer_realtime.broadcast(offer, "image-updated")
        assert sent.names == ["offer-image-updated"]
        assert sent[0].data["photo_url"] == "/media/offers/bulk.png"
        with capture_broadcasts() as sent:
            offer_realtime.broadcast(offer, "deleted")
            Offer.objects.filter(pk=offer.pk)._raw_delete(using="default")
        assert [(e.name, e.data["offer_id"]) for e in sent] == [("offer-deleted", offer.pk)]

    def test_unknown_action_is_a_clear_error(self, offer):
        import offer_realtime

        with pytest.raises(ValueError, match="'renamed' is not a valid Action"):
            offer_realtime.broadcast(offer, "renamed")


def test_payload_is_json(offer):
    with capture_broadcasts() as sent:
        offer.tag = "Spa ✨ “weekend”"
        offer.save()
    assert json.loads(json.dumps(sent[0].data))["offer"]["tag"] == "Spa ✨ “weekend”"


class TestEventIdentity:
    """event_id and changed_at on every event, for dedupe and staleness checks."""

    def test_every_event_carries_a_unique_id_and_the_change_time(self, hotel):
        before = timezone.now()
        with capture_broadcasts() as sent:
            # Reading the capture runs the callbacks: four separate "commits".
            offer = Offer.objects.create(hotel=hotel, title="a")
            assert len(sent) == 1
            offer.title = "b"
            offer.save()
            assert len(sent) == 2
            offer.photo = make_image()
            offer.save()
            assert len(sent) == 3
            offer.delete()
        assert sent.names == ["offer-created", "offer-updated", "offer-image-updated", "offer-deleted"]
        ids = [e.data["event_id"] for e in sent]
        assert len(set(ids)) == 4
        times = [datetime.datetime.fromisoformat(e.data["changed_at"]) for e in sent]
        assert before <= times[0] <= times[1] <= times[2] <= times[3] <= timezone.now()
        image = sent[2].data
        assert image["timestamp"] == image["changed_at"]

    def test_coalesced_event_carries_the_last_change_time(self, offer):
        before = timezone.now()
        with capture_broadcasts() as sent:
            with transaction.atomic():
                offer.title = "one"
                offer.save()
                offer.title = "two"
                offer.save()
        (event,) = sent
        assert datetime.datetime.fromisoformat(event.data["changed_at"]) >= before

    def test_event_id_is_stable_for_the_same_change(self):
        from offer_realtime.changes import Action, Change, event_id

        change = Change(Action.UPDATED, 1, timezone.now(), True)
        assert event_id(change, "offer-updated") == event_id(change, "offer-updated")
        assert event_id(change, "offer-updated") != event_id(change, "offer-image-updated")
        other = Change(Action.UPDATED, 1, timezone.now(), True)
        assert event_id(change, "offer-updated") != event_id(other, "offer-updated")


def test_events_of_a_transaction_cost_one_query_after_commit(hotel):
    from django.db import connection as default_connection

    with capture_broadcasts() as sent:
        with transaction.atomic():
            offers = [Offer.objects.create(hotel=hotel, title=f"o{i}") for i in range(3)]
            for offer in offers:
                offer.title += "!"
                offer.save()
        with CaptureQueriesContext(default_connection) as queries:
            sent.run_on_commit()
    # One SELECT of the offers, hotel joined for the channel and the serializer.
    assert len(queries) == 1 and "JOIN" in queries[0]["sql"]
    assert [e.data["offer"]["title"] for e in sent] == ["o0!", "o1!", "o2!"]
