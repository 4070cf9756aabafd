"""The extension list: each hot path ``<name>`` becomes ``hikari_shard._fastpath.<name>``, compiled from

- ``src/_fastpath/<name>.pyx``, hand-written Cython; or
- ``src/hikari_shard/_pure/<name>.py``, its pure twin, when there is no such ``.pyx`` but there is a
  ``src/hikari_shard/_fastpath/<name>.pxd`` adding C types to it (a single source).

A module's ``.pxd`` sits where its name puts it, ``src/hikari_shard/_fastpath/`` (Cython looks it up by
the module's name, through ``include_path=["src"]``); CONTRIBUTING.md says why it cannot sit beside the
``.pyx``.  Everything else about the package lives in ``pyproject.toml``.  Set ``HIKARI_SHARD_EXTENSIONS``
to a comma-separated list of names to build only those (handy while editing one module).
"""

from __future__ import annotations

import os
import pathlib
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = pathlib.Path(__file__).parent
only = {name for name in os.environ.get("HIKARI_SHARD_EXTENSIONS", "").split(",") if name}

SRC = HERE / "src"
hand_written = {pyx.stem: pyx for pyx in (SRC / "_fastpath").glob("*.pyx")}
# A .pxd without a .pyx of its name augments the single source; with one, it only declares it.
single_source = {
    pxd.stem: SRC / "hikari_shard" / "_pure" / f"{pxd.stem}.py"
    for pxd in (SRC / "hikari_shard" / "_fastpath").glob("*.pxd")
    if pxd.stem not in hand_written
}
sources = {**hand_written, **single_source}
# cythonize regenerates a .c when its source or a file it cimports changed, but looks for the module's
# own .pxd only beside the source, where Cython's compiler never looks for it: a .c older than its .pxd
# is stale (importing it would fail, "size changed, may indicate binary incompatibility"), so it goes.
for name, source in sources.items():
    pxd, c_file = SRC / "hikari_shard" / "_fastpath" / f"{name}.pxd", source.with_suffix(".c")
    if pxd.exists() and c_file.exists() and c_file.stat().st_mtime < pxd.stat().st_mtime:
        c_file.unlink()
# zlibng and libzstd find zlib-ng's and libzstd's C API in the zlib_ng and zstd modules' extensions at
# run time (dlopen/dlsym: libdl on older glibc); nothing else needs linking.
_DL: dict[str, list[str]] = {"libraries": ["dl"]} if sys.platform.startswith("linux") else {}
OPTIONS: dict[str, dict[str, list[str]]] = {"libzstd": _DL, "zlibng": _DL}
extensions = [
    Extension(f"hikari_shard._fastpath.{name}", [str(source.relative_to(HERE))], **OPTIONS.get(name, {}))
    for name, source in sorted(sources.items())
    if not only or name in only
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=[str(SRC)],
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True, "embedsignature": True},
        annotate=bool(os.environ.get("HIKARI_SHARD_ANNOTATE")),
    ),
)
