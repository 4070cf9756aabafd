"""Hides zlib-ng, so every process started with this directory on PYTHONPATH inflates with stdlib zlib.

The README's zlib-ng vs stdlib zlib comparison runs the bench with it::

    PYTHONPATH=benchmarks/stdlib_zlib .venv/bin/python -m hikari_shard bench --scenario full --compression zlib-stream
"""

raise ImportError("zlib-ng hidden by benchmarks/stdlib_zlib: measuring with stdlib zlib")
