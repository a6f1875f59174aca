"""collab.js under Node (``tests/browser/collab_logic.cjs``, a fake clock): the client-event
throttle keeps Pusher's 10 per second per connection without losing an offer's last state,
the board lists names up to Pusher's 100 presence members and a count only above, and an
editing marker lives 30 s after the last heartbeat, ending at once when stopped or gone."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.browser.conftest import REPO


def run_logic() -> dict:
    node = shutil.which("node")
    assert node, "Node is needed (it runs soketi for the other browser tests too)"
    result = subprocess.run(
        [node, str(REPO / "tests" / "browser" / "collab_logic.cjs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_client_event_throttle_and_presence_limit_and_marker_expiry():
    out = run_logic()

    throttle = out["throttle"]
    # 25 offers' states plus 5 newer states of one queued offer: 25 sends, 10 at once, then
    # 10 a second; the queued offer's states collapse into its newest.
    assert (throttle["sent"], throttle["immediate"], throttle["maxInWindow"], throttle["pending"]) == (25, 10, 10, 0)
    assert throttle["doneAt"] == 2000
    assert throttle["count24"] == 1 and throttle["last24"][1:] == ["client-editing-stopped", {"offer_id": 24, "k": 4}]

    presence = out["presence"]
    assert presence["at"] == {"count": 100, "overLimit": False, "people": 100, "me": ["Staff 007"]}
    assert presence["above"]["overLimit"] is True and presence["above"]["people"] == 0
    assert presence["above"]["text"].startswith("101 online (names are not listed above 100")
    assert presence["two"] == "Online: Staff 001 (you), Staff 002"

    assert out["markers"]["trace"] == [
        ["after 60 s of heartbeats", ["Máire"]],
        ["29.999 s after the last", ["Máire"]],
        ["30 s after the last", []],
        ["two editors", ["Máire", "Seán"], "Máire and Seán are editing"],
        ["Seán stopped", ["Máire"]],
        ["Máire left", [], 0],
        ["resubscribed, only Seán still a member", [], ["Seán"]],
    ]
    # Only what the form changed is sent (null and "" alike), so a re-applied edit keeps the other's fields.
    assert out["changed"] == {"book_now_url": "https://x.test/", "is_active": False}
