"""Read ``op``, ``s`` and ``t`` from a gateway payload without decoding it (pure-Python twin).

Same API and same result on every input as the compiled :mod:`hikari_shard._fastpath.scan`.

:func:`scan` walks the members of the top-level JSON object and returns ``(op, s, t)``, or ``None``
when it is unsure, in which case the caller decodes the payload fully (with orjson) and reads the
fields from the decoded dict.  The result routes the payload, so it is never wrong: every input
that is not plainly one of the accepted shapes gives ``None``.

What is checked
---------------
* Leading and trailing JSON whitespace (space, tab, LF, CR) is allowed; the document must be one
  object ``{...}`` with nothing but whitespace after its closing brace.
* Top-level keys are strings without backslash escapes (a key with an escape could spell ``op``).
* ``op`` is a JSON integer written with digits only (no sign, fraction, exponent or leading zero,
  at most 18 digits) and must be present; ``s`` is such an integer or ``null``; ``t`` is ``null``
  or a string of printable ASCII (0x20..0x7e) without escapes.  ``s`` and ``t`` default to
  ``None`` when missing.  Any of the three appearing twice gives ``None``.
* Values of the other keys are skipped structurally: strings honour backslash escapes, objects
  and arrays must nest with matching bracket types, at most 512 levels deep counting the top-level
  object, and a bare top-level value (number, ``true``...) is a run of ``A-Z a-z 0-9 + - .``.

What is not checked
-------------------
The JSON grammar *inside* skipped values is not validated: ``{"op":0,"d":{"a":tru}}`` and
``{"op":0,"d":[1 2]}`` give ``(0, None, None)`` although they are not JSON, and so does a string
with a raw control character or invalid UTF-8.  Such a payload is not Discord's, and the consumer
that decodes ``d`` rejects it anyway.

Speed
-----
The common case never loops over bytes in Python: one ``re.split`` pass blanks out every string
that holds a bracket or an escape, then repeated ``re.subn`` passes collapse innermost containers
until only the top-level members are left, and two regular expressions read those.  Deep nesting,
NUL bytes and ambiguous blanked keys fall back to an exact walker that hops between structural
characters with ``re``.  Even so this is several times slower than the compiled module and is not
faster than ``orjson.loads`` of the whole payload, so a shard running without the extensions may
prefer decoding every payload over scanning it.
"""

from __future__ import annotations

__all__ = ("MAX_DEPTH", "scan")

import itertools
import operator
import re
import typing

MAX_DEPTH: typing.Final = 512
"""Deepest nesting accepted, counting the top-level object as 1; deeper payloads give ``None``."""

_T_CACHE_SIZE: typing.Final = 256
"""At most this many distinct event names are cached (decoded once, then shared); then it restarts."""

_T_CACHE: typing.Final[dict[bytes, str]] = {}

_WS: typing.Final = b" \t\n\r"
_UNSURE: typing.Final = object()
_OP_KEY: typing.Final = b"op"
_S_KEY: typing.Final = b"s"
_T_KEY: typing.Final = b"t"
_NULL: typing.Final = b"null"

_UINT: typing.Final = re.compile(rb"0|[1-9][0-9]{0,17}")
_T_VALUE: typing.Final = re.compile(rb"[ -~]*")

# --- fast path ---------------------------------------------------------------------------------
# Three bytes that JSON never holds raw are used as markers; a payload that has them is left to the
# exact walker.
_ESCAPED: typing.Final = b"\x00"  # an escape pair (backslash and the byte after it)
_HIDDEN: typing.Final = b"\x01"  # a bracket inside a string
_CONTAINER: typing.Final = b"\x02"  # a collapsed object or array
_ESCAPE_PAIR: typing.Final = re.compile(rb"\\[\s\S]")
_HIDE_BRACKETS: typing.Final = bytes.maketrans(b"{}[]", _HIDDEN * 4)
_NOT_BRACKETS: typing.Final = bytes(c for c in range(256) if c not in b"{}[]")
_OPENS_TWO: typing.Final = bytes.maketrans(b"{}[]", b"\x02\x00\x02\x00")
_INNERMOST: typing.Final = re.compile(rb"\{[^\[\]{}]*+\}|\[[^\[\]{}]*+\]")
_BRACKET: typing.Final = re.compile(rb"[\[\]{}]")
_MEMBER_SRC: typing.Final = rb'[ \t\n\r]*+"([^"]*+)"[ \t\n\r]*+:[ \t\n\r]*+("[^"]*+"|\x02|[A-Za-z0-9+\-.]++)[ \t\n\r]*+'
_MEMBER: typing.Final = re.compile(_MEMBER_SRC)
_MEMBERS: typing.Final = re.compile(
    rb"(?:%s)(?:,(?:%s))*+" % (_MEMBER_SRC.replace(b"(", b"(?:"), _MEMBER_SRC.replace(b"(", b"(?:"))
)

# --- exact walker ------------------------------------------------------------------------------
_WS_RUN: typing.Final = re.compile(rb"[ \t\n\r]*+")
_KEY: typing.Final = re.compile(rb'"([^"\\]*+)"')
_SIMPLE_STRING: typing.Final = re.compile(rb'"([ !#-\[\]-~]*+)"')
_STRING: typing.Final = re.compile(rb'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"')
_SCALAR: typing.Final = re.compile(rb"[A-Za-z0-9+\-.]++")
_DIGITS: typing.Final = re.compile(rb"[0-9]++")
# Inside a container: the next complete string, bracket, or lone (unterminated) quote.
_STRUCTURAL: typing.Final = re.compile(rb'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+"|[\[\]{}"]')
_CLOSER: typing.Final = {ord("{"): ord("}"), ord("["): ord("]")}


def scan(payload: bytes | bytearray | memoryview) -> tuple[int, int | None, str | None] | None:
    """Read ``op``, ``s`` and ``t`` from the top level of a JSON gateway payload.

    Parameters
    ----------
    payload
        The raw payload: any bytes-like object (``bytes``, ``bytearray``, ``memoryview``).

    Returns
    -------
    tuple[int, int | None, str | None] | None
        ``(op, s, t)``, or ``None`` when the payload is not plainly of the accepted shape and must
        be decoded fully (see the module documentation).

    Raises
    ------
    TypeError
        If ``payload`` is not a bytes-like object.
    """
    if type(payload) is not bytes:
        payload = bytes(memoryview(payload))
    result = _scan_fast(payload)
    if result is _UNSURE:
        return _scan_exact(payload)
    return typing.cast("tuple[int, int | None, str | None] | None", result)


def _decode_t(raw: bytes) -> str | None:
    cached = _T_CACHE.get(raw)
    if cached is not None:
        return cached
    if _T_VALUE.fullmatch(raw) is None:
        return None
    value = raw.decode("ascii")
    if len(_T_CACHE) >= _T_CACHE_SIZE:  # a flood of odd names: start over rather than grow
        _T_CACHE.clear()
    _T_CACHE[raw] = value
    return value


def _scan_fast(payload: bytes) -> object:
    """Scan with a handful of C-level passes; ``_UNSURE`` hands over to :func:`_scan_exact`.

    1. Every escape pair becomes ``_ESCAPED``, so each remaining ``"`` delimits a string, and
       ``bytes.split`` separates strings (odd parts) from structure (even parts).  This pairing is
       the walker's as long as every escape pair lies inside a string and no backslash is left.
    2. Brackets inside strings become ``_HIDDEN``; the brackets left must balance.
    3. The nested values of the top-level object are collapsed to ``_CONTAINER`` (cut out directly
       in the usual case of a single one, ``d``), and the top-level members are read by regex.
    """
    if _ESCAPED in payload or _HIDDEN in payload or _CONTAINER in payload:
        return _UNSURE
    text = payload
    if b"\\" in text:
        text = _ESCAPE_PAIR.sub(_ESCAPED, text)
        if b"\\" in text:  # a lone backslash at the very end
            return _UNSURE
    parts = text.split(b'"')
    if not len(parts) & 1:  # an odd number of quotes: a string is not terminated
        return _UNSURE
    strings = b'"'.join(parts[1::2])
    if text is not payload and strings.count(_ESCAPED) != text.count(_ESCAPED):
        return _UNSURE  # a backslash outside a string
    if _BRACKET.search(strings) is not None:
        parts[1::2] = strings.translate(_HIDE_BRACKETS).split(b'"')
        text = b'"'.join(parts)

    text = text.strip(_WS)
    if text[:1] != b"{" or text[-1:] != b"}":
        return _UNSURE
    nested = text[1:-1].translate(None, _NOT_BRACKETS)  # the brackets of nested values, in order
    if not nested:
        members = text[1:-1]
    else:
        if len(nested) > 2 * (MAX_DEPTH - 1) and _nesting(nested) > MAX_DEPTH - 1:
            return None
        if nested[:1] + nested[-1:] in {b"{}", b"[]"} and _balanced(nested[1:-1]):
            # One nested value (usually d): cut it out between its first and last bracket.
            first = _BRACKET.search(text, 1).start()  # type: ignore[union-attr]
            last = max(text.rfind(b"}", 0, len(text) - 1), text.rfind(b"]", 0, len(text) - 1))
            members = text[1:first] + _CONTAINER + text[last + 1 : -1]
        elif _balanced(nested):
            members = text[1:-1]
            while _BRACKET.search(members) is not None:
                members = _INNERMOST.sub(_CONTAINER, members)
        else:
            return _UNSURE
    if _MEMBERS.fullmatch(members) is None:
        return _UNSURE

    op = s = t = None
    seen_op = seen_s = seen_t = False
    for key, value in _MEMBER.findall(members):
        if key == _OP_KEY:
            if seen_op or _UINT.fullmatch(value) is None:
                return None
            seen_op = True
            op = int(value)
        elif key == _S_KEY:
            if seen_s:
                return None
            seen_s = True
            if value != _NULL:
                if _UINT.fullmatch(value) is None:
                    return None
                s = int(value)
        elif key == _T_KEY:
            if seen_t:
                return None
            seen_t = True
            if value != _NULL:
                if value[:1] != b'"' or _ESCAPED in value:
                    return None
                if _HIDDEN in value:  # a bracket in the name: rare, let the walker read it
                    return _UNSURE
                t = _decode_t(value[1:-1])
                if t is None:
                    return None
        elif _ESCAPED in key:  # an escaped key could spell op, s or t
            return None
    if not seen_op:
        return None
    return op, s, t


def _balanced(brackets: bytes) -> bool:
    """Whether a string of brackets nests properly (each pass removes at least one level)."""
    while brackets:
        reduced = brackets.replace(b"{}", b"").replace(b"[]", b"")
        if len(reduced) == len(brackets):
            return False
        brackets = reduced
    return True


def _nesting(brackets: bytes) -> int:
    """The deepest nesting in a string of brackets (openers minus closers, at its highest)."""
    # Openers count 2 and closers 0, so after the i-th bracket the running sum minus i is the depth.
    return max(map(operator.sub, itertools.accumulate(brackets.translate(_OPENS_TWO)), itertools.count(1)))


def _scan_exact(buf: bytes) -> tuple[int, int | None, str | None] | None:
    """Walk the payload member by member; the reference the fast path and the compiled twin follow."""
    n = len(buf)
    i = _WS_RUN.match(buf).end()
    if i >= n or buf[i] != 0x7B:  # {
        return None
    i = _WS_RUN.match(buf, i + 1).end()
    op = s = t = None
    seen_op = seen_s = seen_t = False
    while True:
        match = _KEY.match(buf, i)
        if match is None:
            return None
        key = match.group(1)
        i = _WS_RUN.match(buf, match.end()).end()
        if i >= n or buf[i] != 0x3A:  # :
            return None
        i = _WS_RUN.match(buf, i + 1).end()
        if i >= n:
            return None

        if key == _OP_KEY:
            if seen_op:
                return None
            seen_op = True
            match = _DIGITS.match(buf, i)
            if match is None or _UINT.fullmatch(match.group()) is None:
                return None
            op = int(match.group())
            i = match.end()
        elif key == _S_KEY:
            if seen_s:
                return None
            seen_s = True
            if buf.startswith(_NULL, i):
                i += 4
            else:
                match = _DIGITS.match(buf, i)
                if match is None or _UINT.fullmatch(match.group()) is None:
                    return None
                s = int(match.group())
                i = match.end()
        elif key == _T_KEY:
            if seen_t:
                return None
            seen_t = True
            if buf.startswith(_NULL, i):
                i += 4
            else:
                match = _SIMPLE_STRING.match(buf, i)
                if match is None:
                    return None
                t = _decode_t(match.group(1))
                i = match.end()
        else:
            first = buf[i]
            if first == 0x22:  # "
                match = _STRING.match(buf, i)
                if match is None:
                    return None
                i = match.end()
            elif first in _CLOSER:
                end = _skip_container(buf, i)
                if end < 0:
                    return None
                i = end
            else:
                match = _SCALAR.match(buf, i)
                if match is None:
                    return None
                i = match.end()

        i = _WS_RUN.match(buf, i).end()
        if i >= n:
            return None
        if buf[i] == 0x2C:  # ,
            i = _WS_RUN.match(buf, i + 1).end()
            continue
        if buf[i] != 0x7D:  # }
            return None
        break

    if _WS_RUN.match(buf, i + 1).end() != n or not seen_op:
        return None
    return typing.cast("int", op), s, t


def _skip_container(buf: bytes, i: int) -> int:
    """Return the index just past the object or array opening at ``i``, or -1 if it is malformed."""
    expected = [_CLOSER[buf[i]]]
    search = _STRUCTURAL.search
    i += 1
    while expected:
        match = search(buf, i)
        if match is None:
            return -1
        i = match.end()
        char = buf[match.start()]
        if char == 0x22:  # a complete string, or a lone quote when it is unterminated
            if i - match.start() == 1:
                return -1
        elif char in _CLOSER:
            # The top-level object is level 1, this container level 2: len(expected) + 1 levels so far.
            if len(expected) + 2 > MAX_DEPTH:
                return -1
            expected.append(_CLOSER[char])
        elif expected.pop() != char:
            return -1
    return i
