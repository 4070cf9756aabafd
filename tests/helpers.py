"""Shared test helpers: a recording event manager and a shard factory for either implementation."""

from __future__ import annotations

import asyncio
import contextlib
import time
import typing

import hikari
from hikari.impl import config

from hikari_shard import _install
from hikari_shard.shard import GatewayShardImpl
from hikari_shard.testing import GatewayEmulator, make_bot_token

TOKEN: typing.Final = make_bot_token()
TIMEOUT: typing.Final = 5.0
OURS: typing.Final = GatewayShardImpl
STOCK: typing.Final = _install.ORIGINAL


class Recorder:
    """A minimal event manager: records every raw dispatch and every dispatched event."""

    def __init__(self) -> None:
        self.raw: list[tuple[str, typing.Any]] = []
        self.events: list[object] = []

    def consume_raw_event(self, name: str, shard: object, data: typing.Any) -> None:
        self.raw.append((name, data))

    def dispatch(self, event: object, *, return_tasks: bool = False) -> asyncio.Future[typing.Any]:
        self.events.append(event)
        future = asyncio.get_running_loop().create_future()
        future.set_result([])
        return future

    def names(self) -> list[str]:
        return [name for name, _ in self.raw]

    def data_of(self, name: str) -> list[typing.Any]:
        return [data for n, data in self.raw if n == name]


class EventFactory:
    """Stands in for hikari's event factory for the two events a shard itself creates."""

    def deserialize_connected_event(self, shard: object) -> str:
        return "connected"

    def deserialize_disconnected_event(self, shard: object) -> str:
        return "disconnected"


def make_shard(
    emulator: GatewayEmulator,
    *,
    cls: type[typing.Any] = OURS,
    manager: object | None = None,
    token: str = TOKEN,
    **kwargs: typing.Any,
) -> typing.Any:
    return cls(
        intents=kwargs.pop("intents", hikari.Intents.ALL_UNPRIVILEGED),
        http_settings=kwargs.pop("http_settings", None) or config.HTTPSettings(),
        proxy_settings=kwargs.pop("proxy_settings", None) or config.ProxySettings(),
        event_manager=manager if manager is not None else Recorder(),
        event_factory=EventFactory(),
        token=token,
        url=kwargs.pop("url", None) or emulator.url,
        **kwargs,
    )


@contextlib.asynccontextmanager
async def running(shard: typing.Any) -> typing.AsyncIterator[typing.Any]:
    await asyncio.wait_for(shard.start(), TIMEOUT)
    try:
        yield shard
    finally:
        if shard.is_alive:
            await asyncio.wait_for(shard.close(), TIMEOUT)


async def until(predicate: typing.Callable[[], object], *, timeout: float = TIMEOUT, what: str = "condition") -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"timed out waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(0.01)
