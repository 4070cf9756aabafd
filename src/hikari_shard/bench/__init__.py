"""``hikari-shard bench``: hikari's stock gateway shard against ours, side by side, over loopback.

The pieces, each usable on its own:

- :mod:`~hikari_shard.bench.cli`: the command line (``hikari-shard bench --help``).
- :mod:`~hikari_shard.bench.runner`: builds the stream, starts the processes, runs the rounds.
- :mod:`~hikari_shard.bench.server`: the gateway emulator streaming a pre-compressed stream.
- :mod:`~hikari_shard.bench.worker` and :mod:`~hikari_shard.bench.client`: one measured run per forked process.
- :mod:`~hikari_shard.bench.recording`: the stream / ``--replay`` file formats and the token check.
- :mod:`~hikari_shard.bench.report`: medians, spreads, ratios, the table and the summary.
"""

from __future__ import annotations

__all__: list[str] = []
