# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""libzstd's C API for the compiled zstd-stream inflator, without a Python wrapper's per-call costs.

``Decompressor(window_log_max).decompress(data, max_length)`` behaves like
``ZstdDecompressor(options={window_log_max: ...}).decompress`` of :mod:`compression.zstd` /
``backports.zstd`` for the way :class:`~hikari_shard._pure.inflate.ZstdStreamInflator` uses it
(``max_length`` only bounds the output) and runs the same libzstd, but costs less per call: a
vectorcall instead of argument parsing, no GIL release under 64 KiB of input, and the output
decompressed into a scratch buffer kept between calls, then copied once into a ``bytes`` of the
exact size; an output over 1 MiB is decompressed into its ``bytes`` directly, grown in 1 MiB steps
(``decompressor.pxi``).

Where the C functions come from: the zstd module's extension (``backports.zstd._zstd``, or
``_zstd`` on Python 3.14+) carries libzstd and exports its API.  This module looks the few stable
functions it needs up in that loaded extension (``dlopen`` with ``RTLD_NOLOAD``, then ``dlsym``);
nothing is linked at build time.  The import fails with `ImportError` when there is no zstd
module or the functions cannot be found (Windows, a statically linked interpreter), and with
:class:`hikari_shard._c_api.UntestedLibraryError` when libzstd is outside the major.minor range
the tests ran on (:data:`hikari_shard._c_api.LIBZSTD_TESTED`): the compiled inflator then uses the
zstd module's ``ZstdDecompressor`` (logging a WARNING for an untested version), and
``python -m hikari_shard info`` says which one runs.

Not supported, because the zstd-stream inflator never needs it: input left over when
``max_length`` stops the output is dropped (the inflator treats reaching the limit as fatal);
after the end of a Zstandard frame (Discord's stream is one endless frame) ``decompress`` raises
`EOFError`, as the zstd module does.  One object must not be used from two threads at once.
"""

import importlib

try:
    from compression import zstd as _zstd
except ImportError:
    from backports import zstd as _zstd

from hikari_shard import _c_api

include "decompressor.pxi"

cdef extern from *:
    """
    #include <stddef.h>
    /* libzstd's stable API (zstd.h, 1.4.0 and later), as much of it as this module uses. */
    typedef struct hs_zstd_in { const void *src; size_t size; size_t pos; } hs_zstd_in;
    typedef struct hs_zstd_out { void *dst; size_t size; size_t pos; } hs_zstd_out;
    typedef void *(*hs_create_dctx_fn)(void);
    typedef size_t (*hs_free_dctx_fn)(void *);
    typedef size_t (*hs_set_parameter_fn)(void *, int, int);
    typedef size_t (*hs_decompress_stream_fn)(void *, hs_zstd_out *, hs_zstd_in *);
    typedef unsigned (*hs_is_error_fn)(size_t);
    typedef const char *(*hs_error_name_fn)(size_t);
    typedef unsigned (*hs_version_number_fn)(void);
    #define HS_ZSTD_D_WINDOW_LOG_MAX 100
    """
    ctypedef struct hs_zstd_in:
        const void* src
        size_t size
        size_t pos
    ctypedef struct hs_zstd_out:
        void* dst
        size_t size
        size_t pos
    ctypedef void* (*hs_create_dctx_fn)() noexcept
    ctypedef size_t (*hs_free_dctx_fn)(void*) noexcept
    ctypedef size_t (*hs_set_parameter_fn)(void*, int, int) noexcept
    ctypedef size_t (*hs_decompress_stream_fn)(void*, hs_zstd_out*, hs_zstd_in*) noexcept nogil
    ctypedef unsigned (*hs_is_error_fn)(size_t) noexcept
    ctypedef const char* (*hs_error_name_fn)(size_t) noexcept
    ctypedef unsigned (*hs_version_number_fn)() noexcept
    int HS_ZSTD_D_WINDOW_LOG_MAX

__all__ = ("ZSTD_VERSION", "Decompressor", "error")

error = _zstd.ZstdError
"""Raised for corrupt data: the zstd module's ``ZstdError``, as its ``ZstdDecompressor`` raises."""

cdef hs_create_dctx_fn _create_dctx = NULL
cdef hs_free_dctx_fn _free_dctx = NULL
cdef hs_set_parameter_fn _set_parameter = NULL
cdef hs_decompress_stream_fn _decompress_stream = NULL
cdef hs_is_error_fn _is_error = NULL
cdef hs_error_name_fn _error_name = NULL



cdef str _find_api():
    """Fill in the function pointers from the zstd module's extension; return libzstd's version."""
    global _create_dctx, _free_dctx, _set_parameter, _decompress_stream, _is_error, _error_name
    cdef void* handle = NULL
    cdef hs_version_number_fn version_number
    for name in ("backports.zstd._zstd", "_zstd"):
        try:
            module = importlib.import_module(name)  # already loaded by the zstd module's import
        except ImportError:
            continue
        path = getattr(module, "__file__", None)
        if path:
            handle = _loaded_handle(path)
            if handle is not NULL:
                break
    if handle is NULL:
        raise ImportError("libzstd's C API is not reachable in the zstd module's extension")
    version_number = <hs_version_number_fn>hs_symbol(handle, "ZSTD_versionNumber")
    _create_dctx = <hs_create_dctx_fn>hs_symbol(handle, "ZSTD_createDCtx")
    _free_dctx = <hs_free_dctx_fn>hs_symbol(handle, "ZSTD_freeDCtx")
    _set_parameter = <hs_set_parameter_fn>hs_symbol(handle, "ZSTD_DCtx_setParameter")
    _decompress_stream = <hs_decompress_stream_fn>hs_symbol(handle, "ZSTD_decompressStream")
    _is_error = <hs_is_error_fn>hs_symbol(handle, "ZSTD_isError")
    _error_name = <hs_error_name_fn>hs_symbol(handle, "ZSTD_getErrorName")
    if (
        version_number is NULL or _create_dctx is NULL or _free_dctx is NULL or _set_parameter is NULL
        or _decompress_stream is NULL or _is_error is NULL or _error_name is NULL
    ):
        raise ImportError("the zstd module's extension does not export libzstd's decompression functions")
    return _c_api.check_libzstd(version_number())


ZSTD_VERSION = _find_api()
"""The libzstd version whose decompression this module calls."""


cdef class Decompressor(_ScratchDecompressor):
    """One Zstandard decompression context, its window capped at ``2 ** window_log_max`` bytes.

    ``decompress(data, max_length=-1)``: a ``max_length`` of 0 or more bounds the output, as in
    the zstd module; after the end of a frame it raises `EOFError`.
    """

    cdef void* _dctx

    def __cinit__(self, int window_log_max):
        self._dctx = _create_dctx()
        if self._dctx is NULL:
            raise MemoryError("zstd: out of memory for a decompression context")
        self._check(_set_parameter(self._dctx, HS_ZSTD_D_WINDOW_LOG_MAX, window_log_max))

    def __dealloc__(self):
        if self._dctx is not NULL:
            _free_dctx(self._dctx)

    cdef int _check(self, size_t code) except -1:
        if _is_error(code):
            self._drop()
            raise error(f"Unable to decompress Zstandard data: {_error_name(code).decode('utf-8', 'replace')}")
        return 0

    cdef bytes _decompress(self, const unsigned char* data, Py_ssize_t size, Py_ssize_t max_length):
        cdef hs_zstd_in source
        cdef hs_zstd_out target
        cdef size_t status
        cdef Py_ssize_t produced = 0
        cdef Py_ssize_t limit = max_length if max_length >= 0 else PY_SSIZE_T_MAX
        cdef bint release = size >= _NOGIL_FROM
        if self._eof:
            raise EOFError("Already at the end of a Zstandard frame.")
        source.src = data
        source.size = <size_t>size
        source.pos = 0
        while produced < limit:
            if produced == self._capacity:
                self._grow(produced + 1, limit)
            target.dst = self._out + produced
            target.size = <size_t>min(self._capacity - produced, limit - produced)
            target.pos = 0
            if release:
                with nogil:
                    status = _decompress_stream(self._dctx, &target, &source)
            else:
                status = _decompress_stream(self._dctx, &target, &source)
            self._check(status)
            produced += <Py_ssize_t>target.pos
            if status == 0:
                self._eof = True  # a whole frame decoded and flushed; what follows it is dropped
                break
            if source.pos == source.size and target.pos < target.size:
                break  # all input taken and zstd had room left: nothing more to flush now
        return self._take(produced)
