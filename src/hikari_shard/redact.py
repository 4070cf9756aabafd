"""Redaction of recorded gateway traffic, so a recording can be shared and still benchmark the same.

A :class:`Redactor` rewrites the ``d`` of each dispatch; ``docs/redaction.md`` states exactly what
survives and why.  In short:

- every string of 15 to 21 digits (a snowflake, as a value or as an object key) is replaced,
  every digit of it, by a fake id of the same length, the same one every time in one recording.
  The fake id of a plausible snowflake keeps the creation time *shifted by the recording's
  secret offset* (so it agrees with the shifted timestamps), its low 22 bits are random; any
  other digit string gets random digits;
- ISO timestamps (and the numeric timestamps of typing events and activities) are shifted by
  that offset, a random whole number of seconds between 180 days and 3 years, the same for the
  whole recording: intervals, order and sizes replay the same, the real times do not survive;
- user-supplied numbers (interaction option values, message nonces) are replaced by numbers of
  the same length and sign;
- every other string is free text and is replaced by a placeholder with the same length in
  UTF-8 bytes, the same text always by the same placeholder, so payload sizes and compression
  behave like the original;
- object keys survive only when they are documented field names (:data:`FIELD_NAMES`) or
  snowflakes (replaced); any other key is replaced by a placeholder of the same length;
- kept as they are: other numbers, booleans, ``null``, key order, and the strings of a few
  enumeration-like fields *at their documented place* in the payload's shape (:data:`KEPT_FIELDS`:
  presence statuses, embed types, locales, guild features, permission bit sets, MIME types, ...).

``op``, ``t`` and ``s`` are kept.
"""

from __future__ import annotations

__all__ = ("FIELD_NAMES", "KEPT_FIELDS", "KEPT_KEYS", "Redactor", "redact_file")

import datetime
import hashlib
import hmac
import pathlib
import random
import re
import secrets
import time
import typing

import orjson

if typing.TYPE_CHECKING:
    import os

_KEEP: typing.Final = "keep"
_KEEP_ALL: typing.Final = "keep[]"
_TEXT: typing.Final = "text"
_NUMBER: typing.Final = "number"
_MILLISECONDS: typing.Final = "ms"
_SECONDS: typing.Final = "s"

# The documented shape of the payloads, as far as redaction cares: for each kind of object, the fields
# whose value is kept (an enumeration or bit set), always free text, user-supplied numbers, numeric
# timestamps, or another kind of object ("kind" an object, "kind[]" a list of them, "kind{}" an object of
# them by snowflake).  A field not listed is redacted by what it holds.
_SHAPES: typing.Final[dict[str, dict[str, str]]] = {
    "guild": {
        "features": _KEEP_ALL,
        "preferred_locale": _KEEP,
        "region": _KEEP,
        "roles": "role[]",
        "channels": "channel[]",
        "threads": "channel[]",
        "members": "member[]",
        "presences": "presence[]",
        "voice_states": "voice_state[]",
        "emojis": "emoji[]",
        "stickers": "sticker[]",
    },
    "role": {"permissions": _KEEP},
    "role_event": {"role": "role"},
    "emoji": {"user": "user"},
    "sticker": {"user": "user", "tags": _TEXT},
    "user": {},
    "member": {"user": "user", "permissions": _KEEP},
    "overwrite": {"allow": _KEEP, "deny": _KEEP},
    "channel": {
        "permission_overwrites": "overwrite[]",
        "rtc_region": _KEEP,
        "permissions": _KEEP,
        "member": "thread_member",
        "topic": _TEXT,
        "name": _TEXT,
    },
    "thread_member": {"member": "member", "presence": "presence"},
    "thread_list": {"threads": "channel[]", "members": "thread_member[]"},
    "thread_members": {"added_members": "thread_member[]"},
    "presence": {"user": "user", "status": _KEEP, "client_status": "client_status", "activities": "activity[]"},
    "client_status": {"desktop": _KEEP, "mobile": _KEEP, "web": _KEEP, "embedded": _KEEP},
    "activity": {"platform": _KEEP, "created_at": _MILLISECONDS, "timestamps": "activity_timestamps"},
    "activity_timestamps": {"start": _MILLISECONDS, "end": _MILLISECONDS},
    "voice_state": {"member": "member"},
    "members_chunk": {"members": "member[]", "presences": "presence[]"},
    "message": {
        "content": _TEXT,
        "nonce": _NUMBER,
        "author": "user",
        "member": "member",
        "mentions": "user[]",
        "embeds": "embed[]",
        "attachments": "attachment[]",
        "reactions": "reaction[]",
        "referenced_message": "message",
        "message_snapshots": "snapshot[]",
        "thread": "channel",
        "interaction_metadata": "interaction_metadata",
    },
    "interaction_metadata": {"user": "user", "triggering_interaction_metadata": "interaction_metadata"},
    "snapshot": {"message": "message"},
    "embed": {"type": _KEEP, "title": _TEXT, "description": _TEXT, "fields": "embed_field[]"},
    "embed_field": {"name": _TEXT, "value": _TEXT},
    "attachment": {"content_type": _KEEP, "filename": _TEXT, "description": _TEXT},
    "reaction": {"burst_colors": _KEEP_ALL},
    "reaction_event": {"member": "member", "burst_colors": _KEEP_ALL},
    "typing": {"timestamp": _SECONDS, "member": "member"},
    "interaction": {
        "locale": _KEEP,
        "guild_locale": _KEEP,
        "app_permissions": _KEEP,
        "member": "member",
        "user": "user",
        "channel": "channel",
        "message": "message",
        "data": "interaction_data",
    },
    "interaction_data": {"options": "option[]", "resolved": "resolved", "custom_id": _TEXT},
    "option": {"options": "option[]"},  # "value" by the option's type, see Redactor._option
    "resolved": {
        "users": "user{}",
        "members": "member{}",
        "roles": "role{}",
        "channels": "channel{}",
        "messages": "message{}",
        "attachments": "attachment{}",
    },
    "ready": {"session_type": _KEEP, "geo_ordered_rtc_regions": _KEEP_ALL, "user": "user"},
}

_EVENT_SHAPES: typing.Final[dict[str, str]] = {
    "READY": "ready",
    "GUILD_CREATE": "guild",
    "GUILD_UPDATE": "guild",
    "GUILD_ROLE_CREATE": "role_event",
    "GUILD_ROLE_UPDATE": "role_event",
    "GUILD_MEMBER_ADD": "member",
    "GUILD_MEMBER_UPDATE": "member",
    "GUILD_MEMBERS_CHUNK": "members_chunk",
    "CHANNEL_CREATE": "channel",
    "CHANNEL_UPDATE": "channel",
    "CHANNEL_DELETE": "channel",
    "THREAD_CREATE": "channel",
    "THREAD_UPDATE": "channel",
    "THREAD_DELETE": "channel",
    "THREAD_LIST_SYNC": "thread_list",
    "THREAD_MEMBER_UPDATE": "thread_member",
    "THREAD_MEMBERS_UPDATE": "thread_members",
    "PRESENCE_UPDATE": "presence",
    "MESSAGE_CREATE": "message",
    "MESSAGE_UPDATE": "message",
    "MESSAGE_REACTION_ADD": "reaction_event",
    "TYPING_START": "typing",
    "VOICE_STATE_UPDATE": "voice_state",
    "INTERACTION_CREATE": "interaction",
}

KEPT_FIELDS: typing.Final[frozenset[str]] = frozenset(
    f"{kind}.{field}"
    for kind, fields in _SHAPES.items()
    for field, rule in fields.items()
    if rule in {_KEEP, _KEEP_ALL}
)
"""The fields (``kind.field``) whose strings are kept: enumerations and bit sets, only at their documented place."""

KEPT_KEYS: typing.Final[frozenset[str]] = frozenset(field.partition(".")[2] for field in KEPT_FIELDS)
"""The names of :data:`KEPT_FIELDS` (their strings are kept only where the payload's shape puts them)."""

FIELD_NAMES: typing.Final[frozenset[str]] = frozenset(  # a word list, not 546 lines of a literal
    """
    0 1 _trace accent_color access_token accessory account action action_type actions activities activity
    activity_instance activity_instance_id activity_instances added_members afk_channel_id afk_timeout
    alert_system_message_id allow allow_list allow_multiselect animated answer_counts answer_id answers
    app_permissions application application_command_counts application_id applied_tags approximate_guild_count
    approximate_member_count approximate_presence_count approximate_user_install_count archive_timestamp
    archived asset assets attachment_size_limit attachments audit_log_entries auth author
    authorizing_integration_owners auto_archive_duration auto_moderation_rules autocomplete available
    available_tags avatar avatar_decoration_data badge banned_users banner banner_asset_id bg bitrate bot bot_id
    bot_public bot_require_code_grant burst burst_colors buttons by_month by_month_day by_n_weekday by_weekday
    by_year_day changes channel channel_id channel_ids channel_type channel_types channels choices chunk_count
    chunk_index clan client_status code collectibles color colors command_type communication_disabled_until
    component_type components consumed content content_scan_version content_type context contexts count
    count_details cover_image cover_sticker_id create_timestamp created_at creator creator_id cs custom
    custom_id custom_install_url da data day de deaf default default_auto_archive_duration default_channel_ids
    default_forum_layout default_member_permissions default_message_notifications default_reaction_emoji
    default_sort_order default_thread_rate_limit_per_user delete_member_days deleted deny deprecated description
    description_localizations desktop details disabled discoverable_disabled discovery_splash discriminator
    divider dm_spam_detected_at dms_disabled_until documents_indexed doing_deep_historical_index
    duration_seconds duration_secs edited_timestamp el email embedded embedded_activities embeds emoji emoji_id
    emoji_name emojis en-GB en-US enable_emoticons enabled end endpoint ends_at entitlement_sku_ids entitlements
    entity_metadata entity_type ephemeral es-419 es-ES event_type event_webhooks_status event_webhooks_types
    event_webhooks_url exempt_channels exempt_roles expire_behavior expire_grace_period expires expires_at
    expires_in expiry explicit_content_filter failed_users features fi fields file filename flags focused footer
    format format_type fr frequency friend_sync game_relationships geo_ordered_rtc_regions global_name guild
    guild_id guild_join_requests guild_locale guild_scheduled_event guild_scheduled_event_id
    guild_scheduled_events guilds height hi hoist home_header hr hu hub_type icon icon_hash icon_url id
    identity_enabled identity_guild_id ids image in_onboarding incidents_data inline install_params instance
    instance_id integration_id integration_types integration_types_config integrations interacted_message_id
    interaction interaction_metadata interval inventory_settings invitable inviter invites_disabled_until
    is_dirty is_finalized it items ja join join_timestamp joined_at key keyword_filter kind ko label large
    large_image large_text last_message_id last_pin_timestamp latest_onboarding_question_id launch_id
    layout_type lazy loading_state locale location locked lt managed match matched_content matched_keyword
    max_age max_concurrency max_length max_members max_presences max_stage_video_channel_users max_uses
    max_value max_values max_video_channel_users me me_burst me_voted media member member_count members
    members_removed membership_state mention_channels mention_everyone mention_raid_protection_enabled
    mention_roles mention_total_limit mentionable mentions message message_author_id message_count message_id
    message_reference message_snapshots messages meta metadata mfa_enabled mfa_level min_length min_value
    min_values mobile mode moderated mute mute_config muted n name name_localizations nameplate new_value
    newly_created nick nicks nl no nonce normal not_found nsfw nsfw_level oauth2_install_params old_value opcode
    optimal options original_response_message_id owner owner_id owner_user_id pack_id palette parent_id party
    party_id pending permission permission_overwrites permissions pinned pinned_at pl placeholder
    placeholder_version platform platform_name platform_username poll poll_media position preferred_locale
    premium_progress_bar_enabled premium_since premium_subscriber premium_subscription_count premium_tier
    premium_type presence presences presets primary_color primary_guild privacy_level privacy_policy_url
    private_channels prompts provider proxy_icon_url proxy_url pt-BR public_flags public_updates_channel_id
    question raid_detected_at rate_limit_per_user reactions reason recipients recurrence_rule referenced_message
    refresh_token regex_patterns region relationships remaining removed_member_ids request_to_speak_timestamp
    require_colons required reset_after resolved resource response_message_ephemeral response_message_id
    response_message_loading results resume_gateway_url retry_after revoked ro role
    role_connections_verification_url role_id role_ids role_name roles rpc_origins rtc_region ru rule_id
    rule_trigger_type rules_channel_id safety_alerts_channel_id scheduled_end_time scheduled_start_time scope
    scopes secondary_color secrets self_deaf self_mute self_stream self_video serialized_source_guild session_id
    session_start_limit session_type shard shards show_activity single_select size sku_id slug small_image
    small_text sort_value soundboard_sounds source_channel source_guild source_guild_id spacing spectate splash
    spoiler stage_instances start starts_at state status sticker_items stickers style subscriber_count
    subscription_id subscription_listing_id suppress sv-SE sync_id synced_at syncing system system_channel_flags
    system_channel_id tag tags target_application target_id target_message_id target_type target_user team
    team_id template temporary terms_of_service_url tertiary_color text th thread thread_metadata threads
    thumbnail timestamp timestamps title token token_type topic total total_message_sent total_results tr
    trigger_metadata trigger_type triggering_interaction_metadata tts type uk unavailable unicode_emoji
    unusual_dm_activity_until updated_at url usage_count user user_count user_id user_limit user_settings
    username users uses v value values vanity_url_code verification_level verified verify_key version vi video
    video_quality_mode visibility voice_start_time voice_states waveform web webhook webhook_id webhooks
    welcome_channels welcome_screen widget_channel_id widget_enabled width zh-CN zh-TW
    """.split()  # noqa: SIM905
)
"""Object keys that survive as they are: the gateway's documented field names (hikari's, Discord's), locales."""

_SNOWFLAKE: typing.Final = re.compile(r"[0-9]{15,21}")
_TIMESTAMP: typing.Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
_DISCORD_EPOCH_MS: typing.Final = 1_420_070_400_000
_MAX_SNOWFLAKE: typing.Final = (1 << 63) - 1
_SHIFT_DAYS: typing.Final = (180, 3 * 365)
_FILLER_SIZE: typing.Final = 1 << 16
_OPTION_IDS: typing.Final = frozenset((6, 7, 8, 9, 11))  # USER, CHANNEL, ROLE, MENTIONABLE, ATTACHMENT
_OPTION_NUMBERS: typing.Final = frozenset((4, 10))  # INTEGER, NUMBER
# Replacement characters for non-ASCII text, by UTF-8 width.
_WIDE: typing.Final[dict[int, str]] = {2: "éàüöñçåøßæ", 3: "あいうえおかきくけこ", 4: "😀😁😂😃😄😅😆😇😈😉"}


class Redactor:
    """Redact gateway payloads consistently (one instance per recording).

    Parameters
    ----------
    key
        The secret that derives fake ids and the time offset; random by default (so a recording
        cannot be un-mapped).
    """

    __slots__ = (
        "_filler",
        "_ids",
        "_key",
        "_key_fakes",
        "_keys",
        "_newest",
        "_numbers",
        "_rng",
        "_shift",
        "_taken",
        "_texts",
    )

    def __init__(self, *, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)
        self._rng = random.Random(self._key)
        self._ids: dict[str, str] = {}
        self._taken: set[str] = set()
        self._texts: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._key_fakes: set[str] = set()
        self._numbers: dict[int | float, int | float] = {}
        low, high = _SHIFT_DAYS
        self._shift = self._rng.randint(low * 86_400, high * 86_400) * 1_000
        # Snowflakes newer than this (a day from now) cannot be real ids: they get random digits.
        self._newest = int(time.time() * 1_000) - _DISCORD_EPOCH_MS + 86_400_000
        words = ["".join(self._rng.choices("etaoinshrdlucmfwypvbgk", k=self._rng.randint(2, 8))) for _ in range(400)]
        filler: list[str] = []
        size = 0
        while size < _FILLER_SIZE:
            word = self._rng.choice(words)
            filler.append(word)
            size += len(word) + 1
        self._filler = " ".join(filler)

    @property
    def shift_ms(self) -> int:
        """The secret offset added to every time in this recording, in milliseconds (never written out)."""
        return self._shift

    def _digits(self, value: str, counter: int, width: int) -> str:
        digest = hmac.new(self._key, f"{value}:{counter}".encode(), hashlib.sha256).digest()
        number = int.from_bytes(digest, "big")
        return str(1 + number % 9) + str(number // 9 % 10 ** (width - 1)).zfill(width - 1)

    def snowflake(self, value: str) -> str:
        """Return the fake id of ``value`` (a string of digits), the same one every time; every digit is replaced."""
        fake = self._ids.get(value)
        if fake is not None:
            return fake
        number = int(value)
        created = number >> 22
        timed = len(value) >= 17 and number <= _MAX_SNOWFLAKE and created <= self._newest
        counter = 0
        while True:
            random_digits = self._digits(value, counter, len(value))
            fake = random_digits
            if timed:
                # The shifted creation time, so that the fake id agrees with the shifted timestamps.
                shifted = ((created + self._shift) << 22) | (int(random_digits) & 0x3FFFFF)
                if len(str(shifted)) == len(value) and shifted <= _MAX_SNOWFLAKE:
                    fake = str(shifted)
            if fake != value and fake not in self._taken and fake not in self._ids:
                break
            counter += 1
        self._ids[value] = fake
        self._taken.add(fake)
        return fake

    def timestamp(self, value: str) -> str:
        """Return the ISO timestamp ``value`` shifted by the recording's offset, written the same way."""
        match = _TIMESTAMP.fullmatch(value)
        if match is None:
            return self.text(value)
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        try:
            moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
            if fraction:
                moment += datetime.timedelta(microseconds=int(fraction[1:].ljust(6, "0")))
            moment += datetime.timedelta(milliseconds=self._shift)
        except (ValueError, OverflowError):
            return self.text(value)
        if not 1000 <= moment.year <= 9999:
            return self.text(value)
        shifted = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if fraction:
            shifted += "." + f"{moment.microsecond:06d}"[: len(fraction) - 1]
        return shifted + (zone or "")

    def number(self, value: int | float) -> int | float:
        """Return a user-supplied number replaced by one with as many digits and the same sign, the same every time."""
        if type(value) is bool:
            return value
        fake = self._numbers.get(value)
        if fake is not None:
            return fake
        text = str(abs(value))
        counter = 0
        while True:
            digest = hmac.new(self._key, f"number:{text}:{counter}".encode(), hashlib.sha256).digest()
            digits = iter(str(int.from_bytes(digest, "big")))
            chars = [next(digits) if char.isdigit() else char for char in text]
            if chars[0] == "0" and len(chars) > 1 and chars[1].isdigit():
                chars[0] = "1"
            replaced = "".join(chars)
            try:
                fake = int(replaced) if type(value) is int else float(replaced)
            except ValueError:  # "inf", "nan": not JSON anyway
                return value
            if fake != abs(value):
                break
            counter += 1
        fake = -fake if value < 0 else fake
        self._numbers[value] = fake
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

    def key(self, value: str) -> str:
        """Return an object key as written: a field name as it is, a snowflake's fake id, any other a placeholder."""
        if value in FIELD_NAMES:
            return value
        if _SNOWFLAKE.fullmatch(value):
            return self.snowflake(value)
        fake = self._keys.get(value)
        if fake is None:
            counter = 0
            fake = self.text(value)
            while fake in FIELD_NAMES or fake in self._key_fakes or _SNOWFLAKE.fullmatch(fake):
                counter += 1
                fake = self.text(f"{value}\x00{counter}")[: len(fake)] if fake.isascii() else fake + "x"
            self._keys[value] = fake
            self._key_fakes.add(fake)
        return fake

    def _string(self, value: str) -> str:
        if not value:
            return value
        if _SNOWFLAKE.fullmatch(value):
            return self.snowflake(value)
        if _TIMESTAMP.fullmatch(value):
            return self.timestamp(value)
        return self.text(value)

    def value(self, value: typing.Any, kind: str | None = None) -> typing.Any:
        """Redact any decoded JSON value; ``kind`` names its shape (``"message"``, ...), if known."""
        if type(value) is str:
            return self._string(value)
        if type(value) is dict:
            shape = _SHAPES.get(kind) if kind is not None else None
            if shape is None:
                return {self.key(item_key): self.value(item) for item_key, item in value.items()}
            result = {}
            for item_key, item in value.items():
                rule = shape.get(item_key)
                if rule is None and kind == "option" and item_key == "value":
                    result[self.key(item_key)] = self._option(value.get("type"), item)
                else:
                    result[self.key(item_key)] = self._field(rule, item) if rule is not None else self.value(item)
            return result
        if type(value) is list:
            return [self.value(item, kind) for item in value]
        return value

    def _field(self, rule: str, value: typing.Any) -> typing.Any:
        if type(value) is list and not rule.endswith("[]"):
            return [self._field(rule, item) for item in value]
        if rule in {_KEEP, _KEEP_ALL}:
            if type(value) is list:
                return [item if type(item) is str else self.value(item) for item in value]
            return value if type(value) is str else self.value(value)
        if rule == _TEXT:
            return self.text(value) if type(value) is str and value else self.value(value)
        if rule == _NUMBER:
            if type(value) in {int, float}:
                return self.number(value)
            return self.text(value) if type(value) is str and value else self.value(value)
        if rule in {_MILLISECONDS, _SECONDS}:
            if type(value) is int:
                return value + (self._shift if rule == _MILLISECONDS else self._shift // 1_000)
            return self.value(value)
        if rule.endswith("{}"):
            if type(value) is not dict:
                return self.value(value)
            return {self.key(item_key): self.value(item, rule[:-2]) for item_key, item in value.items()}
        return self.value(value, rule.removesuffix("[]"))

    def _option(self, option_type: typing.Any, value: typing.Any) -> typing.Any:
        if type(value) is str:
            if option_type in _OPTION_IDS and _SNOWFLAKE.fullmatch(value):
                return self.snowflake(value)  # it refers to an entry of data.resolved: the same fake id
            return self.text(value) if value else value  # typed by the user (an autocomplete's partial number too)
        if type(value) in {int, float}:
            return self.number(value)
        return self.value(value)

    def payload(self, payload: dict[str, typing.Any]) -> dict[str, typing.Any]:
        """Redact one gateway payload: its ``d`` only (``op``, ``t``, ``s`` and the key order are kept)."""
        name = payload.get("t")
        kind = _EVENT_SHAPES.get(name) if type(name) is str else None
        return {key: (self.value(item, kind) if key == "d" else item) for key, item in payload.items()}

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
