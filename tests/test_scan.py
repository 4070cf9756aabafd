"""The op/s/t pre-scan: the shard routes every payload on what ``scan`` returns.

If one of these fails, a bot would notice events delivered under the wrong name, a sequence number
that resumes at the wrong place, a heartbeat ACK taken for a dispatch, or the shard crashing on a
malformed frame.  ``None`` is always a safe answer (the shard then decodes the payload fully); a
wrong tuple never is.
"""

from __future__ import annotations

import json
import random
import types
import typing

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

# A MESSAGE_CREATE as Discord sends it (t, s, op first), about 1 KB, with escapes and non-ASCII in d.
MESSAGE_CREATE: typing.Final = (
    b'{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"type":0,"tts":false,"timestamp":"2024-05-01T12:34:56.789000+00:00",'
    b'"referenced_message":null,"pinned":false,"nonce":"1235813213455891442","mentions":[{"username":"op","public_'
    b'flags":0,"id":"80351110224678912","global_name":"Op \\"the\\" Gator \\u2603","discriminator":"0","avatar":'
    b'"a_1cb9e1e0b0f6b3d0c3d8c2a1f7d6e5c4"}],"mention_roles":[],"mention_everyone":false,"member":{"roles":'
    b'["41771983423143936","41771983423143937"],"premium_since":null,"pending":false,"nick":"\xc3\xa9t\xc3\xa9 \xf0'
    b'\x9f\x8c\x9e","mute":false,"joined_at":"2015-04-26T06:26:56.936000+00:00","flags":0,"deaf":false,"avatar":'
    b'null},"id":"334385199974967042","flags":0,"embeds":[{"type":"rich","title":"{\\"t\\":\\"READY\\",\\"op\\":1}",'
    b'"fields":[{"name":"s","value":"\\\\","inline":true},{"name":"op","value":"}]}","inline":false}],"color":'
    b'16711680}],"edited_timestamp":null,"content":"Supa Hot \\"op\\":7, \\"t\\":\\"RESUMED\\" } ] \\\\",'
    b'"components":[],"channel_id":"290926798999357250","author":{"username":"Mason","public_flags":131141,"id":"53908232506183680",'
    b'"global_name":"Mason","discriminator":"0","avatar":"a_bab14f271d565501444b2ca3be944b25"},"attachments":[],'
    b'"guild_id":"290926798626357999"}}'
)

ST_HEALTH: typing.Final = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None
)


def expected_from(document: typing.Any) -> tuple[int, int | None, str | None]:
    return document["op"], document.get("s"), document.get("t")


def agree(compiled: types.SimpleNamespace, pure: types.SimpleNamespace, payload: bytes) -> typing.Any:
    """Both twins (and the pure exact walker behind the pure fast path) give the same answer."""
    result = compiled.scan.scan(payload)
    assert pure.scan.scan(payload) == result
    assert pure.scan._scan_exact(payload) == result
    return result


# --------------------------------------------------------------------------------------------------
# What Discord sends


def test_message_create(impl: types.SimpleNamespace) -> None:
    assert impl.scan.scan(MESSAGE_CREATE) == (0, 42, "MESSAGE_CREATE")
    assert orjson.loads(MESSAGE_CREATE)["t"] == "MESSAGE_CREATE"  # the sample is real JSON


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\\"gw\\",{}]"]}}', (10, None, None)),
        (b'{"t":null,"s":null,"op":11,"d":null}', (11, None, None)),
        (b'{"t":null,"s":null,"op":7,"d":null}', (7, None, None)),
        (b'{"t":null,"s":null,"op":9,"d":false}', (9, None, None)),
        (b'{"t":"READY","s":1,"op":0,"d":{"v":10,"user":{"id":"1"},"guilds":[]}}', (0, 1, "READY")),
        (b'{"t":"RESUMED","s":1337,"op":0,"d":{}}', (0, 1337, "RESUMED")),
        (b'{"op":11}', (11, None, None)),
        (b'{"op":1,"d":251}', (1, None, None)),
    ],
)
def test_gateway_opcodes(impl: types.SimpleNamespace, payload: bytes, expected: tuple[object, ...]) -> None:
    assert impl.scan.scan(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        b'{"d":{"content":"hi"},"op":0,"s":5,"t":"MESSAGE_CREATE"}',
        b'{"op":0,"d":{"content":"hi"},"t":"MESSAGE_CREATE","s":5}',
        b'{"s":5,"d":{"content":"hi"},"t":"MESSAGE_CREATE","op":0}',
        b' \r\n\t{ "t" : "MESSAGE_CREATE" ,\n "s" :5,"op"\t:\t0 , "d" : { "content" : "hi" } }\n\r\t ',
        b'{\n  "d": {\n    "content": "hi"\n  },\n  "op": 0,\n  "s": 5,\n  "t": "MESSAGE_CREATE"\n}\n',
    ],
)
def test_any_key_order_and_whitespace(impl: types.SimpleNamespace, payload: bytes) -> None:
    assert impl.scan.scan(payload) == (0, 5, "MESSAGE_CREATE")


@pytest.mark.parametrize(
    "d",
    [
        b'"\\""',
        b'"\\\\"',
        b'"\\\\\\""',
        b'"\\\\\\\\"',
        b'{"t":"WRONG","s":99,"op":1}',
        b'["\\"t\\":\\"WRONG\\"","op\\":1}"]',
        b'{"a":"}}}]]]","b":"{{{[[["}',
        b'{"x":"\\"op\\":1,\\"t\\":\\"WRONG\\""}',
        '{"emoji":"\U0001f600","name":"\u00e9\u00e8","cjk":"\u4e2d\u6587"}'.encode(),
        b'{"esc":"\\u00e9\\ud83d\\ude00\\n\\t\\/"}',
        b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
        b"[1,-2.5e+10,true,false,null,{}]",
        b"-0.5E-3",
        b"true",
        b"null",
        b'"raw \x01\x1f\x7f\xff bytes"',
    ],
)
def test_d_never_confuses_the_scan(impl: types.SimpleNamespace, d: bytes) -> None:
    for payload in (
        b'{"t":"GUILD_CREATE","s":3,"op":0,"d":' + d + b"}",
        b'{"d":' + d + b',"op":0,"t":"GUILD_CREATE","s":3}',
        b'{"x":' + d + b',"t":"GUILD_CREATE","y":' + d + b',"s":3,"op":0,"d":' + d + b"}",
    ):
        assert impl.scan.scan(payload) == (0, 3, "GUILD_CREATE"), payload


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"op":0}', (0, None, None)),
        (b'{"op":0,"s":null}', (0, None, None)),
        (b'{"op":0,"t":null}', (0, None, None)),
        (b'{"op":0,"s":0,"t":""}', (0, 0, "")),
        (b'{"op":0,"t":"A{B}[C] :,"}', (0, None, "A{B}[C] :,")),
        (b'{"op":0,"t":" !#$%&\'()*+,-./09:;<=>?@AZ[]^_`az{|}~"}', (0, None, " !#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}~")),
        (b'{"op":999999999999999999,"s":999999999999999999}', (999999999999999999, 999999999999999999, None)),
        (b'{"":1,"op":2,"o":3,"ops":4,"S":5,"T":6,"tt":7}', (2, None, None)),
        (b'{"x":"\\u006fp","op":1}', (1, None, None)),
        (b'{"op":0,"d":{"a":tru}}', (0, None, None)),  # the grammar inside skipped values is not validated
        (b'{"op":0,"d":[1 2 , , ]}', (0, None, None)),
        ('{"\u00e9":1,"op":3}'.encode(), (3, None, None)),
        (b'{"op":0,"d":{"a":[1,{"b":"\\\\"}]},"t":"X"}', (0, None, "X")),
    ],
)
def test_accepted_shapes(impl: types.SimpleNamespace, payload: bytes, expected: tuple[object, ...]) -> None:
    assert impl.scan.scan(payload) == expected


@pytest.mark.parametrize(
    "payload",
    [
        # not one top-level object
        b"",
        b"   ",
        b"[]",
        b'[{"op":0}]',
        b"null",
        b'"{\\"op\\":0}"',
        b"{}",
        b"{ }",
        b'{"op":0}{"op":1}',
        b'{"op":0} x',
        b'{"op":0},',
        b'\x00{"op":0}',
        b'{"op":0}\x00',
        b'\xef\xbb\xbf{"op":0}',  # a BOM is not JSON whitespace
        b'\x0c{"op":0}',
        # truncated / unbalanced
        b'{"op":0',
        b'{"op":0,',
        b'{"op":0,"d":{"a":1}',
        b'{"op":0,"d":{"a":"}"}',
        b'{"op":0,"d":"abc}',
        b'{"op":0,"d":"abc\\"}',
        b'{"op":0,"d":"abc\\',
        b'{"op":0,"d":[}',
        b'{"op":0,"d":{]}',
        b'{"op":0,"d":[{]}]}',
        b'{"op":0,"d":{}}}',
        b'{"op":0,"d":]}',
        b'{"op":0,"d":{"a":1}]}',
        b'{"op',
        b'{"op":',
        # member syntax
        b'{"op":0,}',
        b'{,"op":0}',
        b'{"op":0,,"s":1}',
        b'{"op" 0}',
        b'{"op"::0}',
        b"{op:0}",
        b"{'op':0}",
        b'{"op":0 "s":1}',
        b'{"op":0,"d":1 2}',
        b'{"op":0,"d":{}[]}',
        b'{"op":0,"d":"a""b"}',
        b'{"op":0,"d":}',
        b'{"op":0,"d":@}',
        b'{"op":0,"d":\x00}',
        b'{"op":0,"d":\xff}',
        b'{"op":0,{}:1}',
        # escaped top-level keys (one could be "op")
        b'{"o\\u0070":1}',
        b'{"o\\u0070":1,"op":2}',
        b'{"op":2,"\\u0074":"X"}',
        b'{"\\"":1,"op":2}',
        # repeated op / s / t
        b'{"op":0,"op":0}',
        b'{"op":0,"s":1,"s":1}',
        b'{"op":0,"s":null,"s":null}',
        b'{"op":0,"t":"A","t":"A"}',
        b'{"t":null,"op":0,"t":null}',
        # op
        b'{"s":1,"t":"READY"}',
        b'{"op":"0"}',
        b'{"op":null}',
        b'{"op":-1}',
        b'{"op":-0}',
        b'{"op":+1}',
        b'{"op":1.0}',
        b'{"op":1e2}',
        b'{"op":1E2}',
        b'{"op":01}',
        b'{"op":00}',
        b'{"op":true}',
        b'{"op":[0]}',
        b'{"op":{}}',
        b'{"op":0x1}',
        b'{"op":1234567890123456789}',
        b'{"op":0000000000000000001}',
        b'{"op":\xd9\xa1}',  # ARABIC-INDIC DIGIT ONE
        # s
        b'{"op":0,"s":"1"}',
        b'{"op":0,"s":-1}',
        b'{"op":0,"s":1.5}',
        b'{"op":0,"s":1e3}',
        b'{"op":0,"s":true}',
        b'{"op":0,"s":nul}',
        b'{"op":0,"s":nulls}',
        b'{"op":0,"s":NULL}',
        b'{"op":0,"s":01}',
        b'{"op":0,"s":1234567890123456789}',
        # t
        b'{"op":0,"t":1}',
        b'{"op":0,"t":true}',
        b'{"op":0,"t":{}}',
        b'{"op":0,"t":["X"]}',
        b'{"op":0,"t":"MESSAGE\\u005fCREATE"}',
        b'{"op":0,"t":"A\\"B"}',
        b'{"op":0,"t":"A\\\\B"}',
        b'{"op":0,"t":"\xc3\xa9"}',
        b'{"op":0,"t":"A\tB"}',
        b'{"op":0,"t":"A\x7fB"}',
        b'{"op":0,"t":"A',
        b'{"op":0,"t":nullx}',
    ],
)
def test_unsure_gives_none(impl: types.SimpleNamespace, payload: bytes) -> None:
    assert impl.scan.scan(payload) is None


def test_depth_limit(impl: types.SimpleNamespace) -> None:
    limit = impl.scan.MAX_DEPTH
    assert limit == 512

    def nested(levels: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
        # The top-level object is level 1, so d holds levels - 1 more.
        return b'{"op":0,"d":' + opener * (levels - 1) + closer * (levels - 1) + b"}"

    assert impl.scan.scan(nested(limit)) == (0, None, None)
    assert impl.scan.scan(nested(limit, b'{"a":', b"}")) == (0, None, None)
    assert impl.scan.scan(nested(limit + 1)) is None
    assert impl.scan.scan(nested(limit + 1, b'{"a":', b"}")) is None
    assert impl.scan.scan(b'{"op":0,"d":' + b"[" * 100_000) is None
    assert impl.scan.scan(b'{"op":0,"d":' + b"[" * 100_000 + b"]" * 100_000 + b"}") is None


def large_payload(count: int = 1000) -> bytes:
    """A GUILD_MEMBERS_CHUNK-like dispatch holding ``count`` copies of MESSAGE_CREATE's d (about 1.1 MB)."""
    members = b",".join(MESSAGE_CREATE[MESSAGE_CREATE.index(b'{"type"') :][:-1] for _ in range(count))
    return b'{"t":"GUILD_MEMBERS_CHUNK","s":7,"op":0,"d":{"members":[' + members + b"]}}"


def test_large_payload(impl: types.SimpleNamespace) -> None:
    payload = large_payload()
    assert len(payload) > 1_000_000
    assert impl.scan.scan(payload) == (0, 7, "GUILD_MEMBERS_CHUNK")
    assert impl.scan.scan(payload[:-1]) is None


def test_event_names_are_cached(impl: types.SimpleNamespace) -> None:
    first = impl.scan.scan(b'{"t":"TYPING_START","s":1,"op":0,"d":{}}')
    second = impl.scan.scan(bytearray(b'{"op":0,"s":2,"t":"TYPING_START"}'))
    assert first is not None
    assert second is not None
    assert first[2] == "TYPING_START"
    assert first[2] is second[2]
    long_name = "X" * 300
    assert impl.scan.scan(b'{"op":0,"t":"' + long_name.encode() + b'"}') == (0, None, long_name)


def test_bytes_like_inputs(impl: types.SimpleNamespace) -> None:
    expected = (0, 42, "MESSAGE_CREATE")
    assert impl.scan.scan(bytearray(MESSAGE_CREATE)) == expected
    assert impl.scan.scan(memoryview(MESSAGE_CREATE)) == expected
    assert impl.scan.scan(memoryview(b"xx" + MESSAGE_CREATE + b"yy")[2:-2]) == expected
    strided = bytes(b for c in MESSAGE_CREATE for b in (c, 0x20))
    assert impl.scan.scan(memoryview(strided)[::2]) == expected  # not contiguous

    class Payload(bytes):
        pass

    assert impl.scan.scan(Payload(MESSAGE_CREATE)) == expected


@pytest.mark.parametrize("bad", ['{"op":0}', 0, 5, None, 1.5, ['{"op":0}'], object()])
def test_non_bytes_raise_type_error(impl: types.SimpleNamespace, bad: object) -> None:
    with pytest.raises(TypeError):
        impl.scan.scan(bad)


def test_compiled_and_pure_agree_on_the_samples(compiled: types.SimpleNamespace, pure: types.SimpleNamespace) -> None:
    assert agree(compiled, pure, MESSAGE_CREATE) == (0, 42, "MESSAGE_CREATE")
    for size in range(len(MESSAGE_CREATE) + 1):
        assert agree(compiled, pure, MESSAGE_CREATE[:size]) is None or size == len(MESSAGE_CREATE)


# --------------------------------------------------------------------------------------------------
# Early stop: once op, s and t are read, a d holding a container that closes last is not walked


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b'{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi"}}', (0, 42, "MESSAGE_CREATE")),
        (b'{"op":0,"s":42,"t":"MESSAGE_CREATE","d":["hi"]}', (0, 42, "MESSAGE_CREATE")),
        (b'{"s":null,"t":null,"op":11,"d":{}}', (11, None, None)),
        (b'{"t":"","op":1,"s":0,"d":[]}', (1, 0, "")),
        (b' \r\n{ "t" : "X" ,\n "s" :7,"op"\t:\t0 , "d" \t: \n{ "a" : [ ] } \n}\n\t ', (0, 7, "X")),
        (b'{"t":"X","s":7,"op":0,"x":{"a":1},"d":{}}', (0, 7, "X")),
        (b'{"x":[1],"t":"X","s":7,"y":"\\\\","op":0,"z":1,"d":{}}', (0, 7, "X")),
        (b'{"t":"X","s":7,"op":0,"d":1,"d":{}}', (0, 7, "X")),  # the first d is a number: walked
        # d itself is not walked: broken structure inside it goes unnoticed (documented).
        (b'{"t":"X","s":7,"op":0,"d":{[}}', (0, 7, "X")),
        (b'{"t":"X","s":7,"op":0,"d":["a]}', (0, 7, "X")),  # an unterminated string
        (b'{"t":"X","s":7,"op":0,"d":' + b"[" * 1000 + b"]}", (0, 7, "X")),  # deeper than MAX_DEPTH
        (b'{"t":"X","s":7,"op":0,"d":{},"x":[1,{]}}', (0, 7, "X")),  # members after d are not read either
        (b'{"t":"X","s":7,"op":0,"d":{}}}', (0, 7, "X")),  # d's brackets are not counted: read as d = {}}
        (b'{"t":"X","s":7,"op":0,"d":{"a":{}}', (0, 7, "X")),  # ... nor a cut after a closer in d: d = {"a":{}
    ],
)
def test_early_stop(impl: types.SimpleNamespace, payload: bytes, expected: tuple[object, ...]) -> None:
    assert impl.scan.scan(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # The end check fails: the whole object is walked, with today's answers.
        (b'{"t":"X","s":7,"op":0,"d":{"a":1}', None),  # truncated: no final brace
        (b'{"t":"X","s":7,"op":0,"d":{"a":[1,2]', None),
        (b'{"t":"X","s":7,"op":0,"d":{', None),
        (b'{"t":"X","s":7,"op":0,"d":[', None),
        (b'{"t":"X","s":7,"op":0,"d":{}', None),  # the only } closes d, nothing closes the object
        (b'{"t":"X","s":7,"op":0,"d":[}', None),
        (b'{"t":"X","s":7,"op":0,"d":{"a":1]}', None),  # d opens with { and the last closer is ]
        (b'{"t":"X","s":7,"op":0,"d":["a"}}', None),  # d opens with [ and the last closer is }
        (b'{"t":"X","s":7,"op":0,"d":{}} x', None),  # trailing garbage
        (b'{"t":"X","s":7,"op":0,"d":{}}\x00', None),
        (b'{"t":"X","s":7,"op":0,"d":{}},', None),
        (b'{"t":"X","s":7,"op":0,"d":{"a":1}]', None),  # the last byte is not }
        (b'{"t":"X","s":7,"op":0,"d":{"a":[]}', None),  # missing final brace
        (b'{"t":"X","s":7,"op":0,"d":{"a":"}"}', None),
        # The end check fails, and the full walk reads a valid payload.
        (b'{"t":"X","s":7,"op":0,"d":{"a":1},"x":1}', (0, 7, "X")),
        (b'{"t":"X","s":7,"op":0,"d":{},"x":[1]}', (0, 7, "X")),
        (b'{"t":"X","s":7,"op":0,"d":[],"x":"]"}', (0, 7, "X")),
        # ... or finds what it finds today: a repeated t after a d that does not close last.
        (b'{"t":"A","s":1,"op":0,"d":{},"t":"B"}', None),
        (b'{"t":"A","s":1,"op":0,"d":{},"t":"B","x":[]}', None),
        (b'{"t":"A","s":1,"op":0,"d":[],"s":2,"x":{}}', None),
        (b'{"t":"A","s":1,"op":0,"d":{[},"x":1}', None),
    ],
)
def test_failed_end_check_walks_fully(impl: types.SimpleNamespace, payload: bytes, expected: object) -> None:
    assert impl.scan.scan(payload) == expected


@pytest.mark.parametrize(
    ("payload", "expected", "orjson_t"),
    [
        (b'{"t":"A","s":1,"op":0,"d":{},"t":"B","x":{}}', (0, 1, "A"), "B"),
        (b'{"t":"A","s":1,"op":0,"d":[],"op":1,"s":2,"t":"B","x":[]}', (0, 1, "A"), "B"),
        (b'{"op":0,"s":null,"t":null,"d":{"x":1},"t":"B","op":"z","x":{}}', (0, None, None), "B"),
    ],
)
def test_repeated_keys_after_a_last_d_give_the_first_value(
    impl: types.SimpleNamespace, payload: bytes, expected: tuple[object, ...], orjson_t: str
) -> None:
    # Documented: members after a d that closes last are not read; orjson keeps the last value.
    assert impl.scan.scan(payload) == expected
    assert orjson.loads(payload)["t"] == orjson_t


@pytest.mark.parametrize(
    "payload",
    [
        # d before op, s or t has been read: walked, so the repeated t is found.
        b'{"d":{},"t":"A","s":1,"op":0,"t":"B","x":{}}',
        b'{"t":"A","s":1,"d":{},"op":0,"t":"B","x":{}}',
        b'{"t":"A","op":0,"d":{},"t":"B","x":{}}',  # s never read
        b'{"s":1,"op":0,"d":{},"t":"A","t":"B","x":{}}',
        # not exactly a d holding a container
        b'{"t":"A","s":1,"op":0,"d":"{}","t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"d":0,"t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"d":null,"t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"\\u0064":{},"t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"dd":{},"t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"D":{},"t":"B","x":{}}',
        b'{"t":"A","s":1,"op":0,"":{},"t":"B","x":{}}',
        # an invalid value before d still gives None
        b'{"t":"A","s":1,"op":01,"d":{}}',
        b'{"t":"A","s":-1,"op":0,"d":{}}',
        b'{"t":1,"s":1,"op":0,"d":{}}',
        b'{"t":"A","s":1,"op":0,"op":0,"d":{}}',
        b'{"t":"A","s":1,"x":{]},"op":0,"d":{}}',
        b'{"t":"\\u0041","s":1,"op":0,"d":{}}',
        b'[{"t":"A","s":1,"op":0,"d":{}}]',
    ],
)
def test_other_orders_walk_fully(impl: types.SimpleNamespace, payload: bytes) -> None:
    assert impl.scan.scan(payload) is None


def test_compiled_and_pure_agree_on_early_stops(compiled: types.SimpleNamespace, pure: types.SimpleNamespace) -> None:
    assert agree(compiled, pure, large_payload(20)) == (0, 7, "GUILD_MEMBERS_CHUNK")
    samples = [
        MESSAGE_CREATE,
        b'{"t":"A","s":1,"op":0,"d":{},"t":"B","x":{}}',
        b'{"op":0,"s":null,"t":null,"d":[{"a":"]"}]}',
        b'{"t":"X","s":7,"op":0,"x":{"a":1},"d":{[}}',
    ]
    for sample in samples:
        for payload in (sample, sample + b" \n", sample[:-1] + b" \t}", sample[:-2] + b"\r" + sample[-2:]):
            assert agree(compiled, pure, payload) is not None
            for size in range(len(payload)):
                agree(compiled, pure, payload[:size])
                agree(compiled, pure, payload[:size] + payload[-2:])


# --------------------------------------------------------------------------------------------------
# Properties

JSON_TEXT: typing.Final = st.text(st.characters(exclude_categories=("Cs",)), max_size=12) | st.sampled_from(
    ['"', "\\", "{", "}", "[", "]", '"t":"X"', '"op":1', "\\\\", '\\"', "\u2603", "\U0001f600", "\x00", "\x7f"]
)
JSON_SCALARS: typing.Final = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63) + 1, 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | JSON_TEXT
)
JSON_VALUES: typing.Final = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(JSON_TEXT, children, max_size=4),
    max_leaves=12,
)
EVENT_NAMES: typing.Final = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters='"\\'))

SERIALISERS: typing.Final[dict[str, typing.Callable[[typing.Any], bytes]]] = {
    "orjson": orjson.dumps,
    "orjson-indent": lambda obj: orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE),
    "json": lambda obj: json.dumps(obj).encode(),
    "json-compact": lambda obj: json.dumps(obj, separators=(",", ":")).encode(),
    "json-unicode": lambda obj: json.dumps(obj, ensure_ascii=False).encode(),
    "json-indent-tab": lambda obj: json.dumps(obj, indent="\t", ensure_ascii=False).encode(),
    "json-wide": lambda obj: (" \r\n" + json.dumps(obj, indent=3, separators=(" , ", " : ")) + "\n\t ").encode(),
}


def early_stop_at(members: typing.Sequence[tuple[str, typing.Any]]) -> int | None:
    """Where the scanner stops early on these (serialised) members: the index of a d holding an object
    or array once op, s and t have been read, when the last member's value closes like d's; else None.
    """
    seen: set[str] = set()
    for index, (key, value) in enumerate(members):
        if seen >= {"op", "s", "t"} and key == "d" and isinstance(value, (dict, list)):
            if type(members[-1][1]) is type(value):
                return index
        elif key in seen and key in {"op", "s", "t"}:
            return None  # the walk gives None here
        seen.add(key)
    return None


CONTAINERS: typing.Final = st.lists(JSON_VALUES, max_size=3) | st.dictionaries(JSON_TEXT, JSON_VALUES, max_size=3)


@st.composite
def gateway_documents(draw: st.DrawFn) -> tuple[dict[str, typing.Any], tuple[int, int | None, str | None]]:
    """A JSON object with op (and maybe s, t, d) at random positions among arbitrary other members."""
    others = draw(st.dictionaries(JSON_TEXT.filter(lambda k: k not in {"op", "s", "t", "d"}), JSON_VALUES, max_size=5))
    op = draw(st.integers(0, 10**18 - 1))
    s = draw(st.none() | st.integers(0, 10**18 - 1))
    t = draw(st.none() | EVENT_NAMES | st.sampled_from(["MESSAGE_CREATE", "GUILD_CREATE", "READY"]))
    items = list(others.items())
    ours: list[tuple[str, typing.Any]] = [("op", op)]
    if s is not None or draw(st.booleans()):
        ours.append(("s", s))
    if t is not None or draw(st.booleans()):
        ours.append(("t", t))
    if draw(st.booleans()):
        ours.append(("d", draw(CONTAINERS | JSON_VALUES)))
    for item in ours:
        items.insert(draw(st.integers(0, len(items)) | st.just(len(items))), item)
    return dict(items), (op, s, t)


@ST_HEALTH
@given(gateway_documents(), st.sampled_from(sorted(SERIALISERS)))
@example(({"d": {"t": "X", "op": 9}, "op": 0, "s": None, "t": "MESSAGE_CREATE"}, (0, None, "MESSAGE_CREATE")), "json")
@example(({"op": 0, "s": 1, "t": "X", "d": [], "\u00e9": ["\\"]}, (0, 1, "X")), "json")  # not read: \u00e9 after d
@example(({"op": 0, "s": 1, "t": "X", "d": [], "\u00e9": {}}, (0, 1, "X")), "json")  # read: d and {} close unlike
def test_serialised_documents_give_their_values(
    impl: types.SimpleNamespace,
    case: tuple[dict[str, typing.Any], tuple[int, int | None, str | None]],
    serialiser: str,
) -> None:
    document, expected = case
    dumps = SERIALISERS[serialiser]
    payload = dumps(document)
    result = impl.scan.scan(payload)
    members = list(document.items())
    read = members[: early_stop_at(members)]  # members after an early stop are not read
    if any(b"\\" in dumps({key: 0}) for key, _ in read):
        # A top-level key came out escaped (e.g. "\u00e9" or "\""): it could have been "op".
        assert result is None
    else:
        assert result == expected


@ST_HEALTH
@given(JSON_VALUES | st.dictionaries(st.sampled_from(["op", "s", "t", "d", "x"]) | JSON_TEXT, JSON_VALUES))
def test_valid_json_is_never_misread(
    compiled: types.SimpleNamespace, pure: types.SimpleNamespace, document: typing.Any
) -> None:
    for dumps in (SERIALISERS["orjson"], SERIALISERS["json-wide"]):
        payload = dumps(document)
        result = agree(compiled, pure, payload)
        if result is not None:
            assert result == expected_from(orjson.loads(payload))


@st.composite
def repeated_key_payloads(
    draw: st.DrawFn,
) -> tuple[bytes, list[tuple[str, typing.Any]], tuple[int, int | None, str | None]]:
    """Members serialised one by one, so a key may repeat: others, then op, s and t (valid, any
    order), then d, then members whose keys are often op, s, t or d again.
    """
    others = st.lists(st.tuples(JSON_TEXT.filter(lambda k: k not in {"op", "s", "t"}), JSON_VALUES), max_size=3)
    valid = {
        "op": st.integers(0, 10**18 - 1),
        "s": st.none() | st.integers(0, 10**18 - 1),
        "t": st.none() | EVENT_NAMES,
    }
    ours = [(key, draw(valid[key])) for key in draw(st.permutations(["op", "s", "t"]))]
    again = st.lists(st.tuples(st.sampled_from(["op", "s", "t", "d", "x"]) | JSON_TEXT, JSON_VALUES), max_size=4)
    members = draw(others) + ours + [("d", draw(CONTAINERS | JSON_VALUES))] + draw(again)
    first = dict(ours)
    if draw(st.booleans()):
        payload = b"{" + b",".join(orjson.dumps(key) + b":" + orjson.dumps(value) for key, value in members) + b"}"
    else:
        wide = (orjson.dumps(key) + b" : " + orjson.dumps(value, option=orjson.OPT_INDENT_2) for key, value in members)
        payload = b" \n{ " + b" ,\n\t".join(wide) + b"\r\n} "
    return payload, members, (first["op"], first["s"], first["t"])


@ST_HEALTH
@given(repeated_key_payloads())
def test_repeated_keys_are_read_as_documented(
    compiled: types.SimpleNamespace,
    pure: types.SimpleNamespace,
    case: tuple[bytes, list[tuple[str, typing.Any]], tuple[int, int | None, str | None]],
) -> None:
    payload, members, first = case
    result = agree(compiled, pure, payload)
    stop = early_stop_at(members)
    if stop is not None and not any(b"\\" in orjson.dumps(key) for key, _ in members[:stop]):
        assert result == first  # the documented case: the first values, whatever follows d
    elif result is not None:  # otherwise a repeated op, s or t gives None: never misread
        assert result == expected_from(orjson.loads(payload))


REAL_LOOKING: typing.Final = [
    MESSAGE_CREATE,
    b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\\"gateway-prd\\",{\\"micros\\":0}]"]}}',
    b'{"op":11,"d":null,"s":null,"t":null}',
    b'{"d":{"a":[1,2,{"b":"\\\\\\""}],"c":"\xe2\x98\x83"},"t":"X","s":1,"op":0}',
    b'{"t":"T","s":null,"op":0,"d":[[[[{"x":[]}]]]]}',
]


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    """A real-looking payload with a few bytes flipped, inserted, deleted, or the end cut off."""
    payload = bytearray(draw(st.sampled_from(REAL_LOOKING)))
    interesting = st.sampled_from(list(b'"\\{}[],: \t\n0129-+.enultrsfaop\x00\x7f\xff'))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "replace", "insert", "delete", "truncate"]))
        position = draw(st.integers(0, max(len(payload) - 1, 0)))
        if kind == "flip" and payload:
            payload[position] ^= 1 << draw(st.integers(0, 7))
        elif kind == "replace" and payload:
            payload[position] = draw(interesting)
        elif kind == "insert":
            payload.insert(position, draw(interesting))
        elif kind == "delete" and payload:
            del payload[position]
        elif kind == "truncate":
            del payload[position:]
    return bytes(payload)


@ST_HEALTH
@given(mutated_payloads())
def test_mutated_payloads_agree(compiled: types.SimpleNamespace, pure: types.SimpleNamespace, payload: bytes) -> None:
    result = agree(compiled, pure, payload)
    if result is not None:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return  # e.g. a flipped byte inside d, which is skipped, not validated
        assert result == expected_from(document)


@ST_HEALTH
@given(
    st.binary(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                b'"',
                b"\\",
                b"{",
                b"}",
                b"[",
                b"]",
                b",",
                b":",
                b" ",
                b"0",
                b"1",
                b'"op"',
                b'"s"',
                b'"t"',
                b"null",
                b'"X"',
                b"\x00",
                b"e",
                b"-",
            ]
        ),
        max_size=40,
    ).map(b"".join)
    | st.lists(
        st.sampled_from([b'{"op":0,"d":', b"{", b"[", b"}", b"]", b'"', b'\\"', b"x", b",", b'"a":']), max_size=30
    ).map(b"".join)
)
def test_random_bytes_agree(compiled: types.SimpleNamespace, pure: types.SimpleNamespace, payload: bytes) -> None:
    agree(compiled, pure, payload)
    agree(compiled, pure, b'{"op":0,"d":' + payload + b"}")


def test_seeded_random_structures_agree(compiled: types.SimpleNamespace, pure: types.SimpleNamespace) -> None:
    # Cheap wide coverage next to hypothesis: bracket soups with strings, escapes and top-level members.
    rng = random.Random(20240501)
    pieces = [b"{", b"}", b"[", b"]", b'"', b'\\"', b"\\\\", b'"x"', b',"op":1', b',"s":2', b',"t":"Y"', b":", b","]
    for _ in range(3000):
        body = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 16)))
        for payload in (b'{"op":0,"d":' + body + b"}", b'{"t":"T","d":[' + body + b'],"op":3}', body):
            result = agree(compiled, pure, payload)
            if result is not None:
                try:
                    assert result == expected_from(orjson.loads(payload))
                except orjson.JSONDecodeError:
                    pass
