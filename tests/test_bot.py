"""One-line adoption: an unchanged ``hikari.GatewayBot`` runs on our shard against the emulator."""

from __future__ import annotations

import asyncio
import typing

import hikari
import pytest
from hikari.api import shard as shard_api

import hikari_shard
from helpers import TIMEOUT, TOKEN, until
from hikari_shard.shard import GatewayShardImpl
from hikari_shard.testing import GatewayEmulator

GUILD_ID = 1_200_000_000_000_000_000
CHANNEL_ID = GUILD_ID + 1
COMPRESSIONS = [
    shard_api.GatewayCompression.TRANSPORT_ZLIB_STREAM,
    shard_api.GatewayCompression.TRANSPORT_ZSTD_STREAM,
    shard_api.GatewayCompression.PAYLOAD_ZLIB_STREAM,
    None,
]


def message(emulator: GatewayEmulator, content: str, index: int) -> dict[str, typing.Any]:
    author = {"id": "900000000000000001", "username": "someone", "discriminator": "0", "avatar": None}
    return {
        "id": str(1_300_000_000_000_000_000 + index),
        "channel_id": str(CHANNEL_ID),
        "guild_id": str(GUILD_ID),
        "author": author,
        "member": {"roles": [], "joined_at": "2024-01-01T00:00:00+00:00", "deaf": False, "mute": False},
        "content": content,
        "timestamp": "2024-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }


async def run_bot(bot: hikari.GatewayBot, emulator: GatewayEmulator) -> list[str]:
    received: list[str] = []

    async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
        received.append(event.message.content or "")

    bot.event_manager.subscribe(hikari.GuildMessageCreateEvent, on_message)
    await asyncio.wait_for(bot.start(check_for_updates=False), TIMEOUT)
    try:
        shards = list(bot.shards.values())
        assert shards
        assert all(type(shard) is GatewayShardImpl for shard in shards)
        for index, text in enumerate(["héllo", 'quotes " and \\ backslashes', "日本語 ✨"]):
            shard_id = (GUILD_ID >> 22) % len(shards)  # Discord's rule: the guild's shard gets its events
            await emulator.dispatch("MESSAGE_CREATE", message(emulator, text, index), shard_id=shard_id)
        await until(lambda: len(received) == 3, what="three messages in the listener")
        # The cache saw the GUILD_CREATE our shard routed.
        assert bot.cache.get_guild(GUILD_ID) is not None
    finally:
        await asyncio.wait_for(bot.close(), TIMEOUT)
    return received


@pytest.mark.parametrize("compression", COMPRESSIONS)
async def test_install_makes_an_unchanged_bot_use_our_shard(
    compression: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # hikari's GatewayBot never passes `compression`: the shard's default applies.
    defaults = dict(GatewayShardImpl.__init__.__kwdefaults__ or {})
    defaults["compression"] = compression
    monkeypatch.setattr(GatewayShardImpl.__init__, "__kwdefaults__", defaults)
    hikari_shard.install()
    try:
        async with GatewayEmulator(token=TOKEN, guild_ids=[GUILD_ID]) as emulator:
            bot = hikari.GatewayBot(TOKEN, rest_url=emulator.rest_url, banner=None, intents=hikari.Intents.ALL)
            received = await run_bot(bot, emulator)
            assert emulator.connections[0].compression == (
                {
                    "transport_zlib_stream": "zlib-stream",
                    "transport_zstd_stream": "zstd-stream",
                    "payload_zlib_stream": "payload",
                }.get(compression or "")
            )
    finally:
        hikari_shard.uninstall()
    assert received == ["héllo", 'quotes " and \\ backslashes', "日本語 ✨"]


async def test_our_gateway_bot_needs_no_global_state() -> None:
    assert not hikari_shard.installed()
    async with GatewayEmulator(token=TOKEN, guild_ids=[GUILD_ID], shard_count=2, max_concurrency=2) as emulator:
        bot = hikari_shard.GatewayBot(TOKEN, rest_url=emulator.rest_url, banner=None, intents=hikari.Intents.ALL)
        received = await run_bot(bot, emulator)
        assert len(emulator.connections) == 2
    assert sorted(received) == sorted(["héllo", 'quotes " and \\ backslashes', "日本語 ✨"])
    assert not hikari_shard.installed()
