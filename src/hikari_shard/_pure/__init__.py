"""Pure-Python twins of the compiled hot paths in :mod:`hikari_shard._fastpath`, with the same API."""
