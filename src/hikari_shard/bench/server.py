"""The benchmark's gateway: the emulator, streaming a pre-built corpus as fast as the socket takes it.

:class:`StreamingServer` runs a :class:`~hikari_shard.testing.emulator.GatewayEmulator` and, on
every connection that IDENTIFYs, sends the whole stream file after READY, encoded and compressed
*before* the first byte goes out and then written to the socket at once.  So during the measured
window the server does nothing but hand bytes to the kernel, and the client is the only thing
being timed.

The frames are built once per stream and reused for every connection where the protocol allows:

- uncompressed: the TEXT frames are the same for every connection;
- ``zlib-stream``: every message the emulator sends ends with a ``Z_SYNC_FLUSH``, a byte-aligned
  block boundary, so the stream is compressed once as raw deflate blocks by a fresh compressor
  and spliced in after READY (its back-references reach only into its own output, which the
  client's inflater has);
- ``zstd-stream``: a zstd frame cannot be spliced, so the stream is compressed per connection with
  the connection's own compressor (still all of it before the first byte is written).

Either way the emulator must compress nothing more on that connection once the stream is
prepared, so heartbeat ACKs are turned off for compressed connections after IDENTIFY (the next
zombie check of either shard is a heartbeat interval away, far beyond a run).

Run it in its own process (so its work never shares the client's core)::

    HIKARI_SHARD_BENCH_TOKEN=... python -m hikari_shard.bench.server --stream FILE [--hold]

The gateway URL is printed on the first line of stdout and the REST URL on the second; then one
JSON line per stream sent (``"event": "sent"``).  With ``--hold``, a prepared stream is announced
(``"event": "held"``) and waits until a line ``go`` is read on stdin, so a benchmark can time
exactly the streaming.  It exits on ``quit``, at the end of stdin, on SIGTERM, or after
``--max-seconds``.
"""

from __future__ import annotations

__all__ = ("TOKEN_ENV", "StreamingServer", "main")

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import types
import typing
import zlib

import orjson

from hikari_shard.bench import recording
from hikari_shard.testing import emulator as emulator_module

if typing.TYPE_CHECKING:
    from collections.abc import Sequence

_deflate: types.ModuleType
try:
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # the same API
    _deflate = zlib

TOKEN_ENV: typing.Final = "HIKARI_SHARD_BENCH_TOKEN"  # noqa: S105 - a variable name
"""The environment variable that carries the (throwaway) bot token to the server and the clients."""

_IDENTIFY_TIMEOUT: typing.Final = 60.0
_MAX_CONNECTIONS: typing.Final = 10_000
_OPCODE_TEXT: typing.Final = 0x1
_OPCODE_BINARY: typing.Final = 0x2


class StreamingServer:
    """Serve ``stream`` to every connection that identifies.

    Parameters
    ----------
    emulator
        A started emulator.
    stream
        ``(name, orjson.dumps(d))`` per dispatch, sent after READY in this order.
    hold
        Keep each prepared stream until :meth:`release` is called.
    """

    __slots__ = ("_cache", "_emulator", "_hold", "_released", "_stream", "_tasks", "report")

    def __init__(
        self, emulator: emulator_module.GatewayEmulator, stream: Sequence[tuple[str, bytes]], *, hold: bool = False
    ) -> None:
        self._emulator = emulator
        self._stream = stream
        self._hold = hold
        self._released: asyncio.Queue[None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache: dict[tuple[str | None, int], bytes] = {}
        self.report: typing.Callable[[dict[str, typing.Any]], None] = lambda _: None
        """Called with a JSON-able dict per stream sent."""

    def release(self) -> None:
        """Let the oldest held stream go (or the next one, as soon as it is prepared)."""
        self._released.put_nowait(None)

    async def serve(self, *, deadline: float) -> None:
        """Serve connections until ``deadline`` (``time.monotonic()``) or ``_MAX_CONNECTIONS`` of them."""
        for index in range(_MAX_CONNECTIONS):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                connection = await self._emulator.wait_for_connection(index, timeout=remaining)
            except TimeoutError:
                return
            task = asyncio.create_task(self._serve_one(connection), name=f"bench stream {index}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_one(self, connection: emulator_module.EmulatedConnection) -> None:
        try:
            await connection.wait_for_op(emulator_module.OP_IDENTIFY, timeout=_IDENTIFY_TIMEOUT)
        except (TimeoutError, ConnectionError):
            return
        if connection.session is None or connection.closed:
            return
        if connection.compression is not None:
            # From here on the connection's compressor belongs to the stream: an ACK compressed after the
            # stream was prepared but sent before it would corrupt the client's zlib/zstd context.
            connection.ack_heartbeats = False
        started = time.perf_counter()
        cpu = time.process_time()
        cached = (connection.compression, connection.session.seq + 1) in self._cache
        blob, wire = self._prepare(connection)
        prepared = time.perf_counter()
        if self._hold:
            self.report({"event": "held", "connection": connection.index})
            await self._released.get()
        released = time.perf_counter()
        with contextlib.suppress(ConnectionError):
            if blob is None:
                await self._emulator.dispatch_many(
                    ((name, orjson.Fragment(data)) for name, data in self._stream), shard_id=connection.shard_id
                )
            else:
                future = connection._enqueue(emulator_module._FRAMES, blob, wait=True)
                if future is not None:
                    await future
        self.report(
            {
                "event": "sent",
                "connection": connection.index,
                "compression": connection.compression,
                "dispatches": len(self._stream),
                "wire_bytes": wire,
                "cached": cached,
                "prepare_s": prepared - started,
                "prepare_cpu_s": time.process_time() - cpu,
                "handed_to_kernel_s": time.perf_counter() - released,
            }
        )

    def _prepare(self, connection: emulator_module.EmulatedConnection) -> tuple[bytes | None, int]:
        """Return every frame of the stream for ``connection``, in order (built without yielding).

        ``None`` when the emulator lacks the internals this needs: then
        :meth:`~hikari_shard.testing.emulator.GatewayEmulator.dispatch_many` streams while it encodes,
        and the server may limit the rate.
        """
        session = connection.session
        encode = getattr(connection, "_encode", None)
        if session is None or encode is None or not hasattr(connection, "_enqueue"):
            return None, 0
        first_seq = session.seq + 1
        key = (connection.compression, first_seq)
        blob = self._cache.get(key)
        if blob is None:
            if connection.compression is None:
                blob = b"".join(
                    emulator_module.encode_frame(_OPCODE_TEXT, payload) for payload in self._payloads(first_seq)
                )
                self._cache[key] = blob
            elif connection.compression == "zlib-stream" and connection.split_frames is None:
                deflater = _deflate.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate: spliced into the stream
                blob = b"".join(
                    emulator_module.encode_frame(
                        _OPCODE_BINARY, deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)
                    )
                    for payload in self._payloads(first_seq)
                )
                self._cache[key] = blob
            else:  # zstd-stream (or split frames): the connection's own compressor, in order
                blob = b"".join(
                    encode({"t": name, "s": seq, "op": 0, "d": orjson.Fragment(data)})
                    for seq, (name, data) in enumerate(self._stream, first_seq)
                )
        session.seq = first_seq + len(self._stream) - 1
        session.events.extend(
            (seq, name, orjson.Fragment(data)) for seq, (name, data) in enumerate(self._stream, first_seq)
        )
        return blob, len(blob)

    def _payloads(self, first_seq: int) -> typing.Iterator[bytes]:
        for seq, (name, data) in enumerate(self._stream, first_seq):
            yield recording.envelope(name, seq, data)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hikari_shard.bench.server",
        description=(
            "The benchmark's gateway emulator: streams FILE (JSON lines, see hikari_shard.bench.recording) to every "
            f"connection after READY. The token is read from ${TOKEN_ENV}."
        ),
    )
    parser.add_argument("--stream", required=True, help="the stream file (JSON lines)")
    parser.add_argument("--hold", action="store_true", help="send each prepared stream only after 'go' on stdin")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    parser.add_argument("--heartbeat-interval", type=float, default=41.25, help="seconds, sent in HELLO")
    return parser.parse_args(argv)


async def _read_commands(server: StreamingServer, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (OSError, ValueError):  # stdin is not a pipe (a terminal, /dev/null): no commands
        return
    while not stop.is_set():
        line = (await reader.readline()).strip()
        if not line or line == b"quit":
            break  # end of stdin: the parent is gone
        if line == b"go":
            server.release()
    stop.set()


async def _serve(args: argparse.Namespace) -> None:
    token = os.environ.get(TOKEN_ENV)
    if not token:
        msg = f"set {TOKEN_ENV} to the token the clients will identify with"
        raise SystemExit(msg)
    stream = recording.read_stream(args.stream)
    deadline = time.monotonic() + args.max_seconds
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    emulator = emulator_module.GatewayEmulator(token=token, heartbeat_interval=args.heartbeat_interval, port=args.port)
    async with emulator:
        server = StreamingServer(emulator, stream, hold=args.hold)

        def report(line: dict[str, typing.Any]) -> None:
            sys.stdout.write(orjson.dumps(line).decode() + "\n")
            sys.stdout.flush()

        server.report = report
        sys.stdout.write(f"{emulator.url}\n{emulator.rest_url}\n")
        sys.stdout.flush()
        tasks = [
            asyncio.create_task(server.serve(deadline=deadline)),
            asyncio.create_task(_read_commands(server, stop)),
            asyncio.create_task(stop.wait()),
        ]
        try:
            # Until told to stop, stdin ends, or the deadline passes (serve() returns then).
            await asyncio.wait(
                tasks, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in tasks:
                task.cancel()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark's gateway until told to stop (see the module docstring)."""
    args = _parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
