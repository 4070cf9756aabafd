"""Fuzzing the receive path: random and mutated gateway traffic through frames -> inflate -> scan -> router.

A bot author would notice a failure here as a crashed interpreter (a memory error in the compiled
code), a compiled shard that behaves differently from the pure one on the same bytes (an event lost,
duplicated or mis-sequenced only with the extensions), or memory that creeps up under hostile input.

* The whole pipeline (``FrameParser`` feeding ``Router.feed_frame``, with each compression scheme's
  inflator, the scanner and selective decode) gets Discord-shaped traffic with duplicates, gaps,
  malformed payloads, split and fragmented messages and random byte damage; the compiled and the
  pure implementation must give the same consumed events, the same pending items, the same
  ``seq``/``skipped`` and the same error (type and message) at the same chunk.
* The router alone gets arbitrary payloads and websocket opcodes, one call at a time.
* Selective decode never changes the sequence tracking of well-formed traffic.
* Thousands of iterations (errors included) leave traced memory flat.

``HIKARI_SHARD_FUZZ_EXAMPLES`` scales the number of examples (``scripts/asan_fuzz.sh`` raises it and
runs this file against an AddressSanitizer build of the compiled modules).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import random
import tracemalloc
import types
import typing
import zlib

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hikari_shard import _consumers
from hikari_shard.testing import encode_frame
from hikari_shard.testing.hot_paths import make_router as inert_router

try:
    from compression import zstd  # type: ignore[import-not-found]
except ImportError:
    try:
        from backports import zstd  # type: ignore[no-redef]
    except ImportError:
        zstd = None

EXAMPLES: typing.Final = int(os.environ.get("HIKARI_SHARD_FUZZ_EXAMPLES", "150"))
FUZZ: typing.Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
COMPRESSIONS: typing.Final = (
    ("none", "zlib-stream", "zstd-stream", "payload") if zstd else ("none", "zlib-stream", "payload")
)
EVENT_NAMES: typing.Final = (
    "MESSAGE_CREATE",
    "GUILD_CREATE",
    "TYPING_START",
    "READY",
    "RESUMED",
    "RATE_LIMITED",
    "UNKNOWN_EVENT",
    "",
)
WANTED: typing.Final = frozenset(("MESSAGE_CREATE", "GUILD_CREATE"))
SHARD: typing.Final = object()


def _quiet_logger(name: str, level: int) -> logging.Logger:
    # Not logging.getLogger(): a logger outside the registry, without a parent, so nothing (pytest's log
    # capture included) keeps its records: thousands of them would look like a memory leak.
    logger = logging.Logger(name, level)
    logger.addHandler(logging.NullHandler())
    return logger


QUIET: typing.Final = _quiet_logger("hikari_shard.tests.fuzz.quiet", logging.WARNING)
LOUD: typing.Final = _quiet_logger("hikari_shard.tests.fuzz.loud", 1)
"""TRACE enabled: the router logs every payload (through ``redact``)."""


@pytest.fixture
def both(compiled: types.SimpleNamespace, pure: types.SimpleNamespace) -> tuple[types.SimpleNamespace, ...]:
    return compiled, pure


# -- choices: one generator for hypothesis (shrinkable) and for seeded loops ------------------------


class Choices(typing.Protocol):
    def integer(self, low: int, high: int) -> int: ...
    def choice(self, options: typing.Sequence[typing.Any]) -> typing.Any: ...
    def binary(self, max_size: int) -> bytes: ...


class DrawChoices:
    def __init__(self, data: st.DataObject) -> None:
        self._data = data

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(st.integers(low, high))

    def choice(self, options: typing.Sequence[typing.Any]) -> typing.Any:
        return self._data.draw(st.sampled_from(options))

    def binary(self, max_size: int) -> bytes:
        return self._data.draw(st.binary(max_size=max_size))


class RandomChoices:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def integer(self, low: int, high: int) -> int:
        return self._rng.randint(low, high)

    def choice(self, options: typing.Sequence[typing.Any]) -> typing.Any:
        return self._rng.choice(options)

    def binary(self, max_size: int) -> bytes:
        return self._rng.randbytes(self._rng.randint(0, max_size))


def json_value(c: Choices, depth: int = 0) -> typing.Any:
    kind = c.integer(0, 9 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return c.choice((True, False))
    if kind == 2:
        return c.choice((0, 1, -1, 2**31, 2**63 - 1, -(2**63), c.integer(-1000, 1000)))
    if kind == 3:
        return c.choice((0.0, -0.0, 1.5, 1e300, -2.25e-10))
    if kind in {4, 5}:
        return c.choice(("", "a", "hello there", 'quote " and \\ backslash', "{[}]", "é☃𝄞", "\x00\x1f"))
    if kind in {6, 7}:
        return [json_value(c, depth + 1) for _ in range(c.integer(0, 3))]
    keys = ("id", "content", "op", "s", "t", "d", "k", "session_id", "nested")
    return {c.choice(keys): json_value(c, depth + 1) for _ in range(c.integer(0, 4))}


def gateway_payload(c: Choices, seq: list[int]) -> bytes:
    """One payload: mostly Discord-shaped (seq mostly increasing, with repeats and gaps), some not."""
    kind = c.integer(0, 19)
    if kind <= 10:
        step = c.choice((1, 1, 1, 1, 1, 0, -1, 2, 5))
        seq[0] = max(seq[0] + step, 1)
        name = c.choice(EVENT_NAMES)
        if name in {"READY", "RESUMED", "RATE_LIMITED"} and c.integer(0, 3):
            d: typing.Any = {"session_id": "s", "resume_gateway_url": "wss://x", "user": {"id": "1"}, "v": 10}
        else:
            d = json_value(c)
        document: dict[str, typing.Any] = {"op": 0, "s": seq[0] if c.integer(0, 9) else None, "t": name, "d": d}
    elif kind <= 14:
        document = {"op": c.choice((1, 7, 9, 10, 11, 42)), "d": json_value(c)}
        if c.integer(0, 1):
            document.update(s=None, t=None)
    elif kind <= 16:
        # op/s/t/d of any type, or missing
        document = {}
        for key in ("op", "s", "t", "d"):
            if c.integer(0, 4):
                document[key] = c.choice((0, 1, "0", 1.0, True, None, [], {}, "MESSAGE_CREATE", seq[0] + 1))
    elif kind == 17:
        return orjson.dumps(json_value(c))  # any JSON value, mostly not an object
    else:
        return c.binary(40)
    keys = list(document)
    if c.integer(0, 3) == 0:
        keys.reverse()
    ordered = {key: document[key] for key in keys}
    if c.integer(0, 2):
        return orjson.dumps(ordered)
    return json.dumps(ordered, separators=c.choice(((",", ":"), (", ", ": ")))).encode()


@dataclasses.dataclass
class Scenario:
    compression: str
    expect_binary: bool | None
    selective: int
    loud: bool
    inflate_cap: int
    frame_cap: int
    chunks: list[bytes]


def scenario(c: Choices) -> Scenario:
    """A connection's worth of traffic, encoded, framed, maybe damaged, and cut into TCP chunks."""
    compression = c.choice(COMPRESSIONS)
    seq = [c.integer(0, 3)]
    payloads = [gateway_payload(c, seq) for _ in range(c.integer(1, 14))]

    messages: list[tuple[int, bytes]] = []  # (websocket opcode, message)
    if compression == "zlib-stream":
        deflate = zlib.compressobj(c.choice((1, 6, 9)))
        for raw in payloads:
            data = deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH)
            cuts = sorted({c.integer(1, max(1, len(data) - 1)) for _ in range(c.integer(0, 2))})
            messages += [(2, data[a:b]) for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    elif compression == "zstd-stream":
        assert zstd is not None
        compressor = zstd.ZstdCompressor()
        for raw in payloads:
            data = compressor.compress(raw, mode=zstd.ZstdCompressor.FLUSH_BLOCK)
            if c.integer(0, 4) == 0 and len(data) > 2:
                cut = c.integer(1, len(data) - 1)
                messages += [(2, data[:cut]), (2, data[cut:])]
            else:
                messages.append((2, data))
    elif compression == "payload":
        messages += [(2, zlib.compress(raw)) if c.integer(0, 3) else (1, raw) for raw in payloads]
    else:
        messages += [(1, raw) for raw in payloads]
    if c.integer(0, 5) == 0:  # a message of the wrong websocket type
        index = c.integer(0, len(messages))
        messages.insert(index, (c.choice((1, 2)), gateway_payload(c, seq)))

    stream = bytearray()
    for opcode, message in messages:
        if c.integer(0, 6) == 0:
            stream += encode_frame(c.choice((9, 10)), c.binary(8))  # ping / pong
        if c.integer(0, 5) == 0 and len(message) > 1:  # websocket fragmentation
            cut = c.integer(1, len(message) - 1)
            stream += encode_frame(opcode, message[:cut], fin=False)
            if c.integer(0, 2) == 0:
                stream += encode_frame(9, b"mid")  # a control frame between fragments
            stream += encode_frame(0, message[cut:])
        else:
            stream += encode_frame(opcode, message)
    if c.integer(0, 4) == 0:
        stream += encode_frame(8, (4000 + c.integer(0, 14)).to_bytes(2, "big") + b"bye")

    for _ in range(c.choice((0, 0, 0, 1, 2, 5))):  # byte damage
        if not stream:
            break
        where = c.integer(0, len(stream) - 1)
        action = c.integer(0, 3)
        if action == 0:
            stream[where] ^= 1 << c.integer(0, 7)
        elif action == 1:
            del stream[where:]
        elif action == 2:
            stream[where:where] = c.binary(6)
        else:
            stream[where] = c.integer(0, 255)

    data = bytes(stream)
    cuts = sorted({c.integer(0, len(data)) for _ in range(c.integer(0, 8))})
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    if compression == "payload":
        expect_binary = None
    elif compression == "none":
        expect_binary = c.choice((False, False, None))
    else:
        expect_binary = c.choice((True, True, None))
    return Scenario(
        compression=compression,
        expect_binary=expect_binary,
        selective=c.integer(0, 3),
        loud=c.integer(0, 4) == 0,
        inflate_cap=c.choice((64 * 1024 * 1024, 4096, 200, c.integer(1, 600))),
        frame_cap=c.choice((64 * 1024 * 1024, 4096, c.integer(1, 2000))),
        chunks=chunks,
    )


# -- running one implementation --------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    consumed: list[tuple[str, typing.Any]]
    special: list[tuple[str, typing.Any]]
    pending: list[typing.Any]
    seq: int | None
    skipped: int
    error: tuple[int, str, str] | None
    parser_closed: bool
    parser_buffered: int


def make_inflator(impl: types.SimpleNamespace, compression: str, cap: int) -> typing.Any:
    if compression == "zlib-stream":
        return impl.inflate.ZlibStreamInflator(cap)
    if compression == "zstd-stream":
        return impl.inflate.ZstdStreamInflator(cap)
    if compression == "payload":
        return impl.inflate.PayloadZlibInflator(cap)
    return None


class _Consumer:
    def __init__(self, enabled: bool) -> None:
        self.is_enabled = enabled


class _PayloadEvent:
    """Stands in for hikari's ShardPayloadEvent: a listener for it makes every dispatch wanted."""


def consumer_index(selective: int) -> _consumers.ConsumerIndex | None:
    """0: decode everything; 1: only WANTED; 2: WANTED plus a disabled consumer; 3: a payload listener."""
    if not selective:
        return None
    index = _consumers.ConsumerIndex.wanting(WANTED)
    if selective == 2:
        index.consumers["typing_start"] = _Consumer(enabled=False)
    elif selective == 3:
        index.payload_event_types = (_PayloadEvent,)
        index.listeners[_PayloadEvent] = [print]
    return index


def make_router(
    impl: types.SimpleNamespace,
    *,
    inflator: typing.Any,
    expect_binary: bool | None,
    selective: int,
    loud: bool,
    consumed: list[tuple[str, typing.Any]],
    special: list[tuple[str, typing.Any]],
) -> typing.Any:
    from hikari import errors

    def consume(name: str, shard: object, data: typing.Any) -> None:
        assert shard is SHARD
        consumed.append((name, data))
        if name == "UNKNOWN_EVENT":
            raise LookupError(name)  # hikari's event manager does this for an event it does not know

    def on_special(name: str, data: typing.Any) -> None:
        special.append((name, data))
        if type(data) is not dict:  # what the shard does with a READY/RESUMED/RATE_LIMITED that is not an object
            msg = f"{name} 'd' must be an object"
            raise errors.GatewayTransportError(msg)

    return inert_router(
        impl,
        shard=SHARD,
        consume=consume,
        on_special=on_special,
        consumers=consumer_index(selective),
        scan=impl.scan.scan if selective else None,
        inflator=inflator,
        expect_binary=expect_binary,
        logger=LOUD if loud else QUIET,
    )


def run(impl: types.SimpleNamespace, case: Scenario) -> Outcome:
    consumed: list[tuple[str, typing.Any]] = []
    special: list[tuple[str, typing.Any]] = []
    router = make_router(
        impl,
        inflator=make_inflator(impl, case.compression, case.inflate_cap),
        expect_binary=case.expect_binary,
        selective=case.selective,
        loud=case.loud,
        consumed=consumed,
        special=special,
    )
    parser = impl.frames.FrameParser(router.feed_frame, max_message_size=case.frame_cap)
    error = None
    for index, chunk in enumerate(case.chunks):
        try:
            parser.feed_data(chunk)
        except Exception as ex:
            error = (index, type(ex).__qualname__, str(ex))
            break
    return Outcome(
        consumed=consumed,
        special=special,
        pending=list(router.pending),
        seq=router.seq,
        skipped=router.skipped,
        error=error,
        parser_closed=parser.closed,
        parser_buffered=parser.buffered,
    )


# -- compiled and pure agree -------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_pipeline_compiled_and_pure_agree(both: tuple[types.SimpleNamespace, ...], data: st.DataObject) -> None:
    """Same bytes in, same events, pending items, seq and error out, on every implementation."""
    case = scenario(DrawChoices(data))
    compiled, pure = both
    expected = run(pure, case)
    assert run(compiled, case) == expected
    # The chunking of the bytes never matters, except for where an error is noticed.
    whole = dataclasses.replace(case, chunks=[b"".join(case.chunks)])
    for impl in both:
        again = run(impl, whole)
        if expected.error is None:
            assert again == dataclasses.replace(expected, error=None)
        else:
            assert again.error is not None
            assert again.error[1:] == expected.error[1:]


@st.composite
def router_calls(draw: st.DrawFn) -> list[tuple[int, bytes]]:
    calls = []
    c = DrawChoices(draw(st.data()))
    seq = [draw(st.integers(0, 3))]
    for _ in range(draw(st.integers(1, 20))):
        opcode = draw(st.sampled_from((1, 1, 1, 2, 2, 8, 9, 10, 0, 3, 11, 15)))
        if opcode == 8:
            payload = draw(st.binary(max_size=6))
        elif draw(st.integers(0, 5)) == 0:
            payload = draw(st.binary(max_size=60))
        else:
            payload = gateway_payload(c, seq)
        calls.append((opcode, payload))
    return calls


@FUZZ
@given(calls=router_calls(), selective=st.integers(0, 3), expect_binary=st.sampled_from((True, False, None)))
def test_router_compiled_and_pure_agree_call_by_call(
    both: tuple[types.SimpleNamespace, ...],
    calls: list[tuple[int, bytes]],
    selective: int,
    expect_binary: bool | None,
) -> None:
    """Router.feed_frame on its own (no inflator): every call, including the failing ones, agrees."""
    results = []
    for impl in both:
        consumed: list[tuple[str, typing.Any]] = []
        special: list[tuple[str, typing.Any]] = []
        router = make_router(
            impl,
            inflator=None,
            expect_binary=expect_binary,
            selective=selective,
            loud=False,
            consumed=consumed,
            special=special,
        )
        trace = []
        for opcode, payload in calls:
            try:
                router.feed_frame(opcode, payload)
            except Exception as ex:
                trace.append((type(ex).__qualname__, str(ex)))
            else:
                trace.append(None)
            trace.append((router.seq, router.skipped, len(consumed), len(router.pending)))
        results.append((trace, consumed, special, list(router.pending)))
    assert results[0] == results[1]


@st.composite
def well_formed_session(draw: st.DrawFn) -> list[bytes]:
    """Valid dispatches and control payloads, seq with repeats and gaps: what a real (replaying) server sends."""
    seq = draw(st.integers(1, 5))
    out = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.integers(0, 4)) == 0:
            out.append(orjson.dumps({"op": draw(st.sampled_from((1, 7, 9, 11))), "d": None, "s": None, "t": None}))
            continue
        seq = max(1, seq + draw(st.sampled_from((1, 1, 1, 0, -2, 3))))
        name = draw(st.sampled_from(("MESSAGE_CREATE", "TYPING_START", "PRESENCE_UPDATE", "GUILD_CREATE")))
        document = {"t": name, "s": seq, "op": 0, "d": {"id": str(seq), "content": draw(st.text(max_size=20))}}
        out.append(orjson.dumps(document))
    return out


@FUZZ
@given(payloads=well_formed_session())
def test_selective_decode_never_changes_the_sequence(
    both: tuple[types.SimpleNamespace, ...], payloads: list[bytes]
) -> None:
    """Skipping undecoded dispatches tracks seq exactly like decoding everything (and drops the same repeats)."""
    for impl in both:
        outcomes = []
        for selective in (0, 1):
            consumed: list[tuple[str, typing.Any]] = []
            router = make_router(
                impl,
                inflator=None,
                expect_binary=False,
                selective=selective,
                loud=False,
                consumed=consumed,
                special=[],
            )
            for raw in payloads:
                router.feed_frame(1, raw)
            wanted = [(name, data) for name, data in consumed if name in WANTED]
            outcomes.append((router.seq, wanted, list(router.pending), router.skipped + len(consumed)))
        assert outcomes[0] == outcomes[1]


# -- memory ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["compiled", "pure"])
def test_memory_stays_flat(implementation: str, compiled: types.SimpleNamespace, pure: types.SimpleNamespace) -> None:
    """Thousands of connections' worth of hostile traffic leave no memory behind (traced by tracemalloc).

    The compiled modules allocate their buffers with PyMem, which tracemalloc sees.
    """
    impl = compiled if implementation == "compiled" else pure
    rng = random.Random(1234)
    cases = [scenario(RandomChoices(rng)) for _ in range(200)]
    rounds = max(6, EXAMPLES // 25)

    def one_round() -> None:
        for case in cases:
            run(impl, case)

    one_round()  # warm-up: caches (event names, compiled regexes, loggers) fill here
    gc.collect()
    tracemalloc.start()
    try:
        one_round()
        gc.collect()
        baseline, _ = tracemalloc.get_traced_memory()
        for _ in range(rounds):
            one_round()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = current - baseline
    print(f"\n{implementation}: {rounds * len(cases)} connections, traced growth {growth} B, peak {peak} B")
    assert growth < 64 * 1024, f"traced memory grew by {growth} bytes over {rounds} rounds"


def test_no_reference_leaks_on_errors(compiled: types.SimpleNamespace) -> None:
    """The compiled path keeps no reference to the bytes it was fed, on success or on error."""
    import sys

    rng = random.Random(99)
    cases = [scenario(RandomChoices(rng)) for _ in range(100)]
    for case in cases:
        run(compiled, case)  # warm-up
    gc.collect()
    before = sys.getallocatedblocks()
    for _ in range(5):
        for case in cases:
            run(compiled, case)
    gc.collect()
    growth = sys.getallocatedblocks() - before
    assert growth < 500, f"{growth} memory blocks still allocated after 500 connections"
