"""The extension list: every ``src/_fastpath/<name>.pyx`` becomes ``hikari_shard._fastpath.<name>``.

Everything else about the package lives in ``pyproject.toml``.  Set ``HIKARI_SHARD_EXTENSIONS``
to a comma-separated list of names to build only those (handy while editing one module).
"""

from __future__ import annotations

import os
import pathlib

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = pathlib.Path(__file__).parent
only = {name for name in os.environ.get("HIKARI_SHARD_EXTENSIONS", "").split(",") if name}

extensions = [
    Extension(f"hikari_shard._fastpath.{pyx.stem}", [str(pyx.relative_to(HERE))])
    for pyx in sorted((HERE / "src" / "_fastpath").glob("*.pyx"))
    if not only or pyx.stem in only
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "embedsignature": True},
        annotate=bool(os.environ.get("HIKARI_SHARD_ANNOTATE")),
    ),
)
