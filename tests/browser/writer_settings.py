"""Settings of a writer process of the convergence test (``tests/browser/writer.py``).

The test database of the pytest process (``DATABASE_URL``) and its media directory
(``MEDIA_ROOT``); events go to the in-memory outbox through the product's default
background sender, so each event's offer data is read after its commit, as in production.
"""

import os

import dj_database_url

from tests.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Two writer processes: take SQLite's write lock when a transaction begins, and wait for
    # it, so a deletion (read, then write) never fails on the other writer's commit.
    DATABASES["default"]["OPTIONS"] = {"timeout": 30, "transaction_mode": "IMMEDIATE"}
MEDIA_ROOT = os.environ["MEDIA_ROOT"]
OFFER_REALTIME = {"BACKEND": "memory", "DELIVERY": "background"}
