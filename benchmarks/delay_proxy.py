"""A TCP proxy on loopback that holds every chunk going to the target for a fixed delay.

It stands in for the network distance between a Django app and a hosted Pusher
cluster: with ``--delay-ms 100`` every HTTP call the app makes to soketi through the
proxy takes at least 100 ms longer (the request bytes reach soketi 100 ms late; the
answer comes straight back). Order is kept per connection, and connection setup to the
proxy itself is immediate, so a pooled keep-alive connection pays the delay once per
request, as an HTTP round trip to a far server would.

Run on its own (the benchmarks start it as a child process)::

    python benchmarks/delay_proxy.py --listen-port 7001 --target-port 6001 --delay-ms 100

It prints ``ready <port>`` once listening, and exits when its stdin closes (so it
never outlives the benchmark that started it) or on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading

CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk released ``delay`` seconds after it arrived."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((loop.time() + delay, data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), b""))

    async def write() -> None:
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    await asyncio.gather(read(), write())


async def _handle(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    target: tuple[str, int],
    delay_up: float,
    delay_down: float,
) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            _pipe(client_reader, upstream_writer, delay_up),
            _pipe(upstream_reader, client_writer, delay_down),
        )
    finally:
        for writer in (client_writer, upstream_writer):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def serve(listen: tuple[str, int], target: tuple[str, int], delay_up: float, delay_down: float) -> None:
    """Accept connections on ``listen`` and proxy them to ``target`` until cancelled."""
    server = await asyncio.start_server(
        lambda r, w: _handle(r, w, target, delay_up, delay_down), *listen, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    async with server:
        await server.serve_forever()


def _exit_when_stdin_closes() -> None:
    with contextlib.suppress(Exception):
        while sys.stdin.buffer.read(1024):
            pass
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, default=0)
    parser.add_argument("--target-host", default="127.0.0.1")
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=100.0, help="delay towards the target (default 100)")
    parser.add_argument("--delay-back-ms", type=float, default=0.0, help="delay of the answers (default 0)")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin reaches EOF")
    args = parser.parse_args(argv)
    if args.watch_stdin:
        threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(
        serve(
            (args.listen_host, args.listen_port),
            (args.target_host, args.target_port),
            args.delay_ms / 1000,
            args.delay_back_ms / 1000,
        )
    )


if __name__ == "__main__":
    main()
