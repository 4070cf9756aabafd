"""Test helpers for bots and shards: a local Discord gateway emulator and realistic traffic.

:class:`GatewayEmulator` serves Discord's gateway v10 (and ``GET /gateway/bot``) on ``127.0.0.1``, so a
shard or a whole ``hikari.GatewayBot`` can be tested against a real websocket peer, with fault injection.
:mod:`hikari_shard.testing.corpus` generates deterministic, realistic payloads to feed it, e.g.
``await emulator.dispatch_many(dispatch_stream(random.Random(7), count=10_000, ...))``.

Names are imported lazily, so ``python -m hikari_shard.testing.emulator`` runs without importing the
module twice, and importing this package stays cheap.
"""

from __future__ import annotations

__all__ = (
    "DEFAULT_RESUME_URL",
    "DEFAULT_SESSION_ID",
    "DEFAULT_USER_ID",
    "DISPATCH_MIX",
    "REDACTED",
    "Compression",
    "Corpus",
    "EmulatedConnection",
    "EmulatedSession",
    "GatewayEmulator",
    "GuildLayout",
    "build_corpus",
    "dispatch_stream",
    "encode_frame",
    "guild_create_payload",
    "large_guild_create",
    "make_bot_token",
    "ready_payload",
    "user_id_from_token",
)

import importlib
import typing

if typing.TYPE_CHECKING:
    from hikari_shard.testing.corpus import DEFAULT_RESUME_URL as DEFAULT_RESUME_URL
    from hikari_shard.testing.corpus import DEFAULT_SESSION_ID as DEFAULT_SESSION_ID
    from hikari_shard.testing.corpus import DEFAULT_USER_ID as DEFAULT_USER_ID
    from hikari_shard.testing.corpus import DISPATCH_MIX as DISPATCH_MIX
    from hikari_shard.testing.corpus import Corpus as Corpus
    from hikari_shard.testing.corpus import GuildLayout as GuildLayout
    from hikari_shard.testing.corpus import build_corpus as build_corpus
    from hikari_shard.testing.corpus import dispatch_stream as dispatch_stream
    from hikari_shard.testing.corpus import guild_create_payload as guild_create_payload
    from hikari_shard.testing.corpus import large_guild_create as large_guild_create
    from hikari_shard.testing.corpus import ready_payload as ready_payload
    from hikari_shard.testing.emulator import REDACTED as REDACTED
    from hikari_shard.testing.emulator import Compression as Compression
    from hikari_shard.testing.emulator import EmulatedConnection as EmulatedConnection
    from hikari_shard.testing.emulator import EmulatedSession as EmulatedSession
    from hikari_shard.testing.emulator import GatewayEmulator as GatewayEmulator
    from hikari_shard.testing.emulator import encode_frame as encode_frame
    from hikari_shard.testing.emulator import make_bot_token as make_bot_token
    from hikari_shard.testing.emulator import user_id_from_token as user_id_from_token

_EMULATOR_NAMES: typing.Final = frozenset(
    (
        "REDACTED",
        "Compression",
        "EmulatedConnection",
        "EmulatedSession",
        "GatewayEmulator",
        "encode_frame",
        "make_bot_token",
        "user_id_from_token",
    )
)


def __getattr__(name: str) -> typing.Any:
    if name in __all__:
        module = "emulator" if name in _EMULATOR_NAMES else "corpus"
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)
