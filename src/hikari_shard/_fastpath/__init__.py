"""Compiled hot paths, built from ``src/_fastpath/*.pyx`` (see ``setup.py``).

Import them through :mod:`hikari_shard._fast`, which falls back to :mod:`hikari_shard._pure`.
"""
