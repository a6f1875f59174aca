"""A loopback TCP proxy in front of soketi's HTTP API that can fail on demand.

From the application's side it looks like Pusher going away: ``mode = "refuse"``
(nothing listening: connection refused), ``"reset"`` (accept, then reset),
``"hang"`` (accept and never answer), or ``"pass"`` (forward). Subscribers connect
to soketi directly, so they stay connected and can count what arrives.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from tests.e2e.harness import free_port


class FaultyProxy:
    """Forwards 127.0.0.1:<port> to soketi unless told to fail."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = "pass"
        self._listener: socket.socket | None = None
        self._stopped = False
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> FaultyProxy:
        self._listen()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped = True
        self._close_listener()
        with self._lock:
            for sock in self._held:
                sock.close()

    @property
    def held(self) -> int:
        """Connections accepted and left unanswered in "hang" mode so far."""
        with self._lock:
            return len(self._held)

    def set_mode(self, mode: str) -> None:
        """Switch behaviour; "refuse" closes the port, anything else (re)opens it."""
        self.mode = mode
        if mode == "refuse":
            self._close_listener()
        elif self._listener is None:
            self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self.mode == "reset":
                # SO_LINGER 0: close sends RST, as a crashed peer or middlebox would.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
            elif self.mode == "hang":
                with self._lock:
                    self._held.append(client)
            else:
                threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
        except OSError:
            client.close()
            return

        def pipe(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)
