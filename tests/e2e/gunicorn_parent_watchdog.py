"""gunicorn configuration for servers the tests start (``gunicorn -c <this file>``).

The test starts gunicorn with stdin on a pipe it never writes to. When the test process
goes away for any reason, SIGKILL included, the pipe closes; the master then shuts
down gracefully (SIGTERM to itself) instead of living on as an orphan holding a port and
a database. The same idea as ``parent_watchdog.cjs`` for the Node children.
"""

import os
import signal
import threading


def when_ready(server):
    """Start watching stdin in the master once it is listening."""

    def watch() -> None:
        # os.read on the descriptor, not sys.stdin: a thread blocked inside the buffered
        # reader holds its lock, and workers forked meanwhile would inherit it held and
        # abort at interpreter shutdown.
        try:
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


# gunicorn 24+ opens a control socket at a fixed path in $HOME by default; concurrent test
# servers would fight over it. (Older versions ignore the unknown setting.)
control_socket_disable = True
