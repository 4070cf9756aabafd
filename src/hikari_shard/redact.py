"""Redaction of recorded gateway traffic, so a recording can be shared and still benchmark the same.

A :class:`Redactor` rewrites the ``d`` of each dispatch:

- every snowflake (a string of 15 to 21 digits, as a value or as an object key) is replaced by a
  fake one with the same number of digits and the same first three (about a month of creation
  time), derived with a random per-recording key: the same id always maps to the same fake id in
  one recording, so the structure (who wrote what, in which guild and channel) and the cache's
  behaviour replay the same, but an id cannot be mapped back;
- every other string is free text (message content, usernames, global names, nicknames, avatar,
  banner and icon hashes, emails, interaction tokens, embed text, URLs, session ids, ...) and is
  replaced by a placeholder with the same length in UTF-8 bytes (each character by one of the same
  UTF-8 width: word-like ASCII for ASCII, accented letters, kana or emoji), the same text always by
  the same placeholder, so payload sizes and compression behave like the original;
- kept as they are: numbers, booleans, ``null``, key names and key order, ISO timestamps, and the
  strings of a few enumeration-like keys (:data:`KEPT_KEYS`: presence statuses, embed types,
  locales, guild features, permission bit sets, MIME types, ...), which hikari parses and which
  say nothing about a person.

``op``, ``t`` and ``s`` are kept.  The output holds no string of the input longer than the kept
ones, and no bot token (a token is a string, so it is replaced like any other).
"""

from __future__ import annotations

__all__ = ("KEPT_KEYS", "Redactor", "redact_file")

import hashlib
import hmac
import pathlib
import random
import re
import secrets
import typing

import orjson

if typing.TYPE_CHECKING:
    import os

KEPT_KEYS: typing.Final[frozenset[str]] = frozenset(
    (
        "status",
        "desktop",
        "mobile",
        "web",
        "platform",
        "type",
        "features",
        "locale",
        "preferred_locale",
        "guild_locale",
        "rtc_region",
        "geo_ordered_rtc_regions",
        "region",
        "session_type",
        "permissions",
        "app_permissions",
        "allow",
        "deny",
        "content_type",
        "burst_colors",
        "format",
    )
)
"""Keys whose string values are enumerations or bit sets, kept as they are."""

_SNOWFLAKE: typing.Final = re.compile(r"[0-9]{15,21}")
_TIMESTAMP: typing.Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{8,15}(?:Z|[+-][0-9]{2}:[0-9]{2})?")
_KEPT_PREFIX: typing.Final = 3
_FILLER_SIZE: typing.Final = 1 << 16
# Replacement characters for non-ASCII text, by UTF-8 width.
_WIDE: typing.Final[dict[int, str]] = {2: "éàüöñçåøßæ", 3: "あいうえおかきくけこ", 4: "😀😁😂😃😄😅😆😇😈😉"}


class Redactor:
    """Redact gateway payloads consistently (one instance per recording).

    Parameters
    ----------
    key
        The secret that derives fake ids; random by default (so a recording cannot be un-mapped).
    """

    __slots__ = ("_filler", "_ids", "_key", "_rng", "_taken", "_texts")

    def __init__(self, *, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._rng = random.Random(self._key)
        self._ids: dict[str, str] = {}
        self._taken: set[str] = set()
        self._texts: dict[str, str] = {}
        words = ["".join(self._rng.choices("etaoinshrdlucmfwypvbgk", k=self._rng.randint(2, 8))) for _ in range(400)]
        filler: list[str] = []
        size = 0
        while size < _FILLER_SIZE:
            word = self._rng.choice(words)
            filler.append(word)
            size += len(word) + 1
        self._filler = " ".join(filler)

    def snowflake(self, value: str) -> str:
        """Return the fake id of ``value`` (a string of digits), the same one every time."""
        fake = self._ids.get(value)
        if fake is not None:
            return fake
        width = len(value) - _KEPT_PREFIX
        prefix = value[:_KEPT_PREFIX]
        counter = 0
        while True:
            digest = hmac.new(self._key, f"{value}:{counter}".encode(), hashlib.sha256).digest()
            fake = prefix + str(int.from_bytes(digest, "big") % 10**width).zfill(width)
            if fake != value and fake not in self._taken and fake not in self._ids:
                break
            counter += 1
        self._ids[value] = fake
        self._taken.add(fake)
        return fake

    def text(self, value: str) -> str:
        """Return the placeholder of ``value``: the same UTF-8 length, the same one every time."""
        fake = self._texts.get(value)
        if fake is not None:
            return fake
        filler = self._filler
        if 2 * len(value) > len(filler):
            filler *= 2 * len(value) // len(filler) + 1
        start = self._rng.randrange(len(filler) - len(value))
        if value.isascii():
            fake = filler[start : start + len(value)]
        else:
            chars = []
            for offset, char in enumerate(value):
                width = len(char.encode("utf-8", "surrogatepass"))
                chars.append(filler[start + offset] if width == 1 else self._rng.choice(_WIDE[width]))
            fake = "".join(chars)
        if fake == value:  # an all-space string, or chance on a short one
            fake = "x" * len(fake.encode("utf-8", "surrogatepass"))
        self._texts[value] = fake
        return fake

    def _string(self, key: str | None, value: str) -> str:
        if key in KEPT_KEYS or not value:
            return value
        if _SNOWFLAKE.fullmatch(value):
            return self.snowflake(value)
        if _TIMESTAMP.fullmatch(value):
            return value
        return self.text(value)

    def value(self, value: typing.Any, key: str | None = None) -> typing.Any:
        """Redact any decoded JSON value; ``key`` is the object key it was found under, if any."""
        if type(value) is str:
            return self._string(key, value)
        if type(value) is dict:
            return {
                (self.snowflake(item_key) if _SNOWFLAKE.fullmatch(item_key) else item_key): self.value(item, item_key)
                for item_key, item in value.items()
            }
        if type(value) is list:
            return [self.value(item, key) for item in value]
        return value

    def payload(self, payload: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """Redact one gateway payload: its ``d`` only (``op``, ``t``, ``s`` and the key order are kept)."""
        return {key: (self.value(item) if key == "d" else item) for key, item in payload.items()}

    def line(self, raw: bytes) -> bytes:
        """Redact one JSON payload and return it as one line of JSON (no newline at the end)."""
        payload = orjson.loads(raw)
        if type(payload) is not dict:
            return orjson.dumps(self.value(payload))
        return orjson.dumps(self.payload(payload))


def redact_file(source: str | os.PathLike[str], target: str | os.PathLike[str], *, key: bytes | None = None) -> int:
    """Redact a JSON-lines recording (one gateway payload per line) into another file.

    Parameters
    ----------
    source
        The recording to read (not changed).
    target
        The redacted recording to write.
    key
        The secret that derives the fake ids (random by default).

    Returns
    -------
    int
        The number of payloads written.
    """
    redactor = Redactor(key=key)
    count = 0
    with pathlib.Path(source).open("rb") as reader, pathlib.Path(target).open("wb") as writer:
        for raw in reader:
            if raw.strip():
                writer.write(redactor.line(raw) + b"\n")
                count += 1
    return count
