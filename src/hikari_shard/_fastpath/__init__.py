"""Compiled hot paths, built by ``setup.py``.

``frames``, ``scan`` and ``router`` from ``src/_fastpath/<name>.pyx``; ``inflate`` and ``ratelimit``
from the single source ``src/hikari_shard/_pure/<name>.py`` with the C types of ``<name>.pxd`` in
this folder.  ``router.pxd`` here declares the C interface of ``router.pyx`` (``frames`` cimports
it).  Import them through :mod:`hikari_shard._fast`, which falls back to :mod:`hikari_shard._pure`.
"""
