"""The drop-in contract: our shard looks like hikari 2.7's to every caller.

If one of these fails, an existing bot (or a future hikari) would notice: a keyword it passes is
missing, a method it calls is not there, a payload it relies on differs.
"""

from __future__ import annotations

import datetime
import inspect
import logging
import typing

import hikari
import hikari.impl
import pytest
from hikari import errors, presences
from hikari.api import shard as shard_api
from hikari.impl import config
from hikari.impl import gateway_bot as hikari_gateway_bot
from hikari.impl import shard as hikari_shard_module

import hikari_shard
from hikari_shard import _install
from hikari_shard.shard import GatewayShardImpl

HIKARI_SHARD: typing.Final = _install.ORIGINAL
TOKEN: typing.Final = "contract.test.token-0123456789"


def make(cls: type[typing.Any] = GatewayShardImpl, **kwargs: typing.Any) -> typing.Any:
    base: dict[str, typing.Any] = {
        "intents": hikari.Intents.ALL_UNPRIVILEGED,
        "http_settings": config.HTTPSettings(),
        "proxy_settings": config.ProxySettings(),
        "event_manager": object(),
        "event_factory": object(),
        "token": TOKEN,
        "url": "ws://127.0.0.1:1",
    }
    base.update(kwargs)
    return cls(**base)


def test_constructor_signature_matches_hikari() -> None:
    ours = inspect.signature(GatewayShardImpl.__init__).parameters
    theirs = inspect.signature(HIKARI_SHARD.__init__).parameters
    assert list(ours) == list(theirs), "constructor keywords differ from the installed hikari's"
    for name, param in theirs.items():
        assert ours[name].kind == param.kind, name
        assert ours[name].default == param.default, name


EXTENSIONS: typing.Final = {"close": ["resumable"]}
"""Keyword-only parameters we add after hikari's (each optional, so every hikari call stays valid)."""


def test_public_api_matches_hikari() -> None:
    for name, theirs in inspect.getmembers(HIKARI_SHARD):
        if name.startswith("_"):
            continue
        assert hasattr(GatewayShardImpl, name), f"missing public member {name}"
        ours = getattr(GatewayShardImpl, name)
        if isinstance(theirs, property):
            assert isinstance(ours, property), name
        elif callable(theirs):
            assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name
            ours_params = inspect.signature(ours).parameters
            theirs_params = inspect.signature(theirs).parameters
            added = EXTENSIONS.get(name, [])
            assert list(ours_params) == [*theirs_params, *added], name
            for pname in added:
                assert ours_params[pname].kind is inspect.Parameter.KEYWORD_ONLY, (name, pname)
                assert ours_params[pname].default is None, (name, pname)
            for pname, param in theirs_params.items():
                assert ours_params[pname].kind == param.kind, (name, pname)
                assert ours_params[pname].default == param.default, (name, pname)


def test_is_a_gateway_shard() -> None:
    shard = make()
    assert isinstance(shard, shard_api.GatewayShard)
    assert shard.id == 0
    assert shard.shard_count == 1
    assert shard.intents == hikari.Intents.ALL_UNPRIVILEGED
    assert shard.capabilities == hikari.GatewayCapabilities.NONE
    assert not shard.is_alive
    assert not shard.is_connected
    assert shard.heartbeat_latency != shard.heartbeat_latency  # NaN until the first ACK
    assert shard._seq is None
    assert shard._session_id is None
    assert shard.resume_gateway_url is None


def test_private_attributes_orchestrator_reads_are_read_only() -> None:
    shard = make()
    with pytest.raises(AttributeError):
        shard._seq = 5
    with pytest.raises(AttributeError):
        shard._session_id = "x"


def test_logger_name_matches_hikari() -> None:
    shard = make(shard_id=7, shard_count=8)
    assert shard._logger is logging.getLogger("hikari.gateway.7")


def test_etf_is_not_implemented_like_hikari() -> None:
    with pytest.raises(NotImplementedError):
        make(data_format=shard_api.GatewayDataFormat.ETF)


def test_token_not_in_repr() -> None:
    shard = make()
    assert TOKEN not in repr(shard)
    assert TOKEN not in str(shard)


def test_default_compression_follows_hikari() -> None:
    ours = inspect.signature(GatewayShardImpl.__init__).parameters["compression"].default
    assert ours == hikari_shard_module._DEFAULT_COMPRESS_TYPE


@pytest.mark.parametrize(
    "method",
    [
        lambda s: s.update_presence(status=presences.Status.IDLE),
        lambda s: s.update_voice_state(123, None),
        lambda s: s.request_guild_members(123, query="a", limit=1),
        lambda s: s.request_channel_info(123, fields=[shard_api.ChannelInfoField.STATUS]),
    ],
)
async def test_commands_need_a_connection(method: typing.Callable[[typing.Any], typing.Any]) -> None:
    for cls in (GatewayShardImpl, HIKARI_SHARD):
        with pytest.raises(errors.ComponentStateConflictError):
            await method(make(cls))


async def test_close_and_join_need_a_started_shard() -> None:
    shard = make()
    with pytest.raises(errors.ComponentStateConflictError):
        await shard.close()
    with pytest.raises(errors.ComponentStateConflictError):
        await shard.join()
    with pytest.raises(errors.ComponentStateConflictError):
        shard.get_user_id()


ACTIVITIES: typing.Final = [
    None,
    presences.Activity(name="with fire", type=presences.ActivityType.PLAYING),
    presences.Activity(name="feeling good", type=presences.ActivityType.CUSTOM),
    presences.Activity(name="ignored", state="custom state", type=presences.ActivityType.CUSTOM),
    presences.Activity(name="stream", url="https://example.invalid/x", type=presences.ActivityType.STREAMING),
]


@pytest.mark.parametrize("activity", ACTIVITIES)
@pytest.mark.parametrize("status", list(presences.Status))
@pytest.mark.parametrize("idle", [None, datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)])
@pytest.mark.parametrize("afk", [False, True])
def test_presence_payload_matches_hikari(
    activity: presences.Activity | None, status: presences.Status, idle: datetime.datetime | None, afk: bool
) -> None:
    ours = make()._serialize_and_store_presence_payload(idle_since=idle, afk=afk, status=status, activity=activity)
    theirs = make(HIKARI_SHARD)._serialize_and_store_presence_payload(
        idle_since=idle, afk=afk, status=status, activity=activity
    )
    assert ours == theirs
    if status is presences.Status.OFFLINE:
        assert ours["status"] == "invisible"


def test_initial_presence_matches_hikari() -> None:
    kwargs = {
        "initial_activity": ACTIVITIES[2],
        "initial_status": presences.Status.DO_NOT_DISTURB,
        "initial_is_afk": True,
    }
    assert (
        make(**kwargs)._serialize_and_store_presence_payload()
        == make(HIKARI_SHARD, **kwargs)._serialize_and_store_presence_payload()
    )


def test_install_and_uninstall() -> None:
    assert not hikari_shard.installed()
    try:
        hikari_shard.install()
        hikari_shard.install()  # idempotent
        assert hikari_shard.installed()
        assert hikari_shard_module.GatewayShardImpl is GatewayShardImpl
        assert hikari.impl.GatewayShardImpl is GatewayShardImpl
        # Code that kept a reference to hikari's own class still accepts ours.
        assert isinstance(make(), HIKARI_SHARD)
        assert issubclass(GatewayShardImpl, HIKARI_SHARD)
    finally:
        hikari_shard.uninstall()
    assert not hikari_shard.installed()
    assert hikari_shard_module.GatewayShardImpl is HIKARI_SHARD
    assert hikari.impl.GatewayShardImpl is HIKARI_SHARD
    assert not isinstance(make(), HIKARI_SHARD)


def test_gateway_bot_subclass_overrides_hikaris_shard_factory() -> None:
    # If hikari renames or re-signs _start_one_shard, our GatewayBot would silently build hikari's shard.
    theirs = inspect.signature(hikari_gateway_bot.GatewayBot._start_one_shard)
    ours = inspect.signature(hikari_shard.GatewayBot._start_one_shard)
    assert list(ours.parameters) == list(theirs.parameters)
    assert issubclass(hikari_shard.GatewayBot, hikari.GatewayBot)
    source = inspect.getsource(hikari_gateway_bot.GatewayBot._start_one_shard)
    assert "shard_impl.GatewayShardImpl(" in source, "hikari builds shards differently now; install() may not work"


def test_implementation_is_public() -> None:
    from hikari_shard import _fast

    assert hikari_shard.IMPLEMENTATION is _fast.IMPLEMENTATION
    package = "_fastpath" if hikari_shard.IMPLEMENTATION == "compiled" else "_pure"
    assert _fast.router.__name__ == f"hikari_shard.{package}.router"  # what it says is what runs


def test_version_matches_pyproject() -> None:
    import pathlib
    import tomllib

    pyproject = pathlib.Path(__file__).parents[1] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["version"] == hikari_shard.__version__
