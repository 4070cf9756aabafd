"""The gateway commands a shard sends for its bot: request guild members, channel info, presence, voice state.

:class:`GatewayCommands` builds each payload (hikari 2.7's checks and serialisation, Discord's field
names) and hands it to the shard's ``_send_json``, which waits for the session and the command rate
limit.  :class:`hikari_shard.shard.GatewayShardImpl` is the only class that mixes it in; the
connection's life stays in :mod:`hikari_shard.shard`.
"""

from __future__ import annotations

__all__ = ("GatewayCommands",)

import typing

from hikari import errors, presences, snowflakes, undefined
from hikari import intents as intents_
from hikari.api import shard as shard_api
from hikari.internal import data_binding

if typing.TYPE_CHECKING:
    import datetime

    from hikari import channels, guilds
    from hikari import users as users_

_PRESENCE_UPDATE: typing.Final = 3
_VOICE_STATE_UPDATE: typing.Final = 4
_REQUEST_GUILD_MEMBERS: typing.Final = 8
_REQUEST_CHANNEL_INFO: typing.Final = 43

_CUSTOM_STATUS_NAME: typing.Final = "Custom Status"


def _serialize_datetime(dt: datetime.datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1_000)


def _serialize_activity(activity: presences.Activity | None) -> data_binding.JSONish:
    if activity is None:
        return None
    # hikari's sugar: a CUSTOM activity with only a name uses the name as the state.
    if activity.type is presences.ActivityType.CUSTOM and activity.name and not activity.state:
        name: str | None = _CUSTOM_STATUS_NAME
        state: str | None = activity.name
    else:
        name = activity.name
        state = activity.state
    return {"name": name, "state": state, "type": int(activity.type), "url": activity.url}


class GatewayCommands:
    """The command methods of :class:`hikari_shard.GatewayShardImpl` (hikari 2.7's signatures)."""

    # The presence the shard identifies with and updates: kept here, set by the shard's constructor.
    __slots__: typing.Sequence[str] = ("_activity", "_idle_since", "_is_afk", "_status")

    _activity: presences.Activity | None
    _idle_since: datetime.datetime | None
    _is_afk: bool
    _status: presences.Status

    if typing.TYPE_CHECKING:
        _intents: intents_.Intents

        def _check_if_connected(self) -> None: ...

        async def _send_json(self, payload: data_binding.JSONObject, *, priority: bool = False) -> None: ...

    async def request_guild_members(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        *,
        include_presences: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        query: str = "",
        limit: int = 0,
        users: undefined.UndefinedOr[snowflakes.SnowflakeishSequence[users_.User]] = undefined.UNDEFINED,
        nonce: undefined.UndefinedOr[str] = undefined.UNDEFINED,
    ) -> None:
        self._check_if_connected()
        if not query and not limit and not self._intents & intents_.Intents.GUILD_MEMBERS:
            raise errors.MissingIntentError(intents_.Intents.GUILD_MEMBERS)

        if include_presences and not self._intents & intents_.Intents.GUILD_PRESENCES:
            raise errors.MissingIntentError(intents_.Intents.GUILD_PRESENCES)

        if users is not undefined.UNDEFINED and (query or limit):
            msg = "Cannot specify limit/query with users"
            raise ValueError(msg)

        if not 0 <= limit <= 100:
            msg = "'limit' must be between 0 and 100, both inclusive"
            raise ValueError(msg)

        if users is not undefined.UNDEFINED and len(users) > 100:
            msg = "'users' is limited to 100 users"
            raise ValueError(msg)

        if nonce is not undefined.UNDEFINED and len(bytes(nonce, "utf-8")) > 32:
            msg = "'nonce' can be no longer than 32 byte characters long."
            raise ValueError(msg)

        payload = data_binding.JSONObjectBuilder()
        payload.put_snowflake("guild_id", guild)
        payload.put("presences", include_presences)
        payload.put("query", query)
        payload.put("limit", limit)
        payload.put_snowflake_array("user_ids", users)
        payload.put("nonce", nonce)
        await self._send_json({"op": _REQUEST_GUILD_MEMBERS, "d": payload})

    async def request_channel_info(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        *,
        fields: typing.Sequence[shard_api.ChannelInfoField],
    ) -> None:
        self._check_if_connected()
        payload = data_binding.JSONObjectBuilder()
        payload.put_snowflake("guild_id", guild)
        payload.put("fields", [str(field) for field in fields])
        await self._send_json({"op": _REQUEST_CHANNEL_INFO, "d": payload})

    async def update_presence(
        self,
        *,
        idle_since: undefined.UndefinedNoneOr[datetime.datetime] = undefined.UNDEFINED,
        afk: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        activity: undefined.UndefinedNoneOr[presences.Activity] = undefined.UNDEFINED,
        status: undefined.UndefinedOr[presences.Status] = undefined.UNDEFINED,
    ) -> None:
        self._check_if_connected()
        presence = self._serialize_and_store_presence_payload(
            idle_since=idle_since, afk=afk, activity=activity, status=status
        )
        await self._send_json({"op": _PRESENCE_UPDATE, "d": presence})

    async def update_voice_state(
        self,
        guild: snowflakes.SnowflakeishOr[guilds.PartialGuild],
        channel: snowflakes.SnowflakeishOr[channels.GuildVoiceChannel] | None,
        *,
        self_mute: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        self_deaf: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
    ) -> None:
        self._check_if_connected()
        payload = data_binding.JSONObjectBuilder()
        payload.put_snowflake("guild_id", guild)
        payload.put_snowflake("channel_id", channel)
        payload.put("self_mute", self_mute)
        payload.put("self_deaf", self_deaf)
        await self._send_json({"op": _VOICE_STATE_UPDATE, "d": payload})

    def _serialize_and_store_presence_payload(
        self,
        idle_since: undefined.UndefinedNoneOr[datetime.datetime] = undefined.UNDEFINED,
        afk: undefined.UndefinedOr[bool] = undefined.UNDEFINED,
        status: undefined.UndefinedOr[presences.Status] = undefined.UNDEFINED,
        activity: undefined.UndefinedNoneOr[presences.Activity] = undefined.UNDEFINED,
    ) -> data_binding.JSONObject:
        if activity is not undefined.UNDEFINED:
            self._activity = activity
        if status is not undefined.UNDEFINED:
            self._status = status
        if idle_since is not undefined.UNDEFINED:
            self._idle_since = idle_since
        if afk is not undefined.UNDEFINED:
            self._is_afk = afk

        payload = data_binding.JSONObjectBuilder()
        payload.put("since", self._idle_since, conversion=_serialize_datetime)
        payload.put("afk", self._is_afk)
        payload.put("game", self._activity, conversion=_serialize_activity)
        # Discord ignores "offline" from a bot; "invisible" is what makes it appear offline.
        payload.put("status", "invisible" if self._status is presences.Status.OFFLINE else self._status)
        return payload
