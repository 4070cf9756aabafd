"""hikari-shard under `hikari-clusters`_ (tested with 1.2.0).

hikari-clusters starts each cluster in a new process, where :class:`ClusterLauncher` installs our shard
before the cluster's bot starts, so any ``hikari.GatewayBot`` subclass runs
:class:`hikari_shard.GatewayShardImpl` shards::

    from hikari_shard.integrations.clusters import ClusterLauncher, Server


    class MyBot(hikari.GatewayBot): ...  # no __slots__: hikari-clusters sets ``bot.cluster``


    LAUNCHER = ClusterLauncher(MyBot, bot_init_kwargs={"token": TOKEN, "intents": INTENTS})
    Server("127.0.0.1", 8765, IPC_TOKEN, LAUNCHER).run()

**Warm hand-off.** Give the launcher a session store (``sessions=``, as :func:`hikari_shard.install` takes
it; ``HIKARI_SHARD_SESSIONS`` does the same) and a cluster that stops (the IPC event ``cluster_stop``,
or SIGINT) closes every shard resumably and saves its session; the cluster the brain starts in its
place RESUMEs them, without waiting for identify buckets, and Discord replays what it sent meanwhile.
A rolling restart then costs no IDENTIFY and loses no event.  A SQLite file serves the clusters of
one host, Redis (``redis://...``) clusters on several machines; the store also holds the identify
queue's slots, so the clusters that share it never IDENTIFY two shards of one bucket within 5 s.
A resumed shard gets no READY or GUILD_CREATE: see the cache caveat in docs/warm-restarts.md.

Besides installing the shard, :class:`ClusterLauncher` differs from hikari-clusters' in three ways:

- it passes ``bot_start_kwargs`` to ``GatewayBot.start`` (hikari-clusters 1.2.0 accepts and drops them);
- its default ``cluster_class`` is :class:`Cluster`, which reports itself ready only 5 s after its last
  shard started.  The brain launches the next cluster as soon as every cluster is ready, so without
  this the next cluster's first IDENTIFY could follow this cluster's last one by well under the 5 s
  Discord requires per ``max_concurrency`` bucket (hikari spaces the shards *within* a cluster itself);
- that :class:`Cluster` also obeys the IPC event ``cluster_stop`` (``brain.ipc.send_event([uid],
  "cluster_stop")``), which hikari-clusters 1.2.0's own Cluster logs as a TypeError and ignores.

hikari-clusters 1.2.0 cannot be imported with hikari 2.7: its ``__init__`` calls
``hikari.internal.ux.init_logging("INFO", True, False)``, whose last two parameters became keyword-only.
Importing this module imports ``hikari_clusters`` with that call adapted (only while importing it), and
re-exports hikari-clusters' ``Brain`` and ``Server``: take them from here.  A program that imports
``hikari_clusters`` itself must import this module first (import sorters put ``hikari_clusters``
before ``hikari_shard``: keep this module's import in an earlier block).

.. _hikari-clusters: https://github.com/TrigonDev/hikari-clusters
"""

from __future__ import annotations

__all__ = ("IDENTIFY_INTERVAL", "Brain", "Cluster", "ClusterLauncher", "Server")

import asyncio
import contextlib
import inspect
import os
import signal
import sys
import time
import typing

from hikari.internal import ux

import hikari_shard

if typing.TYPE_CHECKING:
    import pathlib

    import hikari


def _import_hikari_clusters() -> typing.Any:
    if "hikari_clusters" in sys.modules:
        return sys.modules["hikari_clusters"]
    original = ux.init_logging
    parameters = inspect.signature(original).parameters
    keyword_only = parameters.get("allow_color") is not None and (
        parameters["allow_color"].kind is inspect.Parameter.KEYWORD_ONLY
    )

    def init_logging(flavor: typing.Any, allow_color: bool = True, force_color: bool = False) -> None:
        original(flavor, allow_color=allow_color, force_color=force_color)

    if keyword_only:
        ux.init_logging = init_logging  # type: ignore[assignment]
    try:
        # The engine is optional: mypy knows it only where it is installed.
        import hikari_clusters  # type: ignore[import-not-found]  # noqa: PLC0415 - under the adapted init_logging
    except ImportError as ex:  # pragma: no cover - depends on the environment
        msg = "hikari_shard.integrations.clusters needs hikari-clusters: pip install hikari-clusters"
        raise ImportError(msg) from ex
    finally:
        ux.init_logging = original
    return hikari_clusters


_hikari_clusters: typing.Final[typing.Any] = _import_hikari_clusters()
_ClusterBase: typing.Final[type[typing.Any]] = _hikari_clusters.Cluster
_ClusterLauncherBase: typing.Final[type[typing.Any]] = _hikari_clusters.ClusterLauncher

Brain: typing.Final[type[typing.Any]] = _hikari_clusters.Brain
"""``hikari_clusters.Brain``, re-exported."""
Server: typing.Final[type[typing.Any]] = _hikari_clusters.Server
"""``hikari_clusters.Server``, re-exported."""

IDENTIFY_INTERVAL: typing.Final = 5.0
"""Seconds a cluster waits after its last shard started before it reports itself ready."""


class Cluster(_ClusterBase):  # type: ignore[misc]
    """A ``hikari_clusters.Cluster`` that reports ready :data:`IDENTIFY_INTERVAL` s after its shards started.

    The brain starts the next cluster only once every cluster is ready, so this keeps the first
    IDENTIFY of the next cluster at least 5 s after the last one of this cluster.
    """

    _all_started_at: float | None = None

    def __init__(self, *args: typing.Any, **kwargs: typing.Any) -> None:
        super().__init__(*args, **kwargs)
        # hikari-clusters 1.2.0's handler of the IPC event "cluster_stop" takes a ``cluster`` argument that
        # its Cluster never registers (Brain and Server register theirs): the event raised TypeError, was
        # logged and ignored, and a cluster could only be stopped by a signal.
        self.ipc.events.event_kwargs.setdefault("cluster", self)

    @property
    def ready(self) -> bool:
        """Whether every shard of this cluster started at least :data:`IDENTIFY_INTERVAL` s ago."""
        if not super().ready:
            self._all_started_at = None
            return False
        now = time.monotonic()
        if self._all_started_at is None:
            self._all_started_at = now
        return now - self._all_started_at >= IDENTIFY_INTERVAL


class ClusterLauncher(_ClusterLauncherBase):  # type: ignore[misc]
    """A ``hikari_clusters.ClusterLauncher`` whose clusters run :class:`hikari_shard.GatewayShardImpl` shards.

    Takes hikari-clusters' arguments.  ``bot_class`` may be any ``hikari.GatewayBot`` subclass whose
    instances accept new attributes (hikari-clusters sets ``bot.cluster``).  ``bot_start_kwargs`` are
    passed to ``GatewayBot.start``, e.g. ``{"check_for_updates": False}``.

    ``sessions`` and ``max_session_age`` turn on warm hand-off between a cluster and its replacement:
    they are :func:`hikari_shard.install`'s, given in each cluster process (a path or a URL: the launcher
    is pickled into cluster processes that are not forked).  Unset, ``HIKARI_SHARD_SESSIONS`` decides.
    """

    def __init__(
        self,
        bot_class: type[hikari.GatewayBot],
        bot_init_kwargs: dict[str, typing.Any] | None = None,
        bot_start_kwargs: dict[str, typing.Any] | None = None,
        cluster_class: type[typing.Any] = Cluster,
        *,
        sessions: str | os.PathLike[str] | None = None,
        max_session_age: float | None = None,
    ) -> None:
        super().__init__(bot_class, bot_init_kwargs, bot_start_kwargs, cluster_class)
        self.sessions = os.fspath(sessions) if sessions is not None else None
        self.max_session_age = max_session_age

    def launch_cluster(  # noqa: PLR0917 - hikari-clusters' signature
        self,
        ipc_uri: str,
        ipc_token: str,
        shard_ids: list[int],
        shard_count: int,
        server_uid: int,
        certificate_path: pathlib.Path | None,
    ) -> None:
        """Run one cluster until it stops; hikari-clusters calls this in a new process."""
        hikari_shard.install(sessions=self.sessions, max_session_age=self.max_session_age)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        cluster = self.cluster_class(
            ipc_uri,
            ipc_token,
            shard_ids,
            shard_count,
            server_uid,
            certificate_path,
            self.bot_class(**self.bot_init_kwargs),
        )
        with contextlib.suppress(NotImplementedError):  # Windows: no signal handlers on the event loop
            loop.add_signal_handler(signal.SIGINT, cluster.stop)
        try:
            loop.run_until_complete(cluster.start(**self.bot_start_kwargs))
            loop.run_until_complete(cluster.join())
            loop.run_until_complete(cluster.close())
        finally:
            loop.close()
