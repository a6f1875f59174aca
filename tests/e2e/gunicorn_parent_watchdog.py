"""gunicorn configuration for servers the tests start (``gunicorn -c <this file>``).

The test starts gunicorn with stdin on a pipe it never writes to. When the test process
goes away for any reason, SIGKILL included, the pipe closes; the master then shuts
down gracefully (SIGTERM to itself) instead of living on as an orphan holding a port and
a database. The same idea as ``parent_watchdog.cjs`` for the Node children.
"""

import os
import signal
import sys
import threading


def when_ready(server):
    """Start watching stdin in the master once it is listening."""

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(65536):
                pass
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()
