"""Gateway traffic files: what ``hikari-shard bench`` streams, and what ``--replay`` reads.

File formats
------------
``--replay FILE`` accepts either of two formats, told apart by the first byte of the file:

**JSON lines** (first byte ``{``, UTF-8): one complete gateway payload per line, exactly as the
gateway sent it, e.g. ::

    {"op":0,"t":"MESSAGE_CREATE","s":42,"d":{"id":"1234","content":"hi",...}}

Blank lines are skipped.  Only dispatches (``"op": 0``) are replayed, in file order; other opcodes
(HELLO, HEARTBEAT_ACK, ...) and the READY / RESUMED dispatches are skipped, and the ``s`` of each
payload is ignored (the benchmark's gateway numbers the dispatches itself, after its own READY).
This is also the format of the stream files the benchmark writes (:func:`write_stream`) and of
``hikari_shard.record(bot, "traffic.jsonl")`` (redacted, see :mod:`hikari_shard.recorder`); with
hikari's own shard a recording can be written with::

    # in a listener for hikari.ShardPayloadEvent: one line per dispatch
    record.write(orjson.dumps({"op": 0, "t": event.name, "s": None, "d": event.payload}) + b"\\n")

**A raw zlib-stream** (first byte ``0x78``, the zlib header): the payloads of every binary
websocket message of one ``compress=zlib-stream`` gateway connection, concatenated in the order
they were received, starting with the connection's first message (append ``message.data`` of each
``aiohttp.WSMsgType.BINARY`` message to the file).  It is inflated as one zlib stream and split
into payloads at each ``00 00 ff ff`` flush marker that ends a complete JSON document.

A recording is refused, with a message naming the line but never the secret, when it holds a
bot token: a string shaped like one (``[\\w-]{23,28}\\.[\\w-]{6,7}\\.[\\w-]{27,}``) anywhere, or
any ``"token"`` key other than the ``d.token`` of an INTERACTION_CREATE (a short-lived interaction
token, which real traffic always carries).  IDENTIFY and RESUME payloads carry the bot token;
record only what the gateway sent.
"""

from __future__ import annotations

__all__ = (
    "BOT_TOKEN_PATTERN",
    "RecordingError",
    "TokenInRecordingError",
    "check_no_token",
    "envelope",
    "read_recording",
    "read_stream",
    "write_stream",
)

import os
import pathlib
import re
import typing
import zlib

import orjson

if typing.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

BOT_TOKEN_PATTERN: typing.Final = re.compile(rb"[\w-]{23,28}\.[\w-]{6,7}\.[\w-]{27,}")
"""The shape of a Discord bot token: base64 user id, timestamp, HMAC."""

_TOKEN_KEY: typing.Final = re.compile(rb'"token"\s*:')
_ZLIB_SUFFIX: typing.Final = b"\x00\x00\xff\xff"
_SKIPPED: typing.Final = frozenset(("READY", "RESUMED"))
_ALLOWED_TOKEN_EVENT: typing.Final = "INTERACTION_CREATE"  # noqa: S105 - an event name
_MAX_INFLATED: typing.Final = 4 * 1024 * 1024 * 1024
"""A raw zlib-stream recording may inflate to at most this many bytes (a bomb is refused)."""
_MAX_MESSAGE: typing.Final = 256 * 1024 * 1024


class RecordingError(ValueError):
    """A recording cannot be read (wrong format, invalid JSON, ...)."""


class TokenInRecordingError(RecordingError):
    """A recording holds what looks like a bot token; the message says where, never what."""


def envelope(name: str, seq: int | None, data: bytes) -> bytes:
    """Return the JSON of a dispatch payload around ``data``, the already-encoded ``d``.

    Parameters
    ----------
    name
        The event name (``t``).
    seq
        The sequence number (``s``).
    data
        ``orjson.dumps(d)``.

    Returns
    -------
    bytes
        ``{"t":name,"s":seq,"op":0,"d":data}`` exactly as the benchmark's gateway sends it.
    """
    return orjson.dumps({"t": name, "s": seq, "op": 0, "d": orjson.Fragment(data)})


def write_stream(path: str | os.PathLike[str], events: Iterable[tuple[str, typing.Any]], *, first_seq: int = 2) -> int:
    """Write dispatches as JSON lines (the ``--replay`` format), numbering them from ``first_seq``.

    Parameters
    ----------
    path
        The file to write.
    events
        ``(name, d)`` pairs; ``d`` is any JSON value, or bytes already encoded by ``orjson.dumps``.
    first_seq
        The ``s`` of the first line (READY is 1, so a stream that follows it starts at 2).

    Returns
    -------
    int
        The number of lines written.
    """
    count = 0
    with pathlib.Path(path).open("wb") as file:
        for seq, (name, data) in enumerate(events, first_seq):
            encoded = data if isinstance(data, bytes) else orjson.dumps(data)
            file.write(envelope(name, seq, encoded) + b"\n")
            count += 1
    return count


def read_stream(path: str | os.PathLike[str]) -> list[tuple[str, bytes]]:
    """Read a stream file written by :func:`write_stream`, trusting it (no token check).

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    list[tuple[str, bytes]]
        ``(name, orjson.dumps(d))`` per dispatch, in order.

    Raises
    ------
    RecordingError
        If a line is not a dispatch payload.
    """
    return [(name, orjson.dumps(data)) for name, data in _iter_json_lines(pathlib.Path(path).read_bytes(), path)]


def read_recording(path: str | os.PathLike[str]) -> list[tuple[str, typing.Any]]:
    """Read a recording of real traffic (either format, see the module docstring), refusing tokens.

    Parameters
    ----------
    path
        The recording.

    Returns
    -------
    list[tuple[str, typing.Any]]
        ``(name, d)`` per dispatch, in order, without READY and RESUMED.

    Raises
    ------
    TokenInRecordingError
        If the recording holds what looks like a bot token.
    RecordingError
        If it cannot be read.
    """
    raw = pathlib.Path(path).read_bytes()
    start = raw.lstrip()[:1]
    if start == b"{":
        lines: Iterable[bytes] = raw.splitlines()
    elif raw[:1] == b"\x78":
        lines = _inflate_zlib_stream(raw, path)
    elif not raw.strip():
        msg = f"{path}: the recording is empty"
        raise RecordingError(msg)
    else:
        msg = (
            f"{path}: not a recording: expected JSON lines (starting with '{{') or a raw zlib-stream "
            f"(starting with the zlib header byte 0x78), found {raw[:1]!r}"
        )
        raise RecordingError(msg)
    payloads = list(lines)
    check_no_token(payloads, source=str(path))
    return [
        (name, data)
        for name, data in _iter_json_lines(b"\n".join(payloads), path, dispatches_only=True)
        if name not in _SKIPPED
    ]


def check_no_token(payloads: Iterable[bytes], *, source: str = "recording") -> None:
    """Refuse payloads that hold a bot token (see the module docstring for the rules).

    Parameters
    ----------
    payloads
        One JSON payload per item.
    source
        Named in the error message.

    Raises
    ------
    TokenInRecordingError
        Naming the line (and the key path), never the token.
    """
    for number, line in enumerate(payloads, 1):
        if BOT_TOKEN_PATTERN.search(line):
            msg = (
                f"refusing to replay {source}: payload {number} holds a string shaped like a Discord bot token "
                "(<base64 id>.<timestamp>.<hmac>), not shown here. Remove it (or overwrite it with a placeholder) "
                "and run again; never share a recording that holds a token."
            )
            raise TokenInRecordingError(msg)
        if _TOKEN_KEY.search(line):
            try:
                payload = orjson.loads(line)
            except orjson.JSONDecodeError:
                payload = None
            where = _token_key_path(payload)
            if where is not None or payload is None:
                msg = (
                    f'refusing to replay {source}: payload {number} has a "token" key{f" at {where}" if where else ""}'
                    " (its value is not shown). Only INTERACTION_CREATE's d.token, a short-lived interaction token, is "
                    "accepted; record only what the gateway sent (IDENTIFY and RESUME carry the bot token)."
                )
                raise TokenInRecordingError(msg)


def _token_key_path(payload: typing.Any) -> str | None:
    """Where a ``"token"`` key other than an interaction's ``d.token`` is, or ``None``."""
    allowed: object = None
    if isinstance(payload, dict) and payload.get("t") == _ALLOWED_TOKEN_EVENT and isinstance(payload.get("d"), dict):
        allowed = payload["d"]
    stack: list[tuple[str, typing.Any]] = [("", payload)]
    for _ in range(1_000_000):  # bounded walk
        if not stack:
            return None
        path, value = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                if key.lower() == "token" and value is not allowed:
                    return f"{path}.{key}".lstrip(".")
                stack.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    return "(too deeply nested to check)"


def _iter_json_lines(raw: bytes, source: object, *, dispatches_only: bool = False) -> Iterator[tuple[str, typing.Any]]:
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            payload = orjson.loads(line)
        except orjson.JSONDecodeError as ex:
            msg = f"{source}: line {number} is not JSON ({ex})"
            raise RecordingError(msg) from None
        if not isinstance(payload, dict):
            msg = f"{source}: line {number} is not a JSON object"
            raise RecordingError(msg)
        if payload.get("op") != 0:
            if dispatches_only:
                continue
            msg = f"{source}: line {number} is not a dispatch (op {payload.get('op')!r})"
            raise RecordingError(msg)
        name = payload.get("t")
        if not isinstance(name, str) or "d" not in payload:
            msg = f"{source}: line {number} is a dispatch without a string 't' or without 'd'"
            raise RecordingError(msg)
        yield name, payload["d"]


def _inflate_zlib_stream(raw: bytes, source: object) -> list[bytes]:
    """Split a raw zlib-stream into its JSON payloads (see the module docstring)."""
    inflator = zlib.decompressobj()
    payloads: list[bytes] = []
    pending = bytearray()
    total = 0
    start = 0
    size = len(raw)
    while start < size:
        end = raw.find(_ZLIB_SUFFIX, start)
        end = size if end < 0 else end + len(_ZLIB_SUFFIX)
        try:
            chunk = inflator.decompress(raw[start:end], _MAX_MESSAGE - len(pending) + 1)
        except zlib.error as ex:
            msg = f"{source}: the zlib-stream is corrupt at byte {start} ({ex})"
            raise RecordingError(msg) from None
        if inflator.unconsumed_tail:
            msg = f"{source}: a message inflates to more than {_MAX_MESSAGE} bytes"
            raise RecordingError(msg)
        total += len(chunk)
        if total > _MAX_INFLATED:
            msg = f"{source}: the recording inflates to more than {_MAX_INFLATED} bytes"
            raise RecordingError(msg)
        pending += chunk
        start = end
        if pending and _is_document(pending):
            payloads.append(bytes(pending).replace(b"\n", b" "))
            pending.clear()
    if pending.strip():
        msg = f"{source}: the zlib-stream ends in the middle of a payload"
        raise RecordingError(msg)
    return payloads


def _is_document(data: bytearray) -> bool:
    # A flush marker can occur by chance inside compressed data: a message is complete only when
    # what was inflated so far parses as one JSON document.
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True
