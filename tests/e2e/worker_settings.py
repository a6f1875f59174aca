"""Settings for a real ``db_worker`` process in the reliability tests (PostgreSQL only)."""

import os

from tests.settings import *  # noqa: F403

PUSHER_APP_ID = os.environ["PUSHER_APP_ID"]
PUSHER_KEY = os.environ["PUSHER_KEY"]
PUSHER_SECRET = os.environ["PUSHER_SECRET"]
PUSHER_HOST = os.environ["PUSHER_HOST"]
PUSHER_PORT = os.environ["PUSHER_PORT"]
PUSHER_SSL = False
OFFER_REALTIME = {"DELIVERY": "task", "TASK_BACKEND": "db", "TIMEOUT": 60}
