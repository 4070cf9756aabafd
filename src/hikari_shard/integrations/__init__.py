"""Run hikari-shard under the multi-process shard managers for hikari.

Each shard manager starts its workers in fresh processes, so :func:`hikari_shard.install` in the parent
is not enough: these modules install our shard inside every worker.

- :mod:`hikari_shard.integrations.orchestrator`: `hikari-orchestrator`_ (``setup``, ``wrap``).
- :mod:`hikari_shard.integrations.clusters`: `hikari-clusters`_ (``ClusterLauncher``, ``Cluster``).

Both hand sessions over: a shard that moves to another worker, or a cluster that is restarted, RESUMEs
instead of identifying (see each module).

Neither engine is a dependency of hikari-shard: install the one you use (the ``orchestrator`` and
``clusters`` extras pin the versions CI runs).  Importing a module here
also applies the small compatibility fixes that engine needs with hikari 2.7 (each is documented
in its module and is only applied when the installed engine still needs it).

.. _hikari-orchestrator: https://github.com/FasterSpeeding/hikari-orchestrator
.. _hikari-clusters: https://github.com/TrigonDev/hikari-clusters
"""

from __future__ import annotations

__all__: tuple[str, ...] = ()
