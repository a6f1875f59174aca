"""The test helpers host projects use: capture_broadcasts and the offer_broadcasts fixture."""

from django.db import transaction
from django.test import TestCase, TransactionTestCase

from hotel.models import Hotel, Offer
from offer_realtime import backends
from offer_realtime.backends.memory import MemoryBackend
from offer_realtime.testing import capture_broadcasts


class CaptureInTestCase(TestCase):
    """Inside TestCase on_commit never runs by itself; the helper runs it."""

    @classmethod
    def setUpTestData(cls):
        cls.hotel = Hotel.objects.create(name="K", slug="killarney")

    def test_events_are_sent_on_leaving_the_block(self):
        with capture_broadcasts() as sent:
            Offer.objects.create(hotel=self.hotel, title="A")
            self.assertEqual(sent._sent, [])
        self.assertEqual([(e.name, e.channel) for e in sent], [("offer-created", "hotel-killarney")])
        self.assertEqual(sent[0].data["offer"]["title"], "A")

    def test_backend_is_swapped_back(self):
        before = backends.get_backend()
        with capture_broadcasts() as sent:
            self.assertIsInstance(backends.get_backend(), MemoryBackend)
        self.assertIs(backends.get_backend(), before)
        self.assertEqual(list(sent), [])

    def test_failing_block_sends_only_what_was_not_rolled_back(self):
        with self.assertRaises(ValueError):
            with capture_broadcasts() as sent:
                Offer.objects.create(hotel=self.hotel, title="kept")
                with transaction.atomic():
                    Offer.objects.create(hotel=self.hotel, title="rolled back")
                    raise ValueError
        self.assertEqual([e.data["offer"]["title"] for e in sent], ["kept"])


class CaptureWithRealCommits(TransactionTestCase):
    """With real commits events are captured as they are sent, exactly once."""

    def test_each_commit_is_captured_once(self):
        hotel = Hotel.objects.create(name="K", slug="killarney")
        with capture_broadcasts() as sent:
            offer = Offer.objects.create(hotel=hotel, title="A")
            self.assertEqual(len(sent._sent), 1)  # autocommit: sent at once
            offer.title = "B"
            offer.save()
        self.assertEqual(sent.names, ["offer-created", "offer-updated"])


def test_fixture_in_a_db_test(db, offer_broadcasts):
    hotel = Hotel.objects.create(name="K", slug="killarney")
    offer = Offer.objects.create(hotel=hotel, title="A")
    assert offer_broadcasts.names == ["offer-created"]
    offer.delete()
    assert offer_broadcasts.names == ["offer-created", "offer-deleted"]
    offer_broadcasts.clear()
    assert len(offer_broadcasts) == 0


class CaptureSeesOnlyItsOwnChanges(TransactionTestCase):
    """Issue 10, item 3: events of writes made before the block, still queued or in flight
    when it starts, go to the backend configured when they were made, never into the capture."""

    def setUp(self):
        from tests.pusher_stub import PusherStub

        self.stub = PusherStub().__enter__()
        self.addCleanup(self.stub.__exit__)
        self.hotel = Hotel.objects.create(name="K", slug="killarney")

    def tearDown(self):
        from offer_realtime import sender

        sender.reset_sender()

    def test_background_write_just_before_the_block(self):
        from django.test import override_settings

        from offer_realtime import sender

        self.stub.delay = 0.3  # the sender is still busy with the earlier write when the block starts
        with override_settings(**self.stub.settings(), OFFER_REALTIME={"DELIVERY": "background"}):
            Offer.objects.create(hotel=self.hotel, title="before")  # autocommit: queued at once
            with capture_broadcasts() as sent:
                Offer.objects.create(hotel=self.hotel, title="inside")
                self.assertTrue(sender.get_sender().flush(5))  # "before" is sent while the block is open
            self.assertEqual([e.data["offer"]["title"] for e in sent], ["inside"])
        self.assertEqual([e["data"]["offer"]["title"] for e in self.stub.events()], ["before"])

    def test_task_worker_running_inside_the_block(self):
        from django.core.management import call_command
        from django.test import override_settings

        with override_settings(**self.stub.settings(), OFFER_REALTIME={"DELIVERY": "task", "TASK_BACKEND": "db"}):
            Offer.objects.create(hotel=self.hotel, title="before")  # a task, not yet run
            with capture_broadcasts() as sent:
                Offer.objects.create(hotel=self.hotel, title="inside")
                call_command("db_worker", "--batch", "--backend", "db", verbosity=0)
            self.assertEqual([e.data["offer"]["title"] for e in sent], ["inside"])
        self.assertEqual([e["data"]["offer"]["title"] for e in self.stub.events()], ["before"])
