# The corpus deliberately carries confusable and invisible unicode (Cyrillic, Greek, full-width, zero-width
# joiners): that is what real message text looks like, and what the decoders must survive.
# ruff: noqa: RUF001
"""Deterministic Discord gateway v10 traffic: READY, GUILD_CREATE and a realistic dispatch stream.

Everything here is drawn from a caller-supplied :class:`random.Random`, so a seed names a corpus
byte for byte: the gateway emulator replays it, the benchmarks measure against it and the tests
deserialise it with hikari's own factories.

Payloads follow Discord's documented gateway v10 objects and carry every field hikari 2.7's
``EntityFactoryImpl`` and ``EventFactoryImpl`` read. Ids are consistent: guild ids land on the
shard that receives them, channel ids belong to their guild, authors and reactors are members
(joins and leaves in the stream are tracked), reactions, edits and deletes point at messages sent
earlier in the stream, and member updates persist into later member objects.

Typical use::

    corpus = build_corpus(seed=7, dispatches=10_000)
    for name, payload in corpus.events():
        ...  # READY, every GUILD_CREATE, then the dispatch stream

Payloads are plain ``dict`` trees, ready for ``orjson.dumps``. Treat them as read-only.
"""

from __future__ import annotations

__all__: typing.Sequence[str] = (
    "DEFAULT_RESUME_URL",
    "DEFAULT_SESSION_ID",
    "DEFAULT_USER_ID",
    "DISPATCH_MIX",
    "Corpus",
    "GuildLayout",
    "build_corpus",
    "dispatch_stream",
    "guild_create_payload",
    "large_guild_create",
    "ready_payload",
)

import bisect
import collections
import dataclasses
import datetime
import itertools
import math
import random
import types
import typing

import orjson

if typing.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

JSONObject: typing.TypeAlias = dict[str, typing.Any]

DISPATCH_MIX: typing.Final[Mapping[str, float]] = types.MappingProxyType(
    {
        "PRESENCE_UPDATE": 0.42,
        "MESSAGE_CREATE": 0.20,
        "TYPING_START": 0.11,
        "GUILD_MEMBER_UPDATE": 0.06,
        "MESSAGE_REACTION_ADD": 0.05,
        "VOICE_STATE_UPDATE": 0.04,
        "MESSAGE_UPDATE": 0.035,
        "MESSAGE_REACTION_REMOVE": 0.025,
        "MESSAGE_DELETE": 0.02,
        "INTERACTION_CREATE": 0.014,
        "GUILD_MEMBER_ADD": 0.008,
        "GUILD_MEMBER_REMOVE": 0.006,
        "CHANNEL_UPDATE": 0.003,
        "THREAD_UPDATE": 0.003,
        "THREAD_CREATE": 0.002,
        "GUILD_ROLE_UPDATE": 0.002,
        "MESSAGE_DELETE_BULK": 0.001,
        "GUILD_MEMBERS_CHUNK": 0.001,
    }
)
"""Share of the dispatch stream per event name, as a large bot with the privileged intents sees it.

Sums to 1. :func:`dispatch_stream` meets it exactly within every block of 10 000 dispatches.
"""

DEFAULT_USER_ID: typing.Final[int] = 1_046_432_170_539_794_452
"""The bot's user (and application) id when none is given."""

DEFAULT_SESSION_ID: typing.Final[str] = "4f2d3c9b8a7e6d5c4b3a29180f1e2d3c"
"""The READY session id when none is given."""

DEFAULT_RESUME_URL: typing.Final[str] = "wss://gateway-us-east1-c.discord.gg"
"""The READY ``resume_gateway_url`` when none is given."""

_DISCORD_EPOCH_MS: typing.Final[int] = 1_420_070_400_000
_CORPUS_NOW_MS: typing.Final[int] = 1_735_732_800_000  # 2025-01-01T12:00:00Z: the stream's clock starts here.
_UNIX_EPOCH: typing.Final[datetime.datetime] = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MIX_BLOCK: typing.Final[int] = 10_000
_LARGE_THRESHOLD: typing.Final[int] = 250
_RECENT_MESSAGES: typing.Final[int] = 512

# Salts keep the per-id profile generators apart, so a user, a member and a channel with the same
# numeric id do not share their random draws.
_USER_SALT: typing.Final[int] = 0x5EED_0001
_MEMBER_SALT: typing.Final[int] = 0x5EED_0002
_CHANNEL_SALT: typing.Final[int] = 0x5EED_0003
_ROLE_SALT: typing.Final[int] = 0x5EED_0004
_EMOJI_SALT: typing.Final[int] = 0x5EED_0005
_THREAD_SALT: typing.Final[int] = 0x5EED_0006

_TEXT: typing.Final[int] = 0
_VOICE: typing.Final[int] = 2
_CATEGORY: typing.Final[int] = 4
_NEWS: typing.Final[int] = 5
_NEWS_THREAD: typing.Final[int] = 10
_PUBLIC_THREAD: typing.Final[int] = 11
_PRIVATE_THREAD: typing.Final[int] = 12
_STAGE: typing.Final[int] = 13
_FORUM: typing.Final[int] = 15
_MESSAGEABLE: typing.Final[frozenset[int]] = frozenset((_TEXT, _NEWS))
_VOICE_LIKE: typing.Final[frozenset[int]] = frozenset((_VOICE, _STAGE))
_THREAD_PARENTS: typing.Final[frozenset[int]] = frozenset((_TEXT, _NEWS, _FORUM))

_EVERYONE_PERMISSIONS: typing.Final[str] = "2248473465835073"
_ALL_PERMISSIONS: typing.Final[str] = "2251799813685247"
_APP_PERMISSIONS: typing.Final[str] = "562949953421311"

# ---------------------------------------------------------------------------------------------------------------------
# Word pools
# ---------------------------------------------------------------------------------------------------------------------


def _pool(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


_WORDS_TEXT: typing.Final[str] = (
    "the a and to of is that this for with on you it was but not are have just like do can if my me at all "
    "get one will about up out so what why when how who lol lmao ok okay yeah yes no nah maybe tomorrow "
    "tonight today anyone someone server bot update patch raid game playing play stream build release "
    "bug fix works broken again still really pretty good bad nice gg wp brb afk idk tbh imo fr ngl "
    "thanks thx please pls sorry wait what's it's i'm don't can't won't that's there their they "
    "pog based cringe true same mood vibe hype let's go new old first last week weekend event voice "
    "chat link join leave role admin mod ping meme clip video song music album art drawing code python "
    "rust discord gateway shard latency ping heartbeat resume session"
)
_WORDS: typing.Final[tuple[str, ...]] = tuple(_WORDS_TEXT.split())
_UNICODE_CHUNKS: typing.Final[tuple[str, ...]] = _pool(
    "café|naïve|Zürich|São Paulo|façade|jalapeño|Ærøskøbing|Łódź|İstanbul|crème brûlée|日本語|こんにちは"
    "|ありがとう！|おはようございます|你好吗？|谢谢你|한국어|안녕하세요|Привет|спасибо|Γειά σου|مرحبا|שלום|नमस्ते|สวัสดี"
    "|ｆｕｌｌｗｉｄｔｈ|𝓯𝓪𝓷𝓬𝔂|Z̤͔ͧ̑a̜l̩g̟o|zero\u200bwidth|→|©|½|∞|¯\\_(ツ)_/¯"
)
_UNICODE_EMOJI: typing.Final[tuple[str, ...]] = _pool(
    "👍|❤️|😂|🔥|🎉|😭|👀|✅|❌|💀|🙏|😍|🤔|👍🏽|🇯🇵|🏳️\u200d🌈|👨\u200d👩\u200d👧\u200d👦|⭐|🥺|💯|🤣|😎|🫡|🤝|☕"
)
_ESCAPY: typing.Final[tuple[str, ...]] = (
    '"quoted"',
    "'single'",
    "C:\\Users\\me\\Desktop\\bot.py",
    "\\n is not a newline",
    "tab\there",
    "back\\\\slash",
    '\\"escaped\\"',
    "<script>alert(1)</script>",
    "&amp;",
    "50% off!!",
    "a/b/c",
    "\u0007bell",
)
_TRICKY: typing.Final[tuple[str, ...]] = (
    '"t":"MESSAGE_CREATE"',
    '{"op":1}',
    '{"op":1,"d":null}',
    '"s":42,"op":0',
    '{"t":"READY","s":1,"op":0,"d":{}}',
    '"op": 11, "d": null',
    '{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250}}',
)
_CODE_BLOCKS: typing.Final[tuple[str, ...]] = (
    '```py\nprint("hello\\nworld")\nfor k, v in d.items():\n    print(f"{k}={v!r}")\n```',
    '```json\n{"op": 2, "d": {"token": "…", "intents": 53608447}}\n```',
    "```\nTraceback (most recent call last):\n  File \"bot.py\", line 3\n    raise KeyError('t')\nKeyError: 't'\n```",
    "`inline code`",
    '```rs\nfn main() {\n    println!("{}", "\\\\");\n}\n```',
)
_URLS: typing.Final[tuple[str, ...]] = (
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://github.com/hikari-py/hikari/issues/1234",
    "https://en.wikipedia.org/wiki/Caf%C3%A9",
    "https://twitter.com/discord/status/1735000000000000000",
    "https://tenor.com/view/cat-jam-gif-18110512",
    "https://docs.python.org/3/library/asyncio.html#asyncio.Task",
    "https://store.steampowered.com/app/1086940/Baldurs_Gate_3/",
    "https://open.spotify.com/track/0VjIjW4GlUZAMYd2vXMi3b?si=abc123",
)
_NAME_PARTS_TEXT: typing.Final[str] = (
    "shadow night star moon sun dark light blue red neo cyber pixel kitty fox wolf dragon ninja "
    "pro noob epic ghost frost storm byte code dev cat dog panda tofu mochi sushi taco nova luna "
    "zen echo vex kai leo max sam alex jo mia yuki hana sora ren"
)
_NAME_PARTS: typing.Final[tuple[str, ...]] = tuple(_NAME_PARTS_TEXT.split())
_DISPLAY_NAMES: typing.Final[tuple[str, ...]] = _pool(
    'Zoë ✨|たけし|Ωmega|José|Łukasz|김민준|Дмитрий|~ luna ~|Björk|小明|the "real" one|back\\slash|𝕯𝖆𝖗𝖐|ℭ𝔞𝔱|mister 🐸'
)
_CHANNEL_NAMES: typing.Final[tuple[str, ...]] = _pool(
    "general|off-topic|memes|bot-commands|announcements|introductions|art|music|gaming|clips"
    "|support|feedback|dev-chat|media|pets|food|日本語|español|français|português|русский|한국어"
    "|🎮-gaming|📢-news|💬-chat|🎨-art|rules|welcome|mod-logs|suggestions|giveaways|lfg"
)
_VOICE_NAMES: typing.Final[tuple[str, ...]] = _pool(
    "General|Lounge|Gaming|Music|AFK|Study Room|🎧 Chill|Team 1|Team 2|カラオケ|Café ☕"
)
_CATEGORY_NAMES: typing.Final[tuple[str, ...]] = _pool(
    "INFORMATION|COMMUNITY|VOICE CHANNELS|GAMES|STAFF|ARCHIVE|📚 RESOURCES|EVENTS"
)
_ROLE_NAMES: typing.Final[tuple[str, ...]] = _pool(
    "Admin|Moderator|Helper|Member|Muted|DJ|✨ VIP|Verified|Level 5|Level 10|Level 25|レベル100|Artist"
    "|Developer|Event Host|he/him|she/her|they/them|EU|NA|Asia|Ping: Announcements"
)
_EMOJI_NAMES_TEXT: typing.Final[str] = (
    "pepe kekw pog catjam blobwave thonk sadge monkaS peepoHappy ablobcatbongo yes no check cross "
    "heart_purple rainbow_cat party_parrot hmm stonks based"
)
_EMOJI_NAMES: typing.Final[tuple[str, ...]] = tuple(_EMOJI_NAMES_TEXT.split())
_GUILD_NAMES: typing.Final[tuple[str, ...]] = _pool(
    "Python Discord|hikari|Lofi Girl|Genshin Impact 原神|Minecraft|r/place ✨|Café Français|日本語学習者"
    '|The "Coding" Den|Art & Design'
)
_GAMES: typing.Final[tuple[str, ...]] = _pool(
    "Minecraft|League of Legends|VALORANT|Counter-Strike 2|Genshin Impact|原神|Rocket League"
    "|Stardew Valley|Visual Studio Code|Overwatch 2|Pokémon Scarlet|ELDEN RING|Baldur's Gate 3"
)
_SONGS: typing.Final[tuple[tuple[str, str, str], ...]] = (
    ("Blinding Lights", "The Weeknd", "After Hours"),
    ("夜に駆ける", "YOASOBI", "THE BOOK"),
    ("Despacito", "Luis Fonsi; Daddy Yankee", "VIDA"),
    ("Bohemian Rhapsody", "Queen", "A Night at the Opera (2011 Remaster)"),
    ("Dynamite", "BTS", "BE"),
    ("Anti-Hero", "Taylor Swift", "Midnights"),
    ("Non, je ne regrette rien", "Édith Piaf", "Best of Édith Piaf"),
    ("Группа крови", "КИНО", "Группа крови"),
    ("紅蓮華", "LiSA", "LEO-NiNE"),
)
_STATUS_TEXTS: typing.Final[tuple[str, ...]] = _pool(
    "studying 📚|do not disturb pls|🌙 sleeping|working on my bot|がんばって！|¯\\_(ツ)_/¯"
    '|"quotes" and \\backslashes\\|ℍ𝕖𝕝𝕝𝕠|brb|vibing 🎶'
)
_LOCALES: typing.Final[tuple[str, ...]] = ("en-US", "en-US", "en-US", "en-GB", "de", "fr", "ja", "pt-BR", "es-ES", "ko")
_PUBLIC_FLAGS: typing.Final[tuple[int, ...]] = (0, 0, 0, 0, 0, 0, 64, 128, 256, 4194304, 512)
_CONTENT_TYPES: typing.Final[tuple[tuple[str, str, bool], ...]] = (
    ("png", "image/png", True),
    ("jpg", "image/jpeg", True),
    ("gif", "image/gif", True),
    ("mp4", "video/mp4", True),
    ("txt", "text/plain; charset=utf-8", False),
    ("py", "text/x-python; charset=utf-8", False),
    ("zip", "application/zip", False),
    ("pdf", "application/pdf", False),
)
_FILE_STEMS: typing.Final[tuple[str, ...]] = _pool(
    "image|Screenshot_2024-12-31_at_23.59.59|unknown|IMG_4821|clip|bot|log|写真|résumé"
)
_BURST_COLORS: typing.Final[tuple[str, ...]] = ("#ff5c5c", "#ffd23f", "#5865f2", "#57f287", "#eb459e")


# ---------------------------------------------------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------------------------------------------------


def _snowflake(rng: random.Random, ms: int) -> int:
    return ((ms - _DISCORD_EPOCH_MS) << 22) | rng.getrandbits(22)


def _snowflake_ms(snowflake: int) -> int:
    return (snowflake >> 22) + _DISCORD_EPOCH_MS


def _shard_snowflake(rng: random.Random, ms: int, shard: tuple[int, int]) -> int:
    """A guild id created at about ``ms`` that Discord routes to ``shard`` (``(id >> 22) % count == shard_id``)."""
    shard_id, shard_count = shard
    offset = ms - _DISCORD_EPOCH_MS
    offset += (shard_id - offset) % shard_count
    return (offset << 22) | rng.getrandbits(22)


def _iso(ms: int) -> str:
    return (_UNIX_EPOCH + datetime.timedelta(milliseconds=ms)).isoformat(timespec="microseconds")


def _hex(rng: random.Random, nbytes: int = 16) -> str:
    return f"{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def _image_hash(rng: random.Random, animated: float = 0.0) -> str:
    return ("a_" if rng.random() < animated else "") + _hex(rng)


def _token(rng: random.Random, length: int) -> str:
    return "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", k=length))


def _pick_weighted(rng: random.Random, table: Sequence[tuple[float, typing.Any]]) -> typing.Any:
    roll = rng.random() * sum(weight for weight, _ in table)
    for weight, value in table:
        roll -= weight
        if roll < 0:
            return value
    return table[-1][1]


# ---------------------------------------------------------------------------------------------------------------------
# Stable per-id entities: a user, a member, a channel or a role always renders the same for the same id, so a
# GUILD_CREATE and the dispatches that follow agree about it.
# ---------------------------------------------------------------------------------------------------------------------


def _user_template(user_id: int) -> JSONObject:
    r = random.Random(user_id ^ _USER_SALT)
    is_bot = r.random() < 0.03
    username = r.choice(_NAME_PARTS) + r.choice(("", "_", ".", "")) + r.choice(_NAME_PARTS)
    if r.random() < 0.6:
        username += str(r.randrange(1, 10_000))
    user: JSONObject = {
        "username": username,
        "public_flags": 0 if is_bot else r.choice(_PUBLIC_FLAGS),
        "primary_guild": None,
        "id": str(user_id),
        "global_name": None if is_bot or r.random() < 0.3 else r.choice((*_DISPLAY_NAMES, username.title())),
        "discriminator": f"{r.randrange(1, 10_000):04d}" if is_bot else "0",
        "collectibles": None,
        "clan": None,
        "avatar_decoration_data": None,
        "avatar": _image_hash(r, animated=0.06) if r.random() < 0.85 else None,
    }
    if r.random() < 0.12:
        user["avatar_decoration_data"] = {
            "sku_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**10))),
            "expires_at": None,
            "asset": "a_" + _hex(r),
        }
    if r.random() < 0.15:
        tag = {
            "tag": r.choice(("HIKA", "PY", "ネコ", "GG", "DEV", "ÆØÅ")),
            "identity_guild_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**11))),
            "identity_enabled": True,
            "badge": _hex(r),
        }
        user["primary_guild"] = tag
        user["clan"] = dict(tag)
    if r.random() < 0.1:
        user["collectibles"] = {
            "nameplate": {
                "sku_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**10))),
                "palette": r.choice(("crimson", "cobalt", "forest", "sakura", "violet")),
                "label": "",
                "expires_at": None,
                "asset": f"nameplates/{r.choice(('spell', 'koi', 'aurora', 'pixel'))}/{r.choice(_NAME_PARTS)}/",
            }
        }
    if is_bot:
        user["bot"] = True
    return user


def _member_template(guild_id: int, user_id: int, role_ids: Sequence[int]) -> JSONObject:
    r = random.Random((guild_id * 0x9E3779B1) ^ user_id ^ _MEMBER_SALT)
    earliest = max(_snowflake_ms(guild_id), _snowflake_ms(user_id))
    joined_ms = r.randrange(earliest, max(earliest + 1, _CORPUS_NOW_MS - 60_000))
    roles = r.sample(role_ids, min(len(role_ids), int(r.expovariate(0.45)))) if role_ids else []
    boosting = r.random() < 0.03
    return {
        "roles": [str(role) for role in sorted(roles)],
        "premium_since": _iso(r.randrange(joined_ms, max(joined_ms + 1, _CORPUS_NOW_MS))) if boosting else None,
        "pending": False,
        "nick": r.choice((*_DISPLAY_NAMES, r.choice(_NAME_PARTS).upper())) if r.random() < 0.18 else None,
        "mute": False,
        "joined_at": _iso(joined_ms),
        "flags": r.choice((0, 0, 0, 2, 10, 1)),
        "deaf": False,
        "communication_disabled_until": None,
        "banner": None,
        "avatar": _image_hash(r) if r.random() < 0.03 else None,
        "unusual_dm_activity_until": None,
    }


def _permission_overwrites(r: random.Random, guild_id: int, role_ids: Sequence[int]) -> list[JSONObject]:
    overwrites = []
    if r.random() < 0.5:
        overwrites.append({"type": 0, "id": str(guild_id), "deny": "1024", "allow": "0"})
    for role_id in r.sample(role_ids, min(len(role_ids), r.choice((0, 0, 1, 1, 2, 3)))):
        allow = r.choice(("1024", "3072", "68608", "2048"))
        overwrites.append({"type": 0, "id": str(role_id), "deny": "0", "allow": allow})
    return overwrites


def _channel_payload(
    channel_id: int,
    channel_type: int,
    *,
    position: int,
    parent_id: int | None,
    guild_id: int,
    role_ids: Sequence[int],
    emojis: Sequence[tuple[int, str, bool]] = (),
) -> JSONObject:
    r = random.Random(channel_id ^ _CHANNEL_SALT)
    overwrites = _permission_overwrites(r, guild_id, role_ids)
    parent = str(parent_id) if parent_id is not None else None
    if channel_type == _CATEGORY:
        return {
            "version": _snowflake_ms(channel_id),
            "type": _CATEGORY,
            "position": position,
            "permission_overwrites": overwrites,
            "name": r.choice(_CATEGORY_NAMES),
            "id": str(channel_id),
            "flags": 0,
        }
    if channel_type in _VOICE_LIKE:
        return {
            "version": _snowflake_ms(channel_id),
            "user_limit": r.choice((0, 0, 0, 5, 10, 25, 99)),
            "type": channel_type,
            "rtc_region": r.choice((None, None, None, "us-east", "rotterdam", "japan")),
            "rate_limit_per_user": 0,
            "position": position,
            "permission_overwrites": overwrites,
            "parent_id": parent,
            "nsfw": False,
            "name": r.choice(_VOICE_NAMES) if channel_type == _VOICE else "Stage",
            "last_message_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**9))),
            "id": str(channel_id),
            "flags": 0,
            "bitrate": r.choice((64000, 96000, 128000, 384000)),
            "video_quality_mode": r.choice((1, 1, 2)),
        }
    payload: JSONObject = {
        "version": _snowflake_ms(channel_id),
        "type": channel_type,
        "topic": _text(r, words=r.randrange(3, 25)) if r.random() < 0.6 else None,
        "rate_limit_per_user": r.choice((0, 0, 0, 0, 5, 10, 30)),
        "position": position,
        "permission_overwrites": overwrites,
        "parent_id": parent,
        "nsfw": r.random() < 0.03,
        "name": r.choice(_CHANNEL_NAMES) + (f"-{r.randrange(2, 99)}" if r.random() < 0.3 else ""),
        "last_message_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**8))),
        "id": str(channel_id),
        "flags": 0,
    }
    if r.random() < 0.4:
        payload["last_pin_timestamp"] = _iso(_CORPUS_NOW_MS - r.randrange(10**10))
    if r.random() < 0.3:
        payload["default_auto_archive_duration"] = r.choice((60, 1440, 4320, 10080))
    if channel_type == _FORUM:
        tags = []
        for index in range(r.randrange(1, 6)):
            custom = emojis and r.random() < 0.3
            emoji_id, emoji_name = (str(r.choice(emojis)[0]), None) if custom else (None, r.choice(_UNICODE_EMOJI))
            tags.append(
                {
                    "id": str(channel_id + index + 1),
                    "name": r.choice(("question", "solved", "bug", "feature", "résolu", "質問")),
                    "moderated": r.random() < 0.2,
                    "emoji_id": emoji_id,
                    "emoji_name": emoji_name,
                }
            )
        payload.update(
            available_tags=tags,
            default_reaction_emoji={"emoji_id": None, "emoji_name": r.choice(_UNICODE_EMOJI)},
            default_sort_order=r.choice((None, 0, 1)),
            default_forum_layout=r.choice((0, 1, 2)),
            default_thread_rate_limit_per_user=0,
            template="",
        )
    return payload


def _role_payload(role_id: int, *, guild_id: int, position: int, bot_id: int | None = None) -> JSONObject:
    r = random.Random(role_id ^ _ROLE_SALT)
    everyone = role_id == guild_id
    color = 0 if everyone or r.random() < 0.3 else r.randrange(1, 0xFFFFFF)
    payload: JSONObject = {
        "version": _snowflake_ms(role_id),
        "unicode_emoji": r.choice(_UNICODE_EMOJI) if not everyone and r.random() < 0.1 else None,
        "tags": {},
        "position": position,
        "permissions": _EVERYONE_PERMISSIONS if everyone else r.choice(("0", "1024", "104324673", _ALL_PERMISSIONS)),
        "name": "@everyone" if everyone else r.choice(_ROLE_NAMES),
        "mentionable": not everyone and r.random() < 0.3,
        "managed": bot_id is not None,
        "id": str(role_id),
        "icon": _hex(r) if not everyone and r.random() < 0.05 else None,
        "hoist": not everyone and r.random() < 0.3,
        "flags": 0,
        "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
        "color": color,
    }
    if bot_id is not None:
        payload["tags"] = {"bot_id": str(bot_id)}
        payload["name"] = "hikari-shard"
    elif not everyone and position == 1:
        payload["tags"] = {"premium_subscriber": None}
        payload["name"] = "Server Booster"
    return payload


def _emoji_payload(emoji_id: int) -> JSONObject:
    r = random.Random(emoji_id ^ _EMOJI_SALT)
    return {
        "version": _snowflake_ms(emoji_id),
        "roles": [],
        "require_colons": True,
        "name": r.choice(_EMOJI_NAMES) + ("" if r.random() < 0.5 else str(r.randrange(2, 99))),
        "managed": False,
        "id": str(emoji_id),
        "available": True,
        "animated": r.random() < 0.25,
    }


def _thread_payload(
    thread_id: int,
    thread_type: int,
    *,
    parent_id: int,
    guild_id: int,
    owner_id: int,
    archived: bool = False,
    bot_member_ms: int | None = None,
) -> JSONObject:
    r = random.Random(thread_id ^ _THREAD_SALT)
    created_ms = _snowflake_ms(thread_id)
    messages = int(r.expovariate(1 / 40))
    payload: JSONObject = {
        "type": thread_type,
        "total_message_sent": messages,
        "thread_metadata": {
            "locked": False,
            "create_timestamp": _iso(created_ms),
            "auto_archive_duration": r.choice((60, 1440, 4320, 10080)),
            "archived": archived,
            "archive_timestamp": _iso(created_ms),
        },
        "rate_limit_per_user": 0,
        "parent_id": str(parent_id),
        "owner_id": str(owner_id),
        "name": _text(r, words=r.randrange(2, 8)).replace("\r", "").replace("\n", " ")[:100],
        "message_count": messages,
        "member_count": min(50, 1 + int(r.expovariate(1 / 4))),
        "last_message_id": str(_snowflake(r, _CORPUS_NOW_MS - r.randrange(10**8))),
        "id": str(thread_id),
        "guild_id": str(guild_id),
        "flags": 0,
    }
    if thread_type == _PRIVATE_THREAD:
        payload["thread_metadata"]["invitable"] = True
    if thread_type == _PUBLIC_THREAD and r.random() < 0.3:
        payload["applied_tags"] = [str(parent_id + 1)]
    if bot_member_ms is not None:
        payload["member"] = {"muted": False, "mute_config": None, "join_timestamp": _iso(bot_member_ms), "flags": 1}
    return payload


# ---------------------------------------------------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------------------------------------------------


def _text(
    rng: random.Random,
    *,
    words: int,
    mentions: list[int] | None = None,
    user_ids: Sequence[int] = (),
    channel_ids: Sequence[int] = (),
    role_ids: Sequence[int] = (),
    emojis: Sequence[tuple[int, str, bool]] = (),
    urls: list[str] | None = None,
) -> str:
    """Chat-like text: mostly words, with unicode, emoji, escapes, mentions, urls and newlines mixed in."""
    parts: list[str] = []
    for _ in range(words):
        roll = rng.random()
        if roll < 0.80:
            parts.append(rng.choice(_WORDS))
        elif roll < 0.87:
            parts.append(rng.choice(_UNICODE_CHUNKS))
        elif roll < 0.925:
            parts.append(rng.choice(_UNICODE_EMOJI))
        elif roll < 0.945:
            parts.append(rng.choice(_ESCAPY))
        elif roll < 0.96:
            parts.append(rng.choice(("\n", "\n\n", "\r\n")))
        elif roll < 0.975 and user_ids and mentions is not None:
            user_id = rng.choice(user_ids)
            mentions.append(user_id)
            parts.append(f"<@{user_id}>")
        elif roll < 0.982 and channel_ids:
            parts.append(f"<#{rng.choice(channel_ids)}>")
        elif roll < 0.986 and role_ids:
            parts.append(f"<@&{rng.choice(role_ids)}>")
        elif roll < 0.994 and emojis:
            emoji_id, name, animated = rng.choice(emojis)
            parts.append(f"<{'a' if animated else ''}:{name}:{emoji_id}>")
        elif urls is not None:
            url = rng.choice(_URLS)
            urls.append(url)
            parts.append(url)
        else:
            parts.append(rng.choice(_WORDS))
    return " ".join(parts)


def _message_content(rng: random.Random, **kwargs: typing.Any) -> str:
    words = min(350, 1 + int(rng.lognormvariate(2.2, 1.0)))
    content = _text(rng, words=words, **kwargs)
    roll = rng.random()
    if roll < 0.02:
        content += "\n" + rng.choice(_CODE_BLOCKS)
    elif roll < 0.025:
        content = rng.choice((content + " ", "")) + rng.choice(_TRICKY)
    return content[:2000]


# ---------------------------------------------------------------------------------------------------------------------
# Presences
# ---------------------------------------------------------------------------------------------------------------------


def _activity(rng: random.Random, now_ms: int, emojis: Sequence[tuple[int, str, bool]]) -> JSONObject:
    kind = _pick_weighted(rng, ((0.30, "custom"), (0.29, "game"), (0.33, "spotify"), (0.05, "stream"), (0.03, "watch")))
    created_at = now_ms - rng.randrange(10**7)
    if kind == "custom":
        activity: JSONObject = {
            "type": 4,
            "state": rng.choice(_STATUS_TEXTS),
            "name": "Custom Status",
            "id": "custom",
            "created_at": created_at,
        }
        if rng.random() < 0.6:
            if emojis and rng.random() < 0.3:
                emoji_id, name, animated = rng.choice(emojis)
                activity["emoji"] = {"name": name, "id": str(emoji_id), "animated": animated}
            else:
                activity["emoji"] = {"name": rng.choice(_UNICODE_EMOJI)}
        return activity
    if kind == "spotify":
        title, artists, album = rng.choice(_SONGS)
        start = now_ms - rng.randrange(240_000)
        return {
            "type": 2,
            "timestamps": {"start": start, "end": start + rng.randrange(120_000, 360_000)},
            "sync_id": _token(rng, 22),
            "state": artists,
            "session_id": _hex(rng),
            "party": {"id": f"spotify:{rng.getrandbits(60)}"},
            "name": "Spotify",
            "id": "spotify:1",
            "flags": 48,
            "details": title,
            "created_at": created_at,
            "assets": {"large_text": album, "large_image": f"spotify:ab67616d0000b273{_hex(rng, 12)}"},
        }
    if kind == "stream":
        channel = rng.choice(_NAME_PARTS) + rng.choice(_NAME_PARTS)
        return {
            "type": 1,
            "url": f"https://www.twitch.tv/{channel}",
            "state": rng.choice(_GAMES),
            "name": "Twitch",
            "id": _hex(rng, 8),
            "details": _text(rng, words=6),
            "created_at": created_at,
            "assets": {"large_image": f"twitch:{channel}"},
        }
    if kind == "watch":
        return {"type": 3, "name": "YouTube", "id": _hex(rng, 8), "created_at": created_at, "details": "Lo-fi beats"}
    activity = {
        "type": 0,
        "timestamps": {"start": now_ms - rng.randrange(10**7)},
        "name": rng.choice(_GAMES),
        "id": _hex(rng, 8),
        "created_at": created_at,
    }
    if rng.random() < 0.8:
        activity.update(
            platform=rng.choice(("desktop", "desktop", "xbox", "ps5")),
            session_id=_hex(rng),
            application_id=str(_snowflake(rng, _CORPUS_NOW_MS - rng.randrange(10**11))),
            details=rng.choice(("Competitive", "In a match", "Main Menu", "Ranked — Gold II", "Exploring Mondstadt")),
            state=rng.choice(("In a Party", "Solo", "Playing Solo", "在线")),
            assets={
                "large_image": str(rng.getrandbits(60)),
                "large_text": rng.choice(_GAMES),
                "small_image": str(rng.getrandbits(60)),
                "small_text": "Level " + str(rng.randrange(1, 500)),
            },
        )
        if rng.random() < 0.4:
            activity["party"] = {"id": _hex(rng, 8), "size": [rng.randrange(1, 4), 4]}
        if rng.random() < 0.2:
            activity["buttons"] = ["Join Game", "View Profile"]
            activity["flags"] = 1
    return activity


def _presence_body(
    rng: random.Random, user_id: int, now_ms: int, emojis: Sequence[tuple[int, str, bool]], *, online_only: bool
) -> JSONObject:
    status = _pick_weighted(
        rng, ((0.55, "online"), (0.22, "idle"), (0.15, "dnd"), (0.0 if online_only else 0.15, "offline"))
    )
    if status == "offline":
        return {"user": {"id": str(user_id)}, "status": "offline", "client_status": {}, "activities": []}
    client_status = {}
    for platform, chance in (("desktop", 0.65), ("mobile", 0.45), ("web", 0.08)):
        if rng.random() < chance:
            client_status[platform] = status
    if not client_status:
        client_status["desktop"] = status
    count = _pick_weighted(rng, ((0.22, 0), (0.45, 1), (0.26, 2), (0.07, 3)))
    activities = [_activity(rng, now_ms, emojis) for _ in range(count)]
    return {"user": {"id": str(user_id)}, "status": status, "client_status": client_status, "activities": activities}


# ---------------------------------------------------------------------------------------------------------------------
# READY
# ---------------------------------------------------------------------------------------------------------------------


def ready_payload(
    rng: random.Random,
    *,
    user_id: int = DEFAULT_USER_ID,
    session_id: str = DEFAULT_SESSION_ID,
    resume_url: str = DEFAULT_RESUME_URL,
    guild_ids: Sequence[int] = (),
    shard: tuple[int, int] = (0, 1),
) -> JSONObject:
    """Build the ``d`` of a READY dispatch for a bot.

    Parameters
    ----------
    rng
        The source of every random choice.
    user_id
        The bot's user id, also used as its application id.
    session_id
        The session id a RESUME must present.
    resume_url
        The ``resume_gateway_url``.
    guild_ids
        The guilds the shard will receive, listed as unavailable as Discord does.
    shard
        ``(shard_id, shard_count)``.

    Returns
    -------
    dict
        The READY payload.
    """
    user = _user_template(user_id)
    user.update(bot=True, verified=True, mfa_enabled=True, flags=0, email=None, global_name=None)
    trace_calls = [
        "id_created",
        {"micros": rng.randrange(500, 1500), "calls": []},
        "session_lookup_time",
        {"micros": rng.randrange(200, 900), "calls": []},
        "session_lookup_finished",
        {"micros": rng.randrange(5, 30), "calls": []},
        "discord-sessions-prd-2-" + str(rng.randrange(1, 300)),
        {"micros": rng.randrange(20_000, 90_000), "calls": ["start_session", {"micros": rng.randrange(10**4, 10**5)}]},
    ]
    trace = orjson.dumps(
        [f"gateway-prd-us-east1-c-{_hex(rng, 2)}", {"micros": rng.randrange(10**5), "calls": trace_calls}]
    )
    return {
        "v": 10,
        "user_settings": {},
        "user": user,
        "session_type": "normal",
        "session_id": session_id,
        "resume_gateway_url": resume_url,
        "relationships": [],
        "private_channels": [],
        "presences": [],
        "guilds": [{"unavailable": True, "id": str(guild_id)} for guild_id in guild_ids],
        "guild_join_requests": [],
        "geo_ordered_rtc_regions": ["us-east", "us-central", "atlanta", "newark", "us-south"],
        "game_relationships": [],
        "auth": {},
        "application": {"id": str(user_id), "flags": 565248},
        "shard": [shard[0], shard[1]],
        "_trace": [trace.decode()],
    }


# ---------------------------------------------------------------------------------------------------------------------
# GUILD_CREATE
# ---------------------------------------------------------------------------------------------------------------------


class _GuildBuilder:
    """Draws one guild's skeleton (ids, types, parents) from ``rng``; entities render from their ids."""

    __slots__ = (
        "bot_user_id",
        "channels",
        "created_ms",
        "emojis",
        "guild_id",
        "joined_ms",
        "payload",
        "rng",
        "role_ids",
        "voice_ids",
    )

    def __init__(
        self,
        rng: random.Random,
        guild_id: int,
        *,
        channels: int,
        roles: int,
        emojis: int,
        stickers: int,
        bot_user_id: int,
        owner_id: int,
    ) -> None:
        self.rng = rng
        self.guild_id = guild_id
        self.bot_user_id = bot_user_id
        self.created_ms = _snowflake_ms(guild_id)
        self.joined_ms = rng.randrange(self.created_ms, max(self.created_ms + 1, _CORPUS_NOW_MS - 86_400_000))
        span = max(1, _CORPUS_NOW_MS - 86_400_000 - self.created_ms)

        def new_id() -> int:
            return _snowflake(rng, self.created_ms + rng.randrange(span))

        # Roles: @everyone (id == guild id) at position 0, the booster role, the bot's managed role, the rest.
        self.role_ids = sorted(new_id() for _ in range(max(2, roles) - 1))
        bot_role = self.role_ids[-1]
        role_payloads = [_role_payload(guild_id, guild_id=guild_id, position=0)]
        for position, role_id in enumerate(self.role_ids, start=1):
            bot_id = bot_user_id if role_id == bot_role else None
            role_payloads.append(_role_payload(role_id, guild_id=guild_id, position=position, bot_id=bot_id))

        self.emojis = []
        emoji_payloads = []
        for _ in range(emojis):
            payload = _emoji_payload(new_id())
            emoji_payloads.append(payload)
            self.emojis.append((int(payload["id"]), payload["name"], payload["animated"]))

        # Channels: categories first, each followed by its children (text, news, forum, voice, stage).
        self.channels: list[tuple[int, int, int | None]] = []
        channel_payloads = []
        positions: collections.Counter[int] = collections.Counter()
        remaining = max(2, channels)
        parent: int | None = None
        while remaining:
            if parent is None or rng.random() < 0.12:
                kind = _CATEGORY if remaining > 1 else _TEXT
            else:
                kind = _pick_weighted(
                    rng, ((0.62, _TEXT), (0.05, _NEWS), (0.05, _FORUM), (0.25, _VOICE), (0.03, _STAGE))
                )
            if not self.channels:
                kind = _CATEGORY if remaining > 1 else _TEXT
            channel_id = new_id()
            group = 0 if kind in (_TEXT, _NEWS, _FORUM) else kind
            payload = _channel_payload(
                channel_id,
                kind,
                position=positions[group],
                parent_id=None if kind == _CATEGORY else parent,
                guild_id=guild_id,
                role_ids=self.role_ids,
                emojis=self.emojis,
            )
            positions[group] += 1
            self.channels.append((channel_id, kind, None if kind == _CATEGORY else parent))
            channel_payloads.append(payload)
            if kind == _CATEGORY:
                parent = channel_id
            remaining -= 1
        if not any(kind in _MESSAGEABLE for _, kind, _ in self.channels):
            channel_id = new_id()
            self.channels.append((channel_id, _TEXT, None))
            channel_payloads.append(
                _channel_payload(channel_id, _TEXT, position=0, parent_id=None, guild_id=guild_id, role_ids=())
            )
        self.voice_ids = [cid for cid, kind, _ in self.channels if kind in _VOICE_LIKE]
        text_ids = [cid for cid, kind, _ in self.channels if kind in _MESSAGEABLE]

        sticker_payloads = [
            {
                "version": self.created_ms,
                "type": 2,
                "tags": rng.choice(_UNICODE_EMOJI),
                "name": rng.choice(_EMOJI_NAMES),
                "id": str(new_id()),
                "guild_id": str(guild_id),
                "format_type": rng.choice((1, 1, 2, 4)),
                "description": rng.choice(("", "a sticker", "ステッカー")),
                "available": True,
                "asset": "",
            }
            for _ in range(stickers)
        ]
        boosts = int(rng.expovariate(1 / 6)) if rng.random() < 0.6 else 0
        features = sorted(
            rng.sample(
                (
                    "COMMUNITY",
                    "NEWS",
                    "ANIMATED_ICON",
                    "BANNER",
                    "INVITE_SPLASH",
                    "VANITY_URL",
                    "WELCOME_SCREEN_ENABLED",
                    "MEMBER_VERIFICATION_GATE_ENABLED",
                    "PREVIEW_ENABLED",
                    "ROLE_ICONS",
                    "THREADS_ENABLED",
                    "AUTO_MODERATION",
                    "SOUNDBOARD",
                ),
                rng.randrange(0, 9),
            )
        )
        self.payload: JSONObject = {
            "id": str(guild_id),
            "name": rng.choice(_GUILD_NAMES),
            "icon": _image_hash(rng, animated=0.2) if rng.random() < 0.9 else None,
            "description": _text(rng, words=rng.randrange(4, 20)) if rng.random() < 0.4 else None,
            "home_header": None,
            "splash": _hex(rng) if rng.random() < 0.2 else None,
            "discovery_splash": None,
            "features": features,
            "banner": _hex(rng) if rng.random() < 0.3 else None,
            "owner_id": str(owner_id),
            "application_id": None,
            "region": "deprecated",
            "afk_channel_id": str(self.voice_ids[-1]) if self.voice_ids and rng.random() < 0.5 else None,
            "afk_timeout": rng.choice((60, 300, 900, 3600)),
            "system_channel_id": str(text_ids[0]),
            "system_channel_flags": rng.choice((0, 4, 12)),
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": rng.randrange(0, 5),
            "default_message_notifications": rng.choice((0, 1, 1)),
            "mfa_level": rng.choice((0, 1)),
            "explicit_content_filter": rng.choice((0, 1, 2, 2)),
            "max_presences": None,
            "max_members": 500_000,
            "max_stage_video_channel_users": 50,
            "max_video_channel_users": 25,
            "vanity_url_code": rng.choice(_NAME_PARTS) if "VANITY_URL" in features else None,
            "premium_tier": 0 if boosts < 2 else 1 if boosts < 7 else 2 if boosts < 14 else 3,
            "premium_subscription_count": boosts,
            "preferred_locale": rng.choice(_LOCALES),
            "rules_channel_id": str(text_ids[-1]) if "COMMUNITY" in features else None,
            "safety_alerts_channel_id": None,
            "public_updates_channel_id": str(text_ids[0]) if "COMMUNITY" in features else None,
            "hub_type": None,
            "premium_progress_bar_enabled": rng.random() < 0.3,
            "latest_onboarding_question_id": None,
            "nsfw": False,
            "nsfw_level": 0,
            "incidents_data": None,
            "inventory_settings": None,
            "embedded_activities": [],
            "version": _CORPUS_NOW_MS - rng.randrange(10**9),
            "lazy": True,
            "large": False,
            "unavailable": False,
            "joined_at": _iso(self.joined_ms),
            "member_count": 0,
            "roles": role_payloads,
            "emojis": emoji_payloads,
            "stickers": sticker_payloads,
            "channels": channel_payloads,
            "threads": [],
            "members": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "activity_instances": [],
            "application_command_counts": {},
        }

    def new_user_id(self) -> int:
        return _snowflake(self.rng, self.rng.randrange(_DISCORD_EPOCH_MS + 10**10, _CORPUS_NOW_MS - 86_400_000))

    def member(self, user_id: int) -> JSONObject:
        member = _member_template(self.guild_id, user_id, self.role_ids)
        member["user"] = _user_template(user_id)
        if user_id == self.bot_user_id:
            member["joined_at"] = _iso(self.joined_ms)
            member["roles"] = [str(self.role_ids[-1])]
            member["user"]["bot"] = True
        return member

    def presence(self, user_id: int, *, online_only: bool) -> JSONObject:
        return _presence_body(self.rng, user_id, _CORPUS_NOW_MS, self.emojis, online_only=online_only)

    def voice_state(self, user_id: int) -> JSONObject:
        rng = self.rng
        return {
            "user_id": str(user_id),
            "suppress": False,
            "session_id": _hex(rng),
            "self_video": rng.random() < 0.05,
            "self_mute": rng.random() < 0.4,
            "self_deaf": rng.random() < 0.15,
            "request_to_speak_timestamp": None,
            "mute": False,
            "deaf": False,
            "channel_id": str(rng.choice(self.voice_ids)),
        }

    def threads(self, count: int, member_ids: Sequence[int]) -> list[JSONObject]:
        parents = [(cid, kind) for cid, kind, _ in self.channels if kind in _THREAD_PARENTS]
        threads = []
        for _ in range(count if parents and member_ids else 0):
            parent_id, parent_kind = self.rng.choice(parents)
            kind = _NEWS_THREAD if parent_kind == _NEWS else _PUBLIC_THREAD
            if parent_kind == _TEXT and self.rng.random() < 0.15:
                kind = _PRIVATE_THREAD
            thread_id = _snowflake(self.rng, _CORPUS_NOW_MS - self.rng.randrange(10**9))
            joined = self.rng.random() < 0.3
            threads.append(
                _thread_payload(
                    thread_id,
                    kind,
                    parent_id=parent_id,
                    guild_id=self.guild_id,
                    owner_id=self.rng.choice(member_ids),
                    bot_member_ms=_snowflake_ms(thread_id) + 1000 if joined else None,
                )
            )
        return threads


def _guild_shape(members: int) -> tuple[int, int, int, int, int]:
    """Channels, roles, emojis, stickers and threads for a guild with ``members`` member objects."""
    scale = math.log10(max(members, 10))
    channels = min(500, int(6 + members**0.6))
    roles = min(250, int(4 + members**0.55))
    emojis = min(250, int(members**0.55))
    stickers = min(60, int(scale * 3) - 3)
    threads = min(200, int(members**0.45))
    return channels, roles, emojis, stickers, threads


def _new_guild(
    rng: random.Random,
    guild_id: int,
    *,
    members: int,
    channels: int,
    roles: int,
    emojis: int,
    stickers: int,
    member_ids: Sequence[int] | None,
    bot_user_id: int,
) -> tuple[_GuildBuilder, list[int]]:
    """Draw a guild's skeleton and its member ids (the bot first, then the owner)."""
    pool = list(member_ids) if member_ids is not None else []
    rng.shuffle(pool)
    chosen = [user_id for user_id in pool if user_id != bot_user_id][: max(0, members - 1)]
    builder = _GuildBuilder(
        rng,
        guild_id,
        channels=channels,
        roles=roles,
        emojis=emojis,
        stickers=stickers,
        bot_user_id=bot_user_id,
        owner_id=chosen[0] if chosen else bot_user_id,
    )
    seen = {bot_user_id, *chosen}
    while len(chosen) < members - 1:
        user_id = builder.new_user_id()
        if user_id not in seen:
            seen.add(user_id)
            chosen.append(user_id)
    member_list = [bot_user_id, *chosen]
    builder.payload["owner_id"] = str(member_list[1] if len(member_list) > 1 else bot_user_id)
    return builder, member_list


def guild_create_payload(
    rng: random.Random,
    guild_id: int,
    *,
    members: int = 500,
    channels: int | None = None,
    roles: int | None = None,
    presences: int | None = None,
    voice_states: int | None = None,
    emojis: int | None = None,
    stickers: int | None = None,
    threads: int | None = None,
    member_ids: Sequence[int] | None = None,
    bot_user_id: int = DEFAULT_USER_ID,
) -> JSONObject:
    """Build the ``d`` of a GUILD_CREATE as a bot with the GUILD_MEMBERS and GUILD_PRESENCES intents receives it.

    Parameters
    ----------
    rng
        The source of every random choice.
    guild_id
        The guild's id; its timestamp is the guild's creation time.
    members
        Member objects in the payload, the bot included. Past 250 the guild is ``large``: as with
        ``large_threshold=250``, the payload then carries online members only and ``member_count``
        is about three times ``members``.
    channels, roles, emojis, stickers, threads
        Counts; by default they grow with ``members`` (a 5 000-member guild has about 170 channels
        and 110 roles).
    presences
        Presence objects; by default about 45% of a small guild's members, every member of a large one.
    voice_states
        Members in voice channels; by default about 3% of members.
    member_ids
        Draw members from these user ids (so users can share guilds); fresh ids otherwise.
    bot_user_id
        The bot's user id; the bot is always a member and owns the guild's managed role.

    Returns
    -------
    dict
        The GUILD_CREATE payload: about 20 KB for 10 members, 100 KB for 100, 1 MB for 1 000 and
        5 MB for 5 000.
    """
    shape = _guild_shape(members)
    channels = shape[0] if channels is None else channels
    roles = shape[1] if roles is None else roles
    emojis = shape[2] if emojis is None else emojis
    stickers = shape[3] if stickers is None else stickers
    threads = shape[4] if threads is None else threads

    builder, member_list = _new_guild(
        rng,
        guild_id,
        members=members,
        channels=channels,
        roles=roles,
        emojis=emojis,
        stickers=stickers,
        member_ids=member_ids,
        bot_user_id=bot_user_id,
    )
    large = len(member_list) > _LARGE_THRESHOLD
    payload = builder.payload
    payload["large"] = large
    payload["member_count"] = int(len(member_list) * rng.uniform(2.5, 3.5)) if large else len(member_list)
    payload["members"] = [builder.member(user_id) for user_id in member_list]
    if presences is None:
        presences = len(member_list) if large else int(len(member_list) * 0.45)
    online = member_list if presences >= len(member_list) else rng.sample(member_list, presences)
    payload["presences"] = [builder.presence(user_id, online_only=True) for user_id in online]
    if voice_states is None:
        voice_states = int(len(member_list) * 0.03)
    if builder.voice_ids:
        in_voice = rng.sample(member_list, min(voice_states, len(member_list)))
        payload["voice_states"] = [builder.voice_state(user_id) for user_id in in_voice]
    payload["threads"] = builder.threads(threads, member_list)
    return payload


def large_guild_create(
    rng: random.Random,
    guild_id: int,
    *,
    target_bytes: int = 4 * 1024 * 1024,
    bot_user_id: int = DEFAULT_USER_ID,
) -> JSONObject:
    """Build a large guild's GUILD_CREATE whose ``orjson.dumps`` is ``target_bytes`` long to within a few KB.

    Members (each online, with a presence, a few in voice) are added until the budget is met, on
    top of a skeleton that grows with the target: 300 channels, 200 roles, 200 emojis and 60
    active threads at 4 MiB. A target below the smallest skeleton (about 10 KB) gets the skeleton.

    Parameters
    ----------
    rng
        The source of every random choice.
    guild_id
        The guild's id.
    target_bytes
        The wanted size of the serialised payload; 4 MiB (about 3 700 members) by default.
    bot_user_id
        The bot's user id.

    Returns
    -------
    dict
        The GUILD_CREATE payload.
    """
    builder, member_ids = _new_guild(
        rng,
        guild_id,
        members=1,
        channels=max(4, min(300, target_bytes // 14_000)),
        roles=max(3, min(200, target_bytes // 21_000)),
        emojis=min(200, target_bytes // 21_000),
        stickers=min(30, target_bytes // 140_000),
        member_ids=None,
        bot_user_id=bot_user_id,
    )
    payload = builder.payload
    payload["members"] = [builder.member(bot_user_id)]
    payload["presences"] = [builder.presence(bot_user_id, online_only=True)]
    payload["threads"] = builder.threads(
        min(60, target_bytes // 70_000), member_ids + [builder.new_user_id() for _ in range(20)]
    )
    payload["member_count"] = 1_000_000
    payload["large"] = True
    size = len(orjson.dumps(payload))
    members: list[JSONObject] = payload["members"]
    presences: list[JSONObject] = payload["presences"]
    voice_states: list[JSONObject] = payload["voice_states"]
    seen = {bot_user_id}
    while True:
        user_id = builder.new_user_id()
        if user_id in seen:
            continue
        parts: list[tuple[list[JSONObject], JSONObject]] = [
            (members, builder.member(user_id)),
            (presences, builder.presence(user_id, online_only=True)),
        ]
        if builder.voice_ids and rng.random() < 0.03:
            parts.append((voice_states, builder.voice_state(user_id)))
        # Each element costs its own length plus a separating comma (the first in an empty list costs none).
        cost = sum(len(orjson.dumps(item)) + bool(target) for target, item in parts)
        if size + cost > target_bytes:
            break
        for target, item in parts:
            target.append(item)
        size += cost
        seen.add(user_id)
        member_ids.append(user_id)
    payload["owner_id"] = str(member_ids[1] if len(member_ids) > 1 else bot_user_id)
    # Keep the digit count of member_count, so the size computed above stays exact.
    payload["member_count"] = 1_000_000 + min(8_999_999, len(member_ids) * 2)
    return payload


# ---------------------------------------------------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class GuildLayout:
    """The ids a dispatch stream draws from for one guild.

    Build one from a GUILD_CREATE with :meth:`from_guild_create`, or by hand for a bare id list.
    """

    guild_id: int
    """The guild's id."""
    channels: tuple[tuple[int, int, int | None], ...] = ()
    """``(channel_id, channel_type, parent_id)`` per guild channel, in GUILD_CREATE order."""
    threads: tuple[tuple[int, int, int, int], ...] = ()
    """``(thread_id, thread_type, parent_id, owner_id)`` per active thread."""
    role_ids: tuple[int, ...] = ()
    """Role ids, without @everyone (whose id is the guild id)."""
    member_ids: tuple[int, ...] = ()
    """User ids of the guild's members."""
    emojis: tuple[tuple[int, str, bool], ...] = ()
    """``(emoji_id, name, animated)`` per custom emoji."""

    @classmethod
    def from_guild_create(cls, payload: Mapping[str, typing.Any]) -> GuildLayout:
        """Read the layout of a GUILD_CREATE payload.

        Parameters
        ----------
        payload
            A GUILD_CREATE ``d``.

        Returns
        -------
        GuildLayout
            Its guild, channel, thread, role, member and emoji ids.
        """
        guild_id = int(payload["id"])
        return cls(
            guild_id=guild_id,
            channels=tuple(
                (int(c["id"]), int(c["type"]), int(c["parent_id"]) if c.get("parent_id") else None)
                for c in payload.get("channels", ())
            ),
            threads=tuple(
                (int(t["id"]), int(t["type"]), int(t["parent_id"]), int(t["owner_id"]))
                for t in payload.get("threads", ())
            ),
            role_ids=tuple(int(r["id"]) for r in payload.get("roles", ()) if int(r["id"]) != guild_id),
            member_ids=tuple(int(m["user"]["id"]) for m in payload.get("members", ())),
            emojis=tuple((int(e["id"]), str(e["name"]), bool(e.get("animated"))) for e in payload.get("emojis", ())),
        )


def _deal(ids: Mapping[int, Sequence[int]] | Sequence[int], guild_ids: Sequence[int]) -> dict[int, list[int]]:
    if isinstance(ids, typing.Mapping):
        return {guild_id: [int(i) for i in ids.get(guild_id, ())] for guild_id in guild_ids}
    dealt: dict[int, list[int]] = {guild_id: [] for guild_id in guild_ids}
    for index, value in enumerate(ids):
        dealt[guild_ids[index % len(guild_ids)]].append(int(value))
    return dealt


# ---------------------------------------------------------------------------------------------------------------------
# The dispatch stream
# ---------------------------------------------------------------------------------------------------------------------


class _Guild:
    """A guild's mutable state while a stream runs: joins, leaves, new threads and member edits stick."""

    __slots__ = (
        "channel_info",
        "emojis",
        "guild_id",
        "member_set",
        "members",
        "messageable",
        "role_ids",
        "thread_info",
        "threads",
        "voice_ids",
    )

    def __init__(self, layout: GuildLayout) -> None:
        self.guild_id = layout.guild_id
        self.role_ids = list(layout.role_ids)
        self.emojis = list(layout.emojis)
        self.members = list(layout.member_ids)
        self.member_set = set(self.members)
        self.channel_info: dict[int, tuple[int, int | None, int]] = {}
        positions: collections.Counter[int] = collections.Counter()
        for channel_id, kind, parent_id in layout.channels:
            group = 0 if kind in (_TEXT, _NEWS, _FORUM) else kind
            self.channel_info[channel_id] = (kind, parent_id, positions[group])
            positions[group] += 1
        self.messageable = [cid for cid, kind, _ in layout.channels if kind in _MESSAGEABLE]
        self.voice_ids = [cid for cid, kind, _ in layout.channels if kind in _VOICE_LIKE]
        self.threads = list(layout.threads)
        self.thread_info = {thread[0]: thread for thread in self.threads}


class _Stream:
    """Renders one dispatch at a time against the evolving state of a set of guilds."""

    __slots__ = (
        "app_id",
        "clock",
        "guild_weights",
        "guilds",
        "member_state",
        "reactions",
        "recent",
        "rng",
        "users",
    )

    def __init__(self, rng: random.Random, layouts: Sequence[GuildLayout], bot_user_id: int) -> None:
        self.rng = rng
        self.app_id = bot_user_id
        self.clock = _CORPUS_NOW_MS
        self.guilds = [_Guild(layout) for layout in layouts]
        self.guild_weights = list(itertools.accumulate(math.sqrt(max(len(g.members), 1)) for g in self.guilds))
        self.users: dict[int, JSONObject] = {}
        self.member_state: dict[tuple[int, int], JSONObject] = {}
        # (guild_id, channel_id, message_id, author_id) of messages sent during the stream.
        self.recent: collections.deque[tuple[int, int, int, int]] = collections.deque(maxlen=_RECENT_MESSAGES)
        # (guild_id, channel_id, message_id, user_id, emoji) of reactions added during the stream.
        self.reactions: collections.deque[tuple[int, int, int, int, JSONObject]] = collections.deque(maxlen=256)

    # -- entities ----------------------------------------------------------------------------------------------------

    def user(self, user_id: int) -> JSONObject:
        template = self.users.get(user_id)
        if template is None:
            template = self.users[user_id] = _user_template(user_id)
            if user_id == self.app_id:
                template["bot"] = True
        return {k: dict(v) if isinstance(v, dict) else v for k, v in template.items()}

    def member(self, guild: _Guild, user_id: int, *, with_user: bool = True) -> JSONObject:
        key = (guild.guild_id, user_id)
        template = self.member_state.get(key)
        if template is None:
            template = self.member_state[key] = _member_template(guild.guild_id, user_id, guild.role_ids)
            if user_id == self.app_id and guild.role_ids:
                template["roles"] = [str(guild.role_ids[-1])]
        member = dict(template)
        member["roles"] = list(template["roles"])
        if with_user:
            member["user"] = self.user(user_id)
        return member

    def channel(self, guild: _Guild, channel_id: int) -> JSONObject:
        if channel_id in guild.thread_info:
            _, thread_kind, thread_parent, owner_id = guild.thread_info[channel_id]
            return _thread_payload(
                channel_id, thread_kind, parent_id=thread_parent, guild_id=guild.guild_id, owner_id=owner_id
            )
        kind, parent_id, position = guild.channel_info.get(channel_id, (_TEXT, None, 0))
        payload = _channel_payload(
            channel_id,
            kind,
            position=position,
            parent_id=parent_id,
            guild_id=guild.guild_id,
            role_ids=guild.role_ids,
            emojis=guild.emojis,
        )
        payload["guild_id"] = str(guild.guild_id)
        return payload

    # -- choices -----------------------------------------------------------------------------------------------------

    def tick(self) -> int:
        self.clock += 1 + int(self.rng.expovariate(1 / 12))
        return self.clock

    def new_id(self) -> int:
        return _snowflake(self.rng, self.clock)

    def pick_guild(self) -> _Guild:
        total = self.guild_weights[-1]
        return self.guilds[bisect.bisect_right(self.guild_weights, self.rng.random() * total)]

    def pick_member(self, guild: _Guild) -> int:
        return self.rng.choice(guild.members) if guild.members else self.app_id

    def pick_channel(self, guild: _Guild) -> int:
        rng = self.rng
        if guild.threads and rng.random() < 0.12:
            return rng.choice(guild.threads)[0]
        if guild.voice_ids and rng.random() < 0.04:
            return rng.choice(guild.voice_ids)  # text-in-voice
        if guild.messageable:
            # Traffic concentrates in a guild's first few channels (#general and friends).
            index = min(len(guild.messageable) - 1, int(rng.expovariate(0.35)))
            return guild.messageable[index]
        return guild.guild_id

    def pick_recent(self, guild: _Guild) -> tuple[int, int, int]:
        """A message in ``guild`` sent earlier in the stream, else one from before it: (channel, message, author)."""
        for _ in range(4):
            if not self.recent:
                break
            guild_id, channel_id, message_id, author_id = self.recent[
                -1 - int(self.rng.expovariate(0.08)) % len(self.recent)
            ]
            if guild_id == guild.guild_id:
                return channel_id, message_id, author_id
        return (
            self.pick_channel(guild),
            _snowflake(self.rng, _CORPUS_NOW_MS - 1 - self.rng.randrange(10**8)),
            self.pick_member(guild),
        )

    def emoji(self, guild: _Guild) -> JSONObject:
        if guild.emojis and self.rng.random() < 0.3:
            emoji_id, name, animated = self.rng.choice(guild.emojis)
            payload: JSONObject = {"name": name, "id": str(emoji_id)}
            if animated:
                payload["animated"] = True
            return payload
        return {"name": self.rng.choice(_UNICODE_EMOJI), "id": None}

    # -- messages ----------------------------------------------------------------------------------------------------

    def attachment(self, channel_id: int, *, ephemeral: bool = False) -> JSONObject:
        rng = self.rng
        attachment_id = self.new_id()
        extension, content_type, visual = rng.choice(_CONTENT_TYPES)
        filename = f"{rng.choice(_FILE_STEMS)}.{extension}"
        signature = f"?ex={rng.getrandbits(32):08x}&is={rng.getrandbits(32):08x}&hm={_hex(rng, 32)}&"
        path = f"attachments/{channel_id}/{attachment_id}/{filename}{signature}"
        payload: JSONObject = {
            "id": str(attachment_id),
            "filename": filename,
            "size": int(rng.lognormvariate(11, 1.6)) + 1,
            "url": f"https://cdn.discordapp.com/{path}",
            "proxy_url": f"https://media.discordapp.net/{path}",
            "content_type": content_type,
            "content_scan_version": 2,
        }
        if visual:
            payload.update(
                width=rng.choice((320, 640, 1080, 1280, 1920, 2560)),
                height=rng.choice((240, 480, 720, 1080, 1440)),
                placeholder=_token(rng, 28) + "==",
                placeholder_version=1,
            )
        if rng.random() < 0.05:
            payload["description"] = _text(rng, words=rng.randrange(3, 12))
        if ephemeral:
            payload["ephemeral"] = True
        return payload

    def embed(self, url: str | None, *, rich: bool) -> JSONObject:
        rng = self.rng
        thumb_path = f"external/{_token(rng, 43)}/https/i.example.com/{_hex(rng, 6)}.jpg"
        thumbnail = {
            "url": f"https://i.example.com/{_hex(rng, 6)}.jpg",
            "proxy_url": f"https://images-ext-1.discordapp.net/{thumb_path}",
            "width": rng.choice((400, 640, 1280)),
            "height": rng.choice((225, 360, 720)),
            "placeholder": _token(rng, 24),
            "placeholder_version": 1,
            "flags": 0,
        }
        if rich:
            fields = [
                {
                    "name": _text(rng, words=rng.randrange(1, 4)),
                    "value": _text(rng, words=rng.randrange(1, 20)),
                    "inline": rng.random() < 0.6,
                }
                for _ in range(rng.choice((0, 1, 2, 3, 5)))
            ]
            embed: JSONObject = {
                "type": "rich",
                "title": _text(rng, words=rng.randrange(2, 9)),
                "description": _text(rng, words=rng.randrange(5, 60)),
                "color": rng.randrange(0xFFFFFF),
                "fields": fields,
                "timestamp": _iso(self.clock),
                "content_scan_version": 0,
            }
            if rng.random() < 0.5:
                embed["footer"] = {
                    "text": _text(rng, words=rng.randrange(2, 8)),
                    "icon_url": "https://cdn.discordapp.com/embed/avatars/0.png",
                    "proxy_icon_url": "https://images-ext-1.discordapp.net/external/abc/https/cdn.discordapp.com/embed/avatars/0.png",
                }
            if rng.random() < 0.4:
                embed["author"] = {"name": rng.choice(_DISPLAY_NAMES), "url": rng.choice(_URLS)}
            if rng.random() < 0.3:
                embed["thumbnail"] = thumbnail
            return embed
        url = url or rng.choice(_URLS)
        if "youtube" in url:
            return {
                "type": "video",
                "url": url,
                "title": _text(rng, words=rng.randrange(4, 12)),
                "description": _text(rng, words=rng.randrange(10, 60)),
                "color": 16711680,
                "author": {
                    "name": rng.choice(_DISPLAY_NAMES),
                    "url": "https://www.youtube.com/channel/UC" + _token(rng, 22),
                },
                "provider": {"name": "YouTube", "url": "https://www.youtube.com"},
                "thumbnail": thumbnail,
                "video": {
                    "url": "https://www.youtube.com/embed/" + _token(rng, 11),
                    "width": 1280,
                    "height": 720,
                    "flags": 0,
                },
                "content_scan_version": 0,
            }
        return {
            "type": rng.choice(("article", "link", "link", "image")),
            "url": url,
            "title": _text(rng, words=rng.randrange(3, 12)),
            "description": _text(rng, words=rng.randrange(8, 45)),
            "provider": {"name": url.split("/")[2]},
            "thumbnail": thumbnail,
            "content_scan_version": 0,
        }

    def message(
        self,
        guild: _Guild,
        channel_id: int,
        author_id: int,
        *,
        message_id: int,
        edited: bool = False,
        referenced: bool = True,
        with_member: bool = True,
    ) -> JSONObject:
        rng = self.rng
        mentioned: list[int] = []
        urls: list[str] = []
        author = self.user(author_id)
        is_bot = bool(author.get("bot"))
        content = _message_content(
            rng,
            mentions=mentioned,
            user_ids=guild.members,
            channel_ids=guild.messageable,
            role_ids=guild.role_ids,
            emojis=guild.emojis,
            urls=urls,
        )
        embeds: list[JSONObject] = []
        if urls and rng.random() < 0.8:
            embeds.append(self.embed(urls[0], rich=False))
        if is_bot and rng.random() < 0.6:
            embeds.extend(self.embed(None, rich=True) for _ in range(rng.choice((1, 1, 1, 2))))
        elif rng.random() < 0.04:
            embeds.append(self.embed(None, rich=False))
        attachments = []
        if rng.random() < 0.14:
            attachments = [
                self.attachment(channel_id) for _ in range(_pick_weighted(rng, ((0.8, 1), (0.15, 2), (0.05, 4))))
            ]
        created_ms = _snowflake_ms(message_id)
        payload: JSONObject = {
            "type": 0,
            "tts": False,
            "timestamp": _iso(created_ms),
            "pinned": False,
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "id": str(message_id),
            "flags": 0,
            "embeds": embeds,
            "edited_timestamp": _iso(self.clock) if edited else None,
            "content": content,
            "components": [],
            "channel_type": _TEXT,
            "channel_id": str(channel_id),
            "author": author,
            "attachments": attachments,
            "guild_id": str(guild.guild_id),
        }
        if with_member:
            payload["member"] = self.member(guild, author_id, with_user=False)
        for user_id in dict.fromkeys(mentioned):
            mention = self.user(user_id)
            mention["member"] = self.member(guild, user_id, with_user=False)
            payload["mentions"].append(mention)
        if not edited and rng.random() < 0.7:
            payload["nonce"] = str(_snowflake(rng, created_ms - rng.randrange(1, 400)))
        if rng.random() < 0.01:
            payload["sticker_items"] = [{"name": rng.choice(_EMOJI_NAMES), "id": str(self.new_id()), "format_type": 1}]
        if referenced and rng.random() < 0.02:
            # A forward: the content lives in a snapshot of the original message.
            source_channel, source_id, source_author = self.pick_recent(guild)
            source = self.message(guild, source_channel, source_author, message_id=source_id, referenced=False)
            snapshot = {
                key: source[key]
                for key in ("type", "content", "embeds", "attachments", "timestamp", "edited_timestamp", "flags")
            }
            snapshot.update(mentions=[], mention_roles=[], components=[])
            payload.update(content="", embeds=[], attachments=[], mentions=[], flags=16384)
            payload["message_reference"] = {
                "type": 1,
                "channel_id": str(source_channel),
                "message_id": str(source_id),
                "guild_id": str(guild.guild_id),
            }
            payload["message_snapshots"] = [{"message": snapshot}]
        elif referenced and rng.random() < 0.15:
            ref_channel, ref_id, ref_author = self.pick_recent(guild)
            if ref_channel != channel_id:
                # Nothing recent in this channel: reply to a message from before the session.
                ref_id = _snowflake(rng, _CORPUS_NOW_MS - 1 - rng.randrange(10**8))
                ref_author = self.pick_member(guild)
            payload["type"] = 19
            payload["message_reference"] = {
                "type": 0,
                "channel_id": str(channel_id),
                "message_id": str(ref_id),
                "guild_id": str(guild.guild_id),
            }
            payload["referenced_message"] = self.message(
                guild, channel_id, ref_author, message_id=ref_id, referenced=False, with_member=False
            )
            if rng.random() < 0.8:
                mention = self.user(ref_author)
                mention["member"] = self.member(guild, ref_author, with_user=False)
                payload["mentions"].append(mention)
        return payload

    def bot_response(self, guild: _Guild, channel_id: int, invoker_id: int) -> JSONObject:
        """A message the bot sent in reply to a slash command, with buttons and a select menu."""
        rng = self.rng
        message = self.message(guild, channel_id, self.app_id, message_id=self.new_id(), referenced=False)
        message.update(type=20, webhook_id=str(self.app_id), application_id=str(self.app_id))
        message["interaction_metadata"] = {
            "user": self.user(invoker_id),
            "type": 2,
            "name": rng.choice(("poll", "play", "config", "roll")),
            "id": str(self.new_id()),
            "command_type": 1,
            "authorizing_integration_owners": {"0": str(guild.guild_id)},
        }
        buttons = [
            {
                "type": 2,
                "id": index + 2,
                "style": rng.choice((1, 2, 3, 4)),
                "label": label,
                "custom_id": f"poll:{message['id']}:{index}",
                "emoji": {"name": rng.choice(_UNICODE_EMOJI)},
            }
            for index, label in enumerate(
                rng.sample(("Yes", "No", "Maybe", "Skip ⏭", "Stop ⏹", "Queue"), rng.randrange(1, 5))
            )
        ]
        buttons.append(
            {"type": 2, "id": len(buttons) + 2, "style": 5, "label": "Docs", "url": "https://docs.hikari-py.dev"}
        )
        options = [
            {"label": label, "value": label.lower(), "description": _text(rng, words=4), "emoji": {"name": emoji}}
            for label, emoji in (("Rock", "🪨"), ("Paper", "📄"), ("Scissors", "✂️"))
        ]
        message["components"] = [
            {"type": 1, "id": 1, "components": buttons},
            {
                "type": 1,
                "id": 20,
                "components": [
                    {
                        "type": 3,
                        "id": 21,
                        "custom_id": "rps",
                        "options": options,
                        "placeholder": "Choose…",
                        "min_values": 1,
                        "max_values": 1,
                    }
                ],
            },
        ]
        return message

    # -- dispatches --------------------------------------------------------------------------------------------------

    def presence_update(self, guild: _Guild) -> JSONObject:
        user_id = self.pick_member(guild)
        payload = _presence_body(self.rng, user_id, self.clock, guild.emojis, online_only=False)
        if self.rng.random() < 0.12:
            payload["user"] = self.user(user_id)
        payload["guild_id"] = str(guild.guild_id)
        return payload

    def typing_start(self, guild: _Guild) -> JSONObject:
        user_id = self.pick_member(guild)
        return {
            "user_id": str(user_id),
            "timestamp": self.clock // 1000,
            "member": self.member(guild, user_id),
            "channel_id": str(self.pick_channel(guild)),
            "guild_id": str(guild.guild_id),
        }

    def message_create(self, guild: _Guild) -> JSONObject:
        rng = self.rng
        channel_id = self.pick_channel(guild)
        roll = rng.random()
        if roll < 0.02:
            payload = self.bot_response(guild, channel_id, self.pick_member(guild))
        elif roll < 0.05:
            # A webhook post (GitHub feed, RSS relay...): no member, the author is the webhook.
            webhook_id = _snowflake(random.Random(channel_id), _snowflake_ms(channel_id) + 1)
            payload = self.message(
                guild, channel_id, self.pick_member(guild), message_id=self.new_id(), with_member=False
            )
            payload["author"] = {
                "username": rng.choice(("GitHub", "RSS Feed", "Captain Hook", "Jenkins ☕")),
                "id": str(webhook_id),
                "global_name": None,
                "discriminator": "0000",
                "bot": True,
                "avatar": _hex(random.Random(webhook_id)),
            }
            payload["webhook_id"] = str(webhook_id)
            if rng.random() < 0.7:
                payload["embeds"].append(self.embed(None, rich=True))
        else:
            author_id = self.pick_member(guild)
            payload = self.message(guild, channel_id, author_id, message_id=self.new_id())
            self.recent.append((guild.guild_id, channel_id, int(payload["id"]), author_id))
        return payload

    def message_update(self, guild: _Guild) -> JSONObject:
        channel_id, message_id, author_id = self.pick_recent(guild)
        # Since 2024 MESSAGE_UPDATE carries the whole message; 20% are embed unfurls rather than edits.
        edited = self.rng.random() < 0.8
        payload = self.message(guild, channel_id, author_id, message_id=message_id, edited=edited, referenced=False)
        if not edited and not payload["embeds"]:
            payload["embeds"].append(self.embed(None, rich=False))
        return payload

    def forget(self, guild_id: int, message_ids: Sequence[int]) -> None:
        """Drop deleted messages, so later edits and reactions do not target them."""
        gone = set(message_ids)
        kept = [entry for entry in self.recent if entry[0] != guild_id or entry[2] not in gone]
        if len(kept) != len(self.recent):
            self.recent.clear()
            self.recent.extend(kept)

    def message_delete(self, guild: _Guild) -> JSONObject:
        channel_id, message_id, _ = self.pick_recent(guild)
        self.forget(guild.guild_id, (message_id,))
        return {"id": str(message_id), "channel_id": str(channel_id), "guild_id": str(guild.guild_id)}

    def message_delete_bulk(self, guild: _Guild) -> JSONObject:
        channel_id = self.pick_channel(guild)
        ids = [m for g, c, m, _ in self.recent if g == guild.guild_id and c == channel_id]
        count = max(2, min(100, int(self.rng.expovariate(1 / 15))))
        while len(ids) < count:
            ids.append(_snowflake(self.rng, _CORPUS_NOW_MS - 1 - self.rng.randrange(10**9)))
        self.forget(guild.guild_id, ids[:count])
        return {
            "ids": [str(i) for i in sorted(ids[:count])],
            "channel_id": str(channel_id),
            "guild_id": str(guild.guild_id),
        }

    def message_reaction_add(self, guild: _Guild) -> JSONObject:
        rng = self.rng
        channel_id, message_id, author_id = self.pick_recent(guild)
        user_id = self.pick_member(guild)
        emoji = self.emoji(guild)
        burst = rng.random() < 0.03
        self.reactions.append((guild.guild_id, channel_id, message_id, user_id, emoji))
        return {
            "user_id": str(user_id),
            "type": 1 if burst else 0,
            "message_id": str(message_id),
            "message_author_id": str(author_id),
            "member": self.member(guild, user_id),
            "emoji": emoji,
            "channel_id": str(channel_id),
            "burst": burst,
            "guild_id": str(guild.guild_id),
            "burst_colors": rng.sample(_BURST_COLORS, 2) if burst else [],
        }

    def message_reaction_remove(self, guild: _Guild) -> JSONObject:
        mine = [index for index, reaction in enumerate(self.reactions) if reaction[0] == guild.guild_id]
        if mine:
            _, channel_id, message_id, user_id, emoji = self.reactions[mine[0]]
            del self.reactions[mine[0]]
        else:
            channel_id, message_id, _ = self.pick_recent(guild)
            user_id, emoji = self.pick_member(guild), self.emoji(guild)
        return {
            "user_id": str(user_id),
            "type": 0,
            "message_id": str(message_id),
            "emoji": emoji,
            "channel_id": str(channel_id),
            "burst": False,
            "guild_id": str(guild.guild_id),
        }

    def voice_state_update(self, guild: _Guild) -> JSONObject:
        rng = self.rng
        user_id = self.pick_member(guild)
        channel_id = rng.choice(guild.voice_ids) if guild.voice_ids and rng.random() < 0.85 else None
        payload = {
            "member": self.member(guild, user_id),
            "user_id": str(user_id),
            "suppress": False,
            "session_id": _hex(random.Random(user_id ^ self.app_id)),
            "self_video": rng.random() < 0.05,
            "self_mute": rng.random() < 0.4,
            "self_deaf": rng.random() < 0.15,
            "request_to_speak_timestamp": None,
            "mute": False,
            "guild_id": str(guild.guild_id),
            "deaf": False,
            "channel_id": str(channel_id) if channel_id is not None else None,
        }
        if channel_id is not None and rng.random() < 0.08:
            payload["self_stream"] = True
        return payload

    def guild_member_update(self, guild: _Guild) -> JSONObject:
        rng = self.rng
        user_id = self.pick_member(guild)
        member = self.member(guild, user_id)
        template = self.member_state[(guild.guild_id, user_id)]
        roll = rng.random()
        if roll < 0.55 and guild.role_ids:
            roles = template["roles"]
            role = str(rng.choice(guild.role_ids))
            template["roles"] = sorted(set(roles) ^ {role}, key=int)
        elif roll < 0.8:
            template["nick"] = rng.choice((None, *_DISPLAY_NAMES, rng.choice(_NAME_PARTS)))
        elif roll < 0.9:
            template["communication_disabled_until"] = _iso(self.clock + rng.choice((60, 300, 3600, 86400)) * 1000)
        else:
            template["pending"] = False
            template["flags"] = template["flags"] | 2
        member.update({k: v for k, v in template.items() if k != "roles"}, roles=list(template["roles"]))
        member["guild_id"] = str(guild.guild_id)
        member["unusual_dm_activity_until"] = None
        return member

    def guild_member_add(self, guild: _Guild) -> JSONObject:
        user_id = _snowflake(self.rng, self.clock - self.rng.randrange(10**11))
        guild.members.append(user_id)
        guild.member_set.add(user_id)
        template = _member_template(guild.guild_id, user_id, ())
        template.update(joined_at=_iso(self.clock), pending=self.rng.random() < 0.3, premium_since=None, nick=None)
        self.member_state[(guild.guild_id, user_id)] = template
        member = self.member(guild, user_id)
        member["guild_id"] = str(guild.guild_id)
        return member

    def guild_member_remove(self, guild: _Guild) -> JSONObject:
        candidates = [m for m in guild.members if m != self.app_id]
        if len(candidates) > 1:
            user_id = self.rng.choice(candidates)
            guild.members.remove(user_id)
            guild.member_set.discard(user_id)
        else:
            user_id = _snowflake(self.rng, self.clock - self.rng.randrange(10**11))
        return {"user": self.user(user_id), "guild_id": str(guild.guild_id)}

    def channel_update(self, guild: _Guild) -> JSONObject:
        channel_id = self.rng.choice(list(guild.channel_info)) if guild.channel_info else self.pick_channel(guild)
        payload = self.channel(guild, channel_id)
        if "topic" in payload and self.rng.random() < 0.5:
            payload["topic"] = _text(self.rng, words=self.rng.randrange(3, 25))
        if "last_message_id" in payload:
            payload["last_message_id"] = str(self.new_id())
        return payload

    def new_thread(self, guild: _Guild, thread_id: int) -> tuple[int, int, int, int]:
        rng = self.rng
        parents = [cid for cid, (kind, _, _) in guild.channel_info.items() if kind in _THREAD_PARENTS]
        parent_id = rng.choice(parents) if parents else self.pick_channel(guild)
        parent_kind = guild.channel_info.get(parent_id, (_TEXT, None, 0))[0]
        kind = _NEWS_THREAD if parent_kind == _NEWS else _PRIVATE_THREAD if rng.random() < 0.1 else _PUBLIC_THREAD
        thread = (thread_id, kind, parent_id, self.pick_member(guild))
        guild.threads.append(thread)
        guild.thread_info[thread_id] = thread
        return thread

    def thread_create(self, guild: _Guild) -> JSONObject:
        thread_id, kind, parent_id, owner_id = self.new_thread(guild, self.new_id())
        payload = _thread_payload(thread_id, kind, parent_id=parent_id, guild_id=guild.guild_id, owner_id=owner_id)
        payload.update(message_count=0, total_message_sent=0, member_count=1, newly_created=True, last_message_id=None)
        payload["member"] = {
            "user_id": str(owner_id),
            "muted": False,
            "mute_config": None,
            "join_timestamp": _iso(self.clock),
            "id": str(thread_id),
            "flags": 1,
        }
        return payload

    def thread_update(self, guild: _Guild) -> JSONObject:
        if guild.threads:
            thread_id, kind, parent_id, owner_id = self.rng.choice(guild.threads)
            archived = self.rng.random() < 0.3
        else:
            # GUILD_CREATE lists active threads only: this is an archived one coming back to life.
            old_id = _snowflake(self.rng, _CORPUS_NOW_MS - 1 - self.rng.randrange(10**10))
            thread_id, kind, parent_id, owner_id = self.new_thread(guild, old_id)
            archived = False
        payload = _thread_payload(
            thread_id, kind, parent_id=parent_id, guild_id=guild.guild_id, owner_id=owner_id, archived=archived
        )
        payload["thread_metadata"]["archive_timestamp"] = _iso(self.clock)
        return payload

    def guild_role_update(self, guild: _Guild) -> JSONObject:
        if not guild.role_ids:
            return {
                "role": _role_payload(guild.guild_id, guild_id=guild.guild_id, position=0),
                "guild_id": str(guild.guild_id),
            }
        index = self.rng.randrange(len(guild.role_ids))
        role = _role_payload(guild.role_ids[index], guild_id=guild.guild_id, position=index + 1)
        role["color"] = role["colors"]["primary_color"] = self.rng.randrange(0xFFFFFF)
        return {"role": role, "guild_id": str(guild.guild_id)}

    def guild_members_chunk(self, guild: _Guild) -> JSONObject:
        # Mostly answers to a member search (REQUEST_GUILD_MEMBERS with a query or user ids): small chunks.
        rng = self.rng
        count = min(len(guild.members), _pick_weighted(rng, ((0.4, 1), (0.3, 10), (0.3, 40))))
        user_ids = rng.sample(guild.members, count) if count else []
        payload: JSONObject = {
            "members": [self.member(guild, user_id) for user_id in user_ids],
            "guild_id": str(guild.guild_id),
            "chunk_index": 0,
            "chunk_count": 1,
            "nonce": _hex(rng, 8),
        }
        if rng.random() < 0.3:
            payload["not_found"] = [str(_snowflake(rng, self.clock - rng.randrange(10**11)))]
        if rng.random() < 0.5:
            payload["presences"] = [
                _presence_body(rng, user_id, self.clock, guild.emojis, online_only=True) for user_id in user_ids
            ]
        return payload

    def interaction_create(self, guild: _Guild) -> JSONObject:
        rng = self.rng
        user_id = self.pick_member(guild)
        channel_id = self.pick_channel(guild)
        member = self.member(guild, user_id)
        member["permissions"] = rng.choice((_EVERYONE_PERMISSIONS, "2251799813685247", "1071698660929"))
        member["unusual_dm_activity_until"] = None
        channel = {
            k: v for k, v in self.channel(guild, channel_id).items() if k not in ("permission_overwrites", "version")
        }
        channel["permissions"] = _APP_PERMISSIONS
        locale = rng.choice(_LOCALES)
        payload: JSONObject = {
            "version": 1,
            "type": 2,
            "token": "aW50ZXJhY3Rpb246" + _token(rng, 180),
            "member": member,
            "locale": locale,
            "id": str(self.new_id()),
            "guild_locale": "en-US",
            "guild_id": str(guild.guild_id),
            "guild": {"locale": "en-US", "id": str(guild.guild_id), "features": []},
            "entitlements": [],
            "entitlement_sku_ids": [],
            "context": 0,
            "channel_id": str(channel_id),
            "channel": channel,
            "authorizing_integration_owners": {"0": str(guild.guild_id)},
            "attachment_size_limit": 26_214_400,
            "application_id": str(self.app_id),
            "app_permissions": _APP_PERMISSIONS,
        }
        kind = _pick_weighted(rng, ((0.55, "command"), (0.2, "autocomplete"), (0.25, "component")))
        if kind == "component":
            message = self.bot_response(guild, channel_id, self.pick_member(guild))
            payload["type"] = 3
            payload["message"] = message
            if rng.random() < 0.7:
                button = rng.choice(message["components"][0]["components"][:-1])
                payload["data"] = {"id": button["id"], "custom_id": button["custom_id"], "component_type": 2}
            else:
                payload["data"] = {
                    "values": [rng.choice(("rock", "paper", "scissors"))],
                    "id": 21,
                    "custom_id": "rps",
                    "component_type": 3,
                }
        elif kind == "autocomplete":
            payload["type"] = 4
            payload["data"] = {
                "version": str(_snowflake(random.Random(self.app_id), _CORPUS_NOW_MS - 10**9)),
                "type": 1,
                "options": [
                    {"value": _text(rng, words=rng.randrange(1, 4)), "type": 3, "name": "query", "focused": True}
                ],
                "name": "play",
                "id": str(self._command_id("play")),
            }
        else:
            payload["data"] = self._command_data(guild, channel_id)
        return payload

    def _command_id(self, name: str) -> int:
        return _snowflake(random.Random(f"{self.app_id}:{name}"), _CORPUS_NOW_MS - 10**10)

    def _command_data(self, guild: _Guild, channel_id: int) -> JSONObject:
        rng = self.rng
        resolved: dict[str, dict[str, JSONObject]] = {}

        def resolve_user(user_id: int) -> str:
            resolved.setdefault("users", {})[str(user_id)] = self.user(user_id)
            member = self.member(guild, user_id, with_user=False)
            member["permissions"] = _EVERYONE_PERMISSIONS
            resolved.setdefault("members", {})[str(user_id)] = member
            return str(user_id)

        def value(option_type: int) -> typing.Any:
            if option_type == 3:
                return _text(rng, words=rng.randrange(1, 12))
            if option_type == 4:
                return rng.randrange(1, 100)
            if option_type == 5:
                return rng.random() < 0.5
            if option_type == 6:
                return resolve_user(self.pick_member(guild))
            if option_type == 7:
                target = self.pick_channel(guild)
                channel = self.channel(guild, target)
                partial = {
                    "id": str(target),
                    "name": channel.get("name"),
                    "type": channel["type"],
                    "permissions": _APP_PERMISSIONS,
                    "parent_id": channel.get("parent_id"),
                    "guild_id": str(guild.guild_id),
                    "flags": 0,
                }
                if "thread_metadata" in channel:
                    partial["thread_metadata"] = channel["thread_metadata"]
                resolved.setdefault("channels", {})[str(target)] = partial
                return str(target)
            if option_type == 8:
                index = rng.randrange(len(guild.role_ids))
                role = _role_payload(guild.role_ids[index], guild_id=guild.guild_id, position=index + 1)
                resolved.setdefault("roles", {})[role["id"]] = role
                return role["id"]
            if option_type == 10:
                return round(rng.uniform(0, 48), 2)
            attachment = self.attachment(channel_id, ephemeral=True)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            return attachment["id"]

        commands: tuple[tuple[str, str | None, tuple[tuple[str, int], ...]], ...] = (
            ("play", None, (("query", 3),)),
            ("ban", None, (("user", 6), ("reason", 3), ("delete_days", 4))),
            ("roll", None, (("sides", 4), ("count", 4))),
            ("remind", None, (("when", 3), ("what", 3), ("channel", 7))),
            ("role", "add", (("member", 6), ("role", 8) if guild.role_ids else ("note", 3))),
            ("poll", None, (("question", 3), ("anonymous", 5), ("hours", 10))),
            ("upload", None, (("file", 11), ("caption", 3))),
            ("config", "set", (("key", 3), ("value", 3))),
            ("User Info", None, ()),
            ("Translate", None, ()),
        )
        name, sub, spec = rng.choice(commands)
        data: JSONObject = {"type": 1, "name": name, "id": str(self._command_id(name))}
        if name == "User Info":
            data.update(type=2, target_id=resolve_user(self.pick_member(guild)))
        elif name == "Translate":
            target_channel, target_id, target_author = self.pick_recent(guild)
            message = self.message(
                guild, target_channel, target_author, message_id=target_id, referenced=False, with_member=False
            )
            resolved["messages"] = {str(target_id): message}
            data.update(type=3, target_id=str(target_id))
        else:
            options: list[JSONObject] = [
                {"value": value(option_type), "type": option_type, "name": option_name}
                for option_name, option_type in spec
                if option_name in ("query", "user", "member", "what", "question", "file", "key") or rng.random() < 0.6
            ]
            if sub is not None:
                options = [{"type": 1, "name": sub, "options": options}]
                if name == "config":
                    options = [{"type": 2, "name": "guild", "options": options}]
            data["options"] = options
        if resolved:
            data["resolved"] = resolved
        if rng.random() < 0.3:
            data["guild_id"] = str(guild.guild_id)
        return data


def _schedule(rng: random.Random, count: int, mix: Mapping[str, float]) -> Iterator[str]:
    """Event names whose counts match ``mix`` exactly within each block (largest remainder), shuffled."""
    names = list(mix)
    total = sum(mix.values())
    if not names or total <= 0:
        raise ValueError("mix must name at least one event with a positive share")
    shares = [mix[name] / total for name in names]
    emitted = [0] * len(names)
    done = 0
    while done < count:
        block = min(_MIX_BLOCK, count - done)
        wanted = [max(0.0, share * (done + block) - sent) for share, sent in zip(shares, emitted, strict=True)]
        scale = block / (sum(wanted) or 1.0)
        exact = [want * scale for want in wanted]
        quotas = [int(value) for value in exact]
        by_remainder = sorted(range(len(names)), key=lambda i: (quotas[i] - exact[i], i))
        for index in by_remainder[: block - sum(quotas)]:
            quotas[index] += 1
        order = [names[index] for index, quota in enumerate(quotas) for _ in range(quota)]
        rng.shuffle(order)
        yield from order
        emitted = [sent + quota for sent, quota in zip(emitted, quotas, strict=True)]
        done += block


def dispatch_stream(
    rng: random.Random,
    *,
    count: int,
    guild_ids: Sequence[int] = (),
    channel_ids: Mapping[int, Sequence[int]] | Sequence[int] = (),
    user_ids: Mapping[int, Sequence[int]] | Sequence[int] = (),
    mix: Mapping[str, float] = DISPATCH_MIX,
    layouts: Sequence[GuildLayout] | None = None,
    bot_user_id: int = DEFAULT_USER_ID,
) -> Iterator[tuple[str, JSONObject]]:
    """Yield ``count`` ``(event_name, d)`` dispatches following ``mix``.

    The stream keeps state as it goes: members who join can then talk, members who leave fall
    silent, reactions, edits and deletes point at messages sent earlier, and member updates stick.

    Parameters
    ----------
    rng
        The source of every random choice.
    count
        How many dispatches to yield.
    guild_ids
        The guilds the traffic belongs to (ignored when ``layouts`` is given).
    channel_ids
        Text channel ids per guild id, or a flat sequence dealt round-robin across ``guild_ids``.
    user_ids
        Member user ids per guild id, or a flat sequence dealt round-robin across ``guild_ids``.
    mix
        Share per event name; every name must be one of :data:`DISPATCH_MIX`'s. Counts follow it
        exactly within each block of 10 000 dispatches.
    layouts
        Full guild layouts (voice channels, threads, roles, emojis too), usually
        :meth:`GuildLayout.from_guild_create` of the corpus's GUILD_CREATEs.
    bot_user_id
        The bot's user and application id (interactions, the bot's own messages).

    Returns
    -------
    Iterator[tuple[str, dict]]
        ``(event_name, d)`` per dispatch.

    Raises
    ------
    ValueError
        If ``mix`` names an event without a generator, or no guild is given.
    """
    unknown = set(mix) - set(DISPATCH_MIX)
    if unknown:
        raise ValueError(f"no generator for {sorted(unknown)}")
    if layouts is None:
        guild_ids = [int(guild_id) for guild_id in guild_ids]
        if not guild_ids:
            raise ValueError("give guild_ids (with channel_ids and user_ids) or layouts")
        channels_by_guild = _deal(channel_ids, guild_ids)
        users_by_guild = _deal(user_ids, guild_ids)
        layouts = [
            GuildLayout(
                guild_id=guild_id,
                channels=tuple((channel_id, _TEXT, None) for channel_id in channels_by_guild[guild_id]),
                member_ids=tuple(users_by_guild[guild_id]),
            )
            for guild_id in guild_ids
        ]
    if not layouts:
        raise ValueError("layouts must not be empty")
    if count < 0:
        raise ValueError("count must not be negative")
    return _run(_Stream(rng, layouts, bot_user_id), count, mix)


def _run(stream: _Stream, count: int, mix: Mapping[str, float]) -> Iterator[tuple[str, JSONObject]]:
    render: dict[str, typing.Callable[[_Guild], JSONObject]] = {name: getattr(stream, name.lower()) for name in mix}
    for name in _schedule(stream.rng, count, mix):
        stream.tick()
        yield name, render[name](stream.pick_guild())


# ---------------------------------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Corpus:
    """A session's worth of gateway traffic: READY, the GUILD_CREATEs, then the dispatch stream."""

    ready: JSONObject
    """The READY ``d``."""
    guild_creates: list[JSONObject]
    """One GUILD_CREATE ``d`` per guild in READY, in the same order."""
    dispatches: list[tuple[str, JSONObject]]
    """``(event_name, d)`` per dispatch after the guilds arrived."""

    def names(self) -> list[str]:
        """Return the dispatch stream's event names, in order.

        Returns
        -------
        list[str]
            One name per dispatch.
        """
        return [name for name, _ in self.dispatches]

    def events(self) -> Iterator[tuple[str, JSONObject]]:
        """Iterate over every dispatch a shard would receive, in order.

        Yields
        ------
        tuple[str, dict]
            ``("READY", ...)``, each ``("GUILD_CREATE", ...)``, then the dispatch stream.
        """
        yield "READY", self.ready
        for guild in self.guild_creates:
            yield "GUILD_CREATE", guild
        yield from self.dispatches

    def dispatch_sizes(self) -> list[int]:
        """Return the ``orjson.dumps`` length of each dispatch payload.

        Returns
        -------
        list[int]
            One size in bytes per dispatch.
        """
        return [len(orjson.dumps(payload)) for _, payload in self.dispatches]

    def mean_dispatch_bytes(self) -> float:
        """Return the mean ``orjson.dumps`` length of the dispatch payloads.

        Returns
        -------
        float
            Bytes per dispatch; about 860 (0.86 kB) for the default mix.
        """
        sizes = self.dispatch_sizes()
        return sum(sizes) / len(sizes) if sizes else 0.0

    def total_json_bytes(self) -> int:
        """Return the ``orjson.dumps`` length of every payload (READY, GUILD_CREATEs, dispatches) summed.

        Returns
        -------
        int
            Bytes of ``d`` payloads, excluding the ``op``/``s``/``t`` envelope.
        """
        return sum(len(orjson.dumps(payload)) for _, payload in self.events())


def _spread_sizes(rng: random.Random, guilds: int, mean: int) -> list[int]:
    """Member counts for ``guilds`` guilds averaging ``mean``, spread log-uniformly over about 1:8."""
    weights = [math.exp(rng.uniform(-1.4, 0.7)) for _ in range(guilds)]
    scale = mean * guilds / sum(weights)
    return [max(2, round(weight * scale)) for weight in weights]


def build_corpus(
    *,
    seed: int = 0,
    dispatches: int = 10_000,
    guilds: int = 4,
    guild_members: int = 500,
    user_id: int = DEFAULT_USER_ID,
    session_id: str = DEFAULT_SESSION_ID,
    resume_url: str = DEFAULT_RESUME_URL,
    shard: tuple[int, int] = (0, 1),
    huge_guild_bytes: int | None = None,
) -> Corpus:
    """Build a deterministic corpus: the same arguments give byte-identical payloads.

    Parameters
    ----------
    seed
        Seeds the one :class:`random.Random` everything is drawn from.
    dispatches
        Length of the dispatch stream.
    guilds
        Guilds the shard receives.
    guild_members
        Mean member objects per GUILD_CREATE; sizes spread over about 1:8 around it, and users
        are shared between guilds.
    user_id
        The bot's user and application id.
    session_id
        The READY session id.
    resume_url
        The READY ``resume_gateway_url``.
    shard
        ``(shard_id, shard_count)``; every guild id routes to this shard.
    huge_guild_bytes
        Append one more guild whose GUILD_CREATE is this large (see :func:`large_guild_create`).
        It is drawn from its own generator and stays out of the dispatch stream, so the rest of
        the corpus is the same with or without it.

    Returns
    -------
    Corpus
        READY, the GUILD_CREATEs and the dispatch stream.
    """
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"invalid shard {shard!r}")
    rng = random.Random(seed)
    sizes = _spread_sizes(rng, guilds, guild_members)
    user_pool = [
        _snowflake(rng, rng.randrange(_DISCORD_EPOCH_MS + 10**10, _CORPUS_NOW_MS - 10**9))
        for _ in range(int(sum(sizes) * 0.8) + 1)
    ]
    guild_ids = [
        _shard_snowflake(rng, rng.randrange(_DISCORD_EPOCH_MS + 10**10, _CORPUS_NOW_MS - 10**10), shard) for _ in sizes
    ]
    guild_creates = [
        guild_create_payload(rng, guild_id, members=size, member_ids=user_pool, bot_user_id=user_id)
        for guild_id, size in zip(guild_ids, sizes, strict=True)
    ]
    layouts = [GuildLayout.from_guild_create(guild) for guild in guild_creates]
    stream = list(dispatch_stream(rng, count=dispatches, layouts=layouts, bot_user_id=user_id))
    if huge_guild_bytes is not None:
        huge_rng = random.Random(f"hikari-shard huge guild {seed}")
        huge_id = _shard_snowflake(huge_rng, _CORPUS_NOW_MS - 10**11, shard)
        guild_creates.append(large_guild_create(huge_rng, huge_id, target_bytes=huge_guild_bytes, bot_user_id=user_id))
        guild_ids.append(huge_id)
    ready = ready_payload(
        random.Random(f"hikari-shard ready {seed}"),
        user_id=user_id,
        session_id=session_id,
        resume_url=resume_url,
        guild_ids=guild_ids,
        shard=shard,
    )
    return Corpus(ready=ready, guild_creates=guild_creates, dispatches=stream)
