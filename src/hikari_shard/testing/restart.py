"""Restart a real bot process on the emulator: what a deploy costs, cold (IDENTIFY) or warm (RESUME).

Two halves, used by ``tests/test_warm_restart.py`` and ``benchmarks/warm_restart.py``:

- ``python -m hikari_shard.testing.restart`` is the bot: an unchanged ``hikari.GatewayBot`` with
  :func:`hikari_shard.install` (warm restarts from ``HIKARI_SHARD_SESSIONS`` when set), cache-less,
  that writes one JSON line per shard READY/RESUMED and per ``MESSAGE_CREATE`` it receives to
  ``RESTART_BOT_OUT``, and shuts down on SIGTERM through ``bot.run()``'s own signal handling.
- :class:`BotProcess` runs it as a child process and reads what it received; :func:`message` builds
  the ``MESSAGE_CREATE`` payload the emulator dispatches, tagged with an index.

The token reaches the child in ``RESTART_BOT_TOKEN`` (not on its command line).
"""

from __future__ import annotations

__all__ = ("BotProcess", "message")

import asyncio
import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time
import typing

import orjson

ENV_TOKEN: typing.Final = "RESTART_BOT_TOKEN"  # noqa: S105 - the variable's name, not a token
ENV_REST_URL: typing.Final = "RESTART_BOT_REST_URL"
ENV_OUT: typing.Final = "RESTART_BOT_OUT"
ENV_SHARDS: typing.Final = "RESTART_BOT_SHARD_IDS"
"""Optional: the comma-separated shard ids this process runs, then ``/`` and the shard count (``0,2/4``)."""

GUILD_ID: typing.Final = 1_200_000_000_000_000_000
_AUTHOR: typing.Final = {"id": "900000000000000001", "username": "someone", "discriminator": "0", "avatar": None}


def message(index: int, *, shard_id: int = 0) -> dict[str, typing.Any]:
    """A minimal guild ``MESSAGE_CREATE`` whose content is ``"<shard_id>:<index>"``."""
    return {
        "id": str(1_300_000_000_000_000_000 + index * 64 + shard_id),
        "channel_id": str(GUILD_ID + 1),
        "guild_id": str(GUILD_ID),
        "author": _AUTHOR,
        "content": f"{shard_id}:{index}",
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


class BotProcess:
    """One run of the bot in a child process, and what it received.

    Parameters
    ----------
    rest_url
        The emulator's REST URL.
    token
        The bot token (passed in the environment).
    out
        The file the child writes its JSON lines to.
    sessions
        ``HIKARI_SHARD_SESSIONS`` for the child (a SQLite path or a Redis URL), or `None` for a cold bot.
    shards
        The shard ids this process runs and the shard count, or `None` for every shard of the
        emulator's recommended count.
    """

    __slots__ = ("_env", "_out", "_process", "started_at")

    def __init__(
        self,
        *,
        rest_url: str,
        token: str,
        out: pathlib.Path,
        sessions: str | None = None,
        shards: tuple[typing.Sequence[int], int] | None = None,
        extra_env: typing.Mapping[str, str] | None = None,
    ) -> None:
        env = dict(os.environ)
        env.pop("HIKARI_SHARD_SESSIONS", None)
        env.update({ENV_TOKEN: token, ENV_REST_URL: rest_url, ENV_OUT: str(out)})
        if sessions is not None:
            env["HIKARI_SHARD_SESSIONS"] = sessions
        if shards is not None:
            env[ENV_SHARDS] = ",".join(map(str, shards[0])) + f"/{shards[1]}"
        env.update(extra_env or {})
        self._env = env
        self._out = out
        self._process: subprocess.Popen[bytes] | None = None
        self.started_at = float("nan")

    def start(self) -> None:
        """Start the child (``started_at`` is its ``time.time()`` of start)."""
        self._out.write_bytes(b"")
        self.started_at = time.time()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "hikari_shard.testing.restart"],
            env=self._env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def lines(self) -> list[dict[str, typing.Any]]:
        """Every complete line the child has written so far."""
        data = self._out.read_bytes() if self._out.exists() else b""
        return [orjson.loads(line) for line in data.split(b"\n")[:-1] if line]

    def messages(self, shard_id: int | None = None) -> list[int]:
        """The indexes of the messages received (of one shard), in order."""
        found = []
        for line in self.lines():
            if line["event"] == "message" and (shard_id is None or line["shard"] == shard_id):
                found.append(line["index"])
        return found

    def handshakes(self, kind: str) -> set[int]:
        """The shards that received READY (``kind="ready"``) or RESUMED (``"resumed"``)."""
        return {line["shard"] for line in self.lines() if line["event"] == kind}

    async def wait_for(self, predicate: typing.Callable[[], bool], *, what: str, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Poll until ``predicate()``; fail with the child's stderr if it exits or time runs out."""
        deadline = time.monotonic() + timeout
        while not predicate():
            process = self._process
            if process is not None and process.poll() is not None:
                msg = f"the bot exited ({process.returncode}) before {what}:\n{self.stderr()}"
                raise AssertionError(msg)
            if time.monotonic() > deadline:
                msg = f"no {what} within {timeout}s:\n{self.lines()[-5:]}"
                raise AssertionError(msg)
            await asyncio.sleep(0.02)

    async def terminate(self, *, timeout: float = 30.0) -> int:  # noqa: ASYNC109 - a bound, with the child killed at it
        """SIGTERM, as a deploy does; wait for the exit code."""
        process = self._process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                msg = f"the bot did not exit within {timeout}s of SIGTERM"
                raise AssertionError(msg)
            await asyncio.sleep(0.02)
        return process.returncode

    def kill(self) -> None:
        """Stop the child at once, if it still runs."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def stderr(self) -> str:
        """What the child wrote to stderr (once it has exited)."""
        process = self._process
        if process is None or process.stderr is None or process.poll() is None:
            return ""
        return process.stderr.read().decode(errors="replace")[-4000:]


def _main() -> None:
    import hikari  # noqa: PLC0415 - only the child needs hikari's bot
    from hikari.impl import config  # noqa: PLC0415

    import hikari_shard  # noqa: PLC0415

    hikari_shard.install()  # HIKARI_SHARD_SESSIONS turns warm restarts on
    out = open(os.environ[ENV_OUT], "ab", buffering=0)  # noqa: SIM115 - one write per line, unbuffered

    def write(**line: typing.Any) -> None:
        out.write(orjson.dumps({"t": time.time(), **line}) + b"\n")

    bot = hikari.GatewayBot(
        os.environ[ENV_TOKEN],
        rest_url=os.environ[ENV_REST_URL],
        banner=None,
        intents=hikari.Intents.ALL,
        cache_settings=config.CacheSettings(components=config.CacheComponents.NONE),
        logs=os.environ.get("RESTART_BOT_LOGS", "WARNING"),
    )

    async def on_ready(event: hikari.ShardReadyEvent) -> None:
        write(event="ready", shard=event.shard.id)

    async def on_resumed(event: hikari.ShardResumedEvent) -> None:
        write(event="resumed", shard=event.shard.id)

    async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
        shard, index = (event.message.content or "").split(":")
        write(event="message", shard=int(shard), index=int(index))

    bot.event_manager.subscribe(hikari.ShardReadyEvent, on_ready)
    bot.event_manager.subscribe(hikari.ShardResumedEvent, on_resumed)
    bot.event_manager.subscribe(hikari.GuildMessageCreateEvent, on_message)
    shards = os.environ.get(ENV_SHARDS)
    kwargs: dict[str, typing.Any] = {}
    if shards:
        ids, count = shards.split("/")
        kwargs = {"shard_ids": [int(i) for i in ids.split(",")], "shard_count": int(count)}
    with contextlib.closing(out):
        bot.run(check_for_updates=False, close_loop=True, **kwargs)


if __name__ == "__main__":
    _main()
