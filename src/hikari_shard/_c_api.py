"""Which zlib-ng and libzstd versions the compiled inflators may call through their C APIs.

``hikari_shard._fastpath.zlibng`` declares zlib-ng's ``zng_stream`` field for field, and
``zng_inflateInit2`` takes neither a version nor the struct's size: a zlib-ng whose layout changed
would corrupt memory without any error.  ``hikari_shard._fastpath.libzstd`` uses only libzstd's
stable API, but is held to the same rule.  So each checks, when it is imported, the version of the
library it found against the major.minor range the tests ran on (:data:`ZLIBNG_TESTED`,
:data:`LIBZSTD_TESTED`), and refuses to import outside it with :class:`UntestedLibraryError`.  The
compiled inflator then uses the ``zlib_ng`` / zstd module's own decompressor objects, logs one
WARNING, and ``python -m hikari_shard info`` says why.

This module is plain Python (never compiled), so the check is testable on its own.
"""

from __future__ import annotations

__all__ = (
    "LIBZSTD_TESTED",
    "ZLIBNG_TESTED",
    "UntestedLibraryError",
    "check_libzstd",
    "check_zlibng",
    "major_minor",
    "refusal",
)

import re
import typing

VersionRange: typing.TypeAlias = tuple[tuple[int, int], tuple[int, int]]

ZLIBNG_TESTED: VersionRange = ((2, 1), (2, 3))
"""The zlib-ng versions (major.minor, both ends included) the tests ran the C API on.

zlib-ng 2.1 is what the lowest ``zlib-ng`` wheel (0.5.0) bundles, 2.3 the newest (1.1.0).  A new
range is a reviewed change: check ``zng_stream`` in that version's ``zlib-ng.h`` against the
declaration in ``src/_fastpath/zlibng.pyx`` and run the tests on it first.
"""
LIBZSTD_TESTED: VersionRange = ((1, 5), (1, 5))
"""The libzstd versions (major.minor, both ends included) the tests ran the C API on.

Every ``backports.zstd`` wheel from 1.0.0 to 1.8.0 bundles libzstd 1.5.
"""

_VERSION: typing.Final = re.compile(r"(\d+)\.(\d+)")


class UntestedLibraryError(ImportError):
    """The C library's version is outside the range the tests ran on, so its C API is not called."""


def major_minor(version: str) -> tuple[int, int] | None:
    """The major and minor numbers a version string starts with (``"2.3.3"`` -> ``(2, 3)``), else `None`."""
    match = _VERSION.match(version)
    return (int(match[1]), int(match[2])) if match else None


def refusal(library: str, version: str, tested: VersionRange) -> str | None:
    """Why ``library`` at ``version`` must not be called through its C API, or `None` if it may be.

    Parameters
    ----------
    library
        The library's name, for the message (``"zlib-ng"``).
    version
        Its version as it reports it (``"2.3.3"``).
    tested
        The lowest and highest major.minor the tests ran on, both included.

    Returns
    -------
    str | None
        `None` when ``version``'s major.minor is within ``tested``, else the reason, naming both.
    """
    (low_major, low_minor), (high_major, high_minor) = tested
    numbers = major_minor(version)
    if numbers is not None and tested[0] <= numbers <= tested[1]:
        return None
    return (
        f"{library} {version} is outside the versions this build was tested with "
        f"({low_major}.{low_minor} to {high_major}.{high_minor})"
    )


def check_zlibng(version: str) -> None:
    """Raise :class:`UntestedLibraryError` unless zlib-ng ``version`` is within :data:`ZLIBNG_TESTED`."""
    reason = refusal("zlib-ng", version, ZLIBNG_TESTED)
    if reason is not None:
        raise UntestedLibraryError(reason)


def check_libzstd(version_number: int) -> str:
    """libzstd's ``ZSTD_versionNumber()`` as ``"1.5.7"``, if within :data:`LIBZSTD_TESTED`.

    Raises
    ------
    UntestedLibraryError
        If it is not.
    """
    version = f"{version_number // 10000}.{version_number // 100 % 100}.{version_number % 100}"
    reason = refusal("libzstd", version, LIBZSTD_TESTED)
    if reason is not None:
        raise UntestedLibraryError(reason)
    return version
