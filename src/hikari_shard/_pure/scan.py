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
* Early stop (Discord sends ``d`` last): once ``op``, ``s`` and ``t`` have all been read, a
  following member whose key is exactly ``"d"`` and whose value opens with ``{`` or ``[`` is not
  walked when the payload ends, but for whitespace, with the matching closer (``}`` or ``]``) after
  that bracket and then the top-level ``}``; ``(op, s, t)`` is returned as read so far.  When that
  end check fails the walk goes on as above (a truncated payload still gives ``None``).

What is not checked
-------------------
The JSON grammar *inside* skipped values is not validated: ``{"op":0,"d":{"a":tru}}`` and
``{"op":0,"d":[1 2]}`` give ``(0, None, None)`` although they are not JSON, and so does a string
with a raw control character or invalid UTF-8.  Such a payload is not Discord's, and the consumer
that decodes ``d`` rejects it anyway.  After an early stop, neither the structure of ``d`` (its
brackets, strings and depth) nor the members after it are read: ``{"t":"A","s":1,"op":0,"d":{},
"t":"B","x":{}}`` gives ``(0, 1, "A")``, the first ``t``, where orjson keeps the last (RFC 8259
section 4 leaves repeated names to the implementation; Discord never repeats a key), and a
payload cut just after a closer inside ``d`` (``{"op":0,"s":1,"t":null,"d":{"a":{}}``) or with
one ``}`` too many is read as if ``d`` held those brackets.

Speed
-----
Discord's order (``op``, ``s``, ``t`` as the first three members, then ``d``) is read by one regular
expression on the head of the payload plus the end check, without touching ``d``.  Otherwise the
common case (one nested value, ``d``) never loops over bytes in Python: two ``bytes.replace``
calls neutralise escaped quotes and backslashes, ``bytes.split`` on ``"`` separates strings from
structure, the structure's brackets are checked with ``bytes.replace`` passes, ``d`` is cut out,
and two regular expressions read the few top-level members.  Anything else (several nested
values, deep nesting, NUL bytes, stray backslashes, malformed input) goes to an exact walker that
hops between structural characters with ``re``; both give the same answers as the compiled twin.
Even so this is an order of magnitude slower than the compiled module and, on a typical 1 KB
dispatch, several times slower than ``orjson.loads`` of the whole payload, so a shard running
without the extensions may prefer decoding every payload fully over scanning it first.
"""

from __future__ import annotations

__all__ = ("MAX_DEPTH", "scan")

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
_T_VALUE: typing.Final = re.compile(rb"[ -\[\]-~]*+")  # printable ASCII but the backslash

# --- early stop --------------------------------------------------------------------------------
# Discord's order: op, s and t (any order, plain values), then d holding an object or an array.
_HEAD_MEMBER: typing.Final = rb'"(op|s|t)"[ \t\n\r]*+:[ \t\n\r]*+(null|"[ !#-\[\]-~]*+"|[0-9]++)[ \t\n\r]*+,[ \t\n\r]*+'
_HEAD: typing.Final = re.compile(rb"[ \t\n\r]*+\{[ \t\n\r]*+" + _HEAD_MEMBER * 3 + rb'"d"[ \t\n\r]*+:[ \t\n\r]*+[\[{]')
_D_OPENS: typing.Final = re.compile(rb'"d"[ \t\n\r]*+:[ \t\n\r]*+[\[{]')

# --- fast path ---------------------------------------------------------------------------------
_MARK: typing.Final = b"\x00"  # JSON never holds it raw; it stands for escape pairs and for the nested value
# Single bytes are looked up as ints: `0 in data` is a plain memchr, `b"\x00" in data` is not.
_MARK_BYTE: typing.Final = 0
_BACKSLASH: typing.Final = 0x5C
_NOT_BRACKETS: typing.Final = bytes(c for c in range(256) if c not in b"{}[]")
_BALANCE_PASSES: typing.Final = 32
# The top-level members once every string is emptied and the nested value is _MARK.
_MEMBER_SRC: typing.Final = rb'[ \t\n\r]*+""[ \t\n\r]*+:[ \t\n\r]*+(""|\x00|[A-Za-z0-9+\-.]++)[ \t\n\r]*+'
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
    head = _HEAD.match(payload)
    if head is not None:
        early = _scan_head(payload, head)
        if early is not None:
            return early
    # The fast path reads every member, but where it is sure the early stop gives the same answer:
    # a d that closes last is its one nested value and the last member, so it has read nothing more.
    result = _scan_fast(payload)
    if result is _UNSURE:
        return _scan_exact(payload)
    return typing.cast("tuple[int, int | None, str | None] | None", result)


def _skip_ws(buf: bytes, i: int) -> int:
    match = _WS_RUN.match(buf, i)
    return match.end() if match is not None else i


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


def _d_closes_last(buf: bytes, opener: int) -> bool:
    """Whether ``buf`` ends (but for whitespace) with the closer of the bracket at ``opener``, then ``}``."""
    stripped = buf.rstrip(_WS)  # the same object when nothing trails
    end = len(stripped) - 1
    if end <= opener or stripped[end] != 0x7D:  # }
        return False
    if stripped[end - 1] in _WS:
        end = len(stripped[:end].rstrip(_WS))
    end -= 1
    return end > opener and stripped[end] == _CLOSER[buf[opener]]


def _scan_head(payload: bytes, head: re.Match[bytes]) -> tuple[int, int | None, str | None] | None:
    """The early stop on Discord's order (:data:`_HEAD` matched); ``None`` hands over to the other paths."""
    key_1, raw_1, key_2, raw_2, key_3, raw_3 = head.groups()
    values = {key_1: raw_1, key_2: raw_2, key_3: raw_3}
    if len(values) != 3 or not _d_closes_last(payload, head.end() - 1):  # a repeated key: walk
        return None
    op_raw = values[_OP_KEY]
    s_raw = values[_S_KEY]
    t_raw = values[_T_KEY]
    if _UINT.fullmatch(op_raw) is None or (s_raw != _NULL and _UINT.fullmatch(s_raw) is None):
        return None
    if t_raw == _NULL:
        t = None
    elif t_raw[:1] == b'"':
        t = _decode_t(t_raw[1:-1])
    else:
        return None
    return int(op_raw), None if s_raw == _NULL else int(s_raw), t


def _scan_fast(payload: bytes) -> object:
    """Scan with a handful of C-level passes; ``_UNSURE`` hands over to :func:`_scan_exact`.

    1. Escaped backslashes and quotes become ``_MARK`` pairs, so each remaining ``"`` delimits a
       string and ``bytes.split`` separates the strings (odd parts) from the structure (even
       parts).  That is the walker's pairing as long as no mark or backslash is left outside them.
    2. Joining the structure with ``""`` gives a skeleton whose brackets are all structural; they
       must balance.
    3. The nested value (usually ``d``) is cut out of the skeleton, leaving the top-level members,
       read by regex; their strings are the first and last few of the odd parts.  A payload with
       several nested values is left to the walker.
    """
    start = _skip_ws(payload, 0)
    if payload[start : start + 1] != b"{":  # not an object
        return None
    if _MARK_BYTE in payload:
        return _UNSURE
    escapes = _BACKSLASH in payload
    text = payload.replace(b"\\\\", b"\x00\x00").replace(b'\\"', b"\x00\x00") if escapes else payload
    parts = text.split(b'"')
    if not len(parts) & 1:  # an odd number of quotes: a string is not terminated
        return _UNSURE
    skeleton = b'""'.join(parts[0::2]).strip(_WS)
    if escapes and (_MARK_BYTE in skeleton or _BACKSLASH in skeleton):
        return _UNSURE  # a backslash outside a string
    if skeleton[:1] != b"{" or skeleton[-1:] != b"}":
        return _UNSURE
    strings = parts[1::2]
    nested = skeleton[1:-1].translate(None, _NOT_BRACKETS)  # the brackets of nested values, in order
    if not nested:
        members = skeleton[1:-1]
    elif nested[:1] + nested[-1:] in {b"{}", b"[]"} and _balanced(nested[1:-1]):  # one nested value
        end = len(skeleton) - 1
        first = skeleton.find(nested[0], 1)  # the first bracket is an opener of the kind nested[0]
        last = skeleton.rfind(nested[-1], 0, end)
        before = skeleton[1:first]
        after = skeleton[last + 1 : end]
        members = before + _MARK + after
        # Its strings are the first and last ones of the payload.
        strings = strings[: before.count(b'"') // 2] + strings[len(strings) - after.count(b'"') // 2 :]
    else:
        return _UNSURE
    if _MEMBERS.fullmatch(members) is None:
        return _UNSURE

    op = s = t = None
    seen_op = seen_s = seen_t = False
    next_string = iter(strings).__next__
    for shape in _MEMBER.findall(members):
        key = next_string()
        string = next_string() if shape == b'""' else None
        if key == _OP_KEY:
            if seen_op or string is not None or _UINT.fullmatch(shape) is None:
                return None
            seen_op = True
            op = int(shape)
        elif key == _S_KEY:
            if seen_s or string is not None:
                return None
            seen_s = True
            if shape != _NULL:
                if _UINT.fullmatch(shape) is None:
                    return None
                s = int(shape)
        elif key == _T_KEY:
            if seen_t:
                return None
            seen_t = True
            if string is not None:
                t = _decode_t(string)  # rejects escapes (marks and backslashes)
                if t is None:
                    return None
            elif shape != _NULL:
                return None
        elif escapes and (_MARK_BYTE in key or _BACKSLASH in key):  # an escaped key could spell op, s or t
            return None
    if not seen_op:
        return None
    return op, s, t


def _balanced(brackets: bytes) -> bool:
    """Whether a string of brackets nests properly, within ``_BALANCE_PASSES`` passes.

    Each pass removes at least one level and at most two, so ``True`` also means at most
    ``2 * _BALANCE_PASSES`` levels, far below ``MAX_DEPTH``; anything deeper is left to the walker.
    """
    for _ in range(_BALANCE_PASSES):
        if not brackets:
            return True
        reduced = brackets.replace(b"{}", b"").replace(b"[]", b"")
        if len(reduced) == len(brackets):
            return False
        brackets = reduced
    return not brackets


def _scan_exact(buf: bytes) -> tuple[int, int | None, str | None] | None:
    """Walk the payload member by member; the reference the fast path and the compiled twin follow."""
    n = len(buf)
    i = _skip_ws(buf, 0)
    if i >= n or buf[i] != 0x7B:  # {
        return None
    i = _skip_ws(buf, i + 1)
    op = s = t = None
    seen_op = seen_s = seen_t = False
    while True:
        match = _KEY.match(buf, i)
        if match is None:
            return None
        key = match.group(1)
        i = _skip_ws(buf, match.end())
        if i >= n or buf[i] != 0x3A:  # :
            return None
        i = _skip_ws(buf, i + 1)
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

        i = _skip_ws(buf, i)
        if i >= n:
            return None
        if buf[i] == 0x2C:  # ,
            i = _skip_ws(buf, i + 1)
            if seen_op and seen_s and seen_t:  # early stop: a d that closes last is not walked
                match = _D_OPENS.match(buf, i)
                if match is not None and _d_closes_last(buf, match.end() - 1):
                    return typing.cast("int", op), s, t
            continue
        if buf[i] != 0x7D:  # }
            return None
        break

    if _skip_ws(buf, i + 1) != n or not seen_op:
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
