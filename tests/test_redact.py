"""Redaction against hostile payloads (issue 24, "Redaction"): one payload per leak, searched for the originals."""

from __future__ import annotations

import datetime
import re
import typing

import hikari
import orjson
import pytest

from hikari_shard import redact

_KEY: typing.Final = b"k" * 32  # a fixed key: the assertions about prefixes are deterministic
_GUILD: typing.Final = "1000000000000000001"
_CHANNEL: typing.Final = "1100000000000000002"
_USER: typing.Final = "1200000000000000003"
_MESSAGE: typing.Final = "1235500000000000004"


def _redacted(name: str, data: typing.Any) -> tuple[bytes, typing.Any]:
    line = redact.Redactor(key=_KEY).line(orjson.dumps({"op": 0, "t": name, "s": 5, "d": data}))
    return line, orjson.loads(line)["d"]


def _member(**extra: typing.Any) -> dict[str, typing.Any]:
    user = {"id": _USER, "username": "alice", "global_name": "Alice", "avatar": None, **extra}
    return {"user": user, "roles": [], "joined_at": "2021-03-04T05:06:07.987000+00:00", "permissions": "8"}


def _interaction(options: list[typing.Any], **extra: typing.Any) -> dict[str, typing.Any]:
    return {
        "id": "1300000000000000005",
        "application_id": "1300000000000000006",
        "type": 2,
        "token": "interaction-token-value",
        "version": 1,
        "guild_id": _GUILD,
        "channel_id": _CHANNEL,
        "member": _member(),
        "locale": "en-US",
        "data": {"id": "1300000000000000007", "name": "call", "type": 1, "options": options},
        **extra,
    }


def test_user_supplied_numbers_are_replaced() -> None:
    options = [
        {"name": "phone", "type": 4, "value": 4915112345678},
        {"name": "amount", "type": 10, "value": 3.14159265},
        {"name": "group", "type": 1, "options": [{"name": "pin", "type": 4, "value": -73021}]},
        {"name": "typed", "type": 4, "value": "49151", "focused": True},  # autocomplete: what was typed so far
    ]
    line, data = _redacted("INTERACTION_CREATE", _interaction(options))
    for original in (b"4915112345678", b"3.14159265", b"73021", b"49151"):
        assert original not in line
    values = [option["value"] for option in data["data"]["options"][:2]]
    assert [len(str(value)) for value in values] == [len("4915112345678"), len("3.14159265")]
    assert type(values[0]) is int
    assert type(values[1]) is float
    inner = data["data"]["options"][2]["options"][0]["value"]
    assert inner < 0
    assert len(str(inner)) == len("-73021")

    line, data = _redacted("MESSAGE_CREATE", {"id": _MESSAGE, "channel_id": _CHANNEL, "nonce": 987654321987})
    assert b"987654321987" not in line
    assert len(str(data["nonce"])) == len("987654321987")


def test_kept_fields_are_kept_only_at_their_place() -> None:
    hostile = _interaction(
        [{"name": "note", "type": 3, "value": "x", "platform": "Alice's PS5"}],
        member=_member(features=["alice-secret-feature"], status="alice is at the dentist"),
        message={
            "id": _MESSAGE,
            "channel_id": _CHANNEL,
            "content": "hi",
            "embeds": [{"type": "rich", "platform": "Alice's PS5", "locale": "Alice's own words"}],
        },
    )
    line, data = _redacted("INTERACTION_CREATE", hostile)
    for original in (b"Alice's PS5", b"alice-secret-feature", b"alice is at the dentist", b"Alice's own words"):
        assert original not in line
    assert data["locale"] == "en-US"  # the interaction's own locale is kept
    assert data["member"]["permissions"] == "8"
    assert data["message"]["embeds"][0]["type"] == "rich"

    # At their documented place they are kept.
    presence = {
        "user": {"id": _USER},
        "guild_id": _GUILD,
        "status": "online",
        "client_status": {"desktop": "online", "mobile": "idle"},
        "activities": [{"name": "Some game", "type": 0, "platform": "ps5", "created_at": 1_700_000_000_000}],
    }
    _, data = _redacted("PRESENCE_UPDATE", presence)
    assert data["status"] == "online"
    assert data["client_status"] == {"desktop": "online", "mobile": "idle"}
    assert data["activities"][0]["platform"] == "ps5"
    assert data["activities"][0]["name"] != "Some game"
    _, data = _redacted("GUILD_UPDATE", {"id": _GUILD, "name": "Guild", "features": ["COMMUNITY", "NEWS"]})
    assert data["features"] == ["COMMUNITY", "NEWS"]


def test_object_keys_that_are_not_snowflakes_or_field_names_are_replaced() -> None:
    hostile = _interaction([])
    hostile["data"]["resolved"] = {
        "users": {_USER: {"id": _USER, "username": "alice"}, "alice@example.com": {"id": "1"}},
        "roles": {"secret-project-falcon": {"id": "2", "name": "x", "permissions": "0"}},
    }
    hostile["alice's diary entry"] = "x"
    line, data = _redacted("INTERACTION_CREATE", hostile)
    for original in (b"alice@example.com", b"secret-project-falcon", b"alice's diary entry", _USER.encode()):
        assert original not in line
    resolved = data["data"]["resolved"]
    assert len(resolved["users"]) == 2
    assert all(len(key) in {len(_USER), len("alice@example.com")} for key in resolved["users"])
    assert list(data)[: len(hostile) - 1] == [key for key in hostile if key != "alice's diary entry"]
    assert len(list(data)[-1]) == len("alice's diary entry")


def test_every_digit_of_a_long_digit_string_is_replaced() -> None:
    card = "4111111111111111"
    ids = [_GUILD, _CHANNEL, _USER, _MESSAGE, "80351110224678912", "123456789012345678901"]
    hostile = _interaction(
        [{"name": "card", "type": 3, "value": card}, {"name": "who", "type": 6, "value": _USER}],
        guild_id=ids[0],
        channel_id=ids[1],
    )
    hostile["data"]["custom_thing"] = card
    hostile["data"]["other"] = ids[4:]
    hostile["data"]["target_id"] = ids[3]
    line, data = _redacted("INTERACTION_CREATE", hostile)
    digits = {run for value in (card, *ids) for run in _runs(value, 6)}
    found = {run for run in digits if run.encode() in line}
    assert not found, f"digit runs of the originals survive: {sorted(found)}"
    redactor = redact.Redactor(key=_KEY)
    for value in (card, *ids):
        fake = redactor.snowflake(value)
        assert len(fake) == len(value)
        assert fake[:3] != value[:3]
        assert redactor.snowflake(value) == fake
    assert data["data"]["options"][1]["value"] == data["member"]["user"]["id"]  # a USER option: the same fake id
    assert not re.fullmatch(r"[0-9]+", data["data"]["options"][0]["value"])  # a STRING option is text


def _runs(value: str, width: int) -> set[str]:
    return {value[start : start + width] for start in range(len(value) - width + 1)}


def test_timestamps_are_shifted_with_the_ids() -> None:
    real_time = "2024-05-01T12:34:56.789000+00:00"
    real_id = str(int(hikari.Snowflake.from_datetime(datetime.datetime.fromisoformat(real_time))) | 0x1234)
    message = {
        "id": real_id,
        "channel_id": _CHANNEL,
        "content": "2024-05-01T12:34:56Z",  # text that looks like a timestamp stays text
        "timestamp": real_time,
        "edited_timestamp": "2024-05-01T12:35:00Z",
        "author": {"id": _USER, "username": "alice"},
    }
    redactor = redact.Redactor(key=_KEY)
    line = redactor.line(orjson.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": 1, "d": message}))
    data = orjson.loads(line)["d"]
    assert real_time.encode() not in line
    assert b"2024-05-01T12:3" not in line
    assert b"2024-05-01" not in line
    assert len(data["timestamp"]) == len(real_time)
    assert len(data["edited_timestamp"]) == len(message["edited_timestamp"])
    shifted = datetime.datetime.fromisoformat(data["timestamp"])
    original = datetime.datetime.fromisoformat(real_time)
    offset = shifted - original
    assert offset >= datetime.timedelta(days=180)
    assert offset.total_seconds() * 1000 == redactor.shift_ms
    # The same offset for every time of the recording, and the fake id was created at the shifted time.
    edited = datetime.datetime.fromisoformat(data["edited_timestamp"].replace("Z", "+00:00"))
    assert edited - datetime.datetime.fromisoformat("2024-05-01T12:35:00+00:00") == offset
    assert hikari.Snowflake(data["id"]).created_at == shifted
    # From the written timestamp, the real id's top 42 bits cannot be had without the secret offset.
    assert int(hikari.Snowflake.from_datetime(shifted)) >> 22 != int(real_id) >> 22
    # Typing events and activities carry numeric times: shifted by the same offset.
    typing_line = redactor.line(
        orjson.dumps({"op": 0, "t": "TYPING_START", "s": 2, "d": {"channel_id": _CHANNEL, "timestamp": 1714566896}})
    )
    assert orjson.loads(typing_line)["d"]["timestamp"] == 1714566896 + redactor.shift_ms // 1000


@pytest.mark.parametrize("seed", range(5))
def test_the_offset_is_per_recording(seed: int) -> None:
    assert redact.Redactor(key=bytes([seed]) * 32).shift_ms != redact.Redactor(key=bytes([seed + 1]) * 32).shift_ms
