"""hikari-shard: a Cython-accelerated, drop-in replacement for hikari's gateway shard.

Adopt it with one line before your bot starts::

    import hikari_shard
    hikari_shard.install()

or build your bot from :class:`hikari_shard.GatewayBot` instead of :class:`hikari.GatewayBot`.
``hikari_shard.IMPLEMENTATION`` says whether the compiled hot paths are in use (``"compiled"``)
or their pure-Python twins (``"pure"``).
"""

from __future__ import annotations

__all__ = (
    "IMPLEMENTATION",
    "GatewayBot",
    "GatewayShardImpl",
    "Recording",
    "ShardStats",
    "__version__",
    "install",
    "installed",
    "record",
    "stats",
    "uninstall",
)

from hikari_shard._fast import IMPLEMENTATION
from hikari_shard._install import GatewayBot, install, installed, uninstall
from hikari_shard.recorder import Recording, record
from hikari_shard.shard import GatewayShardImpl
from hikari_shard.statistics import ShardStats, stats

__version__ = "0.1.0"
