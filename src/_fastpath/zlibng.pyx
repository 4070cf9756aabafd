# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""zlib-ng's C API for the compiled zlib-stream inflator, without a Python wrapper's per-call costs.

``decompressobj().decompress(data, max_length)`` behaves like ``zlib_ng.decompressobj()``'s for the
way :class:`~hikari_shard._pure.inflate.ZlibStreamInflator` uses it (every call gets whole
sync-flushed messages; ``max_length`` only bounds the output) and runs the same inflate code, but
costs less per call: a vectorcall instead of an argument tuple and ``PyArg_ParseTupleAndKeywords``,
the GIL kept for inputs under 64 KiB (released only where inflating takes long), and the output
inflated into a scratch buffer kept between calls, then copied once into a ``bytes`` of the exact
size; an output over 1 MiB is inflated into its ``bytes`` directly, grown in 1 MiB steps
(``decompressor.pxi``).

Where the C functions come from: the ``zlib_ng`` package (a dependency) links zlib-ng 2.x into its
extension module and exports its native API (``zng_inflateInit2``, ``zng_inflate``, ...).  This
module looks those symbols up in that loaded extension (``dlopen`` with ``RTLD_NOLOAD``, then
``dlsym``) and calls them; nothing is linked at build time.  The import fails with `ImportError`
when they cannot be found: on Windows (extensions export only their init function), or if a later
``zlib_ng`` hides them.  It also fails, with :class:`hikari_shard._c_api.UntestedLibraryError`,
when the zlib-ng is outside the major.minor range the tests ran on
(:data:`hikari_shard._c_api.ZLIBNG_TESTED`): ``zng_inflateInit2`` takes no version or struct
size, so a ``zng_stream`` layout other than the one declared here would corrupt memory silently.
The compiled inflator then uses ``zlib_ng.decompressobj`` (logging a WARNING for an untested
version), and ``python -m hikari_shard info`` says which one runs.

What it does not do, because the zlib-stream inflator never needs it: ``unconsumed_tail`` (input
left when ``max_length`` stops the output is dropped; the inflator treats reaching the limit as a
fatal error), ``unused_data`` after the end of the stream (Discord's stream never ends; anything
after an end is ignored), ``flush()``, dictionaries and other window sizes.  One object must not be
used from two threads at once.
"""

from libc.string cimport memset

from zlib_ng import zlib_ng as _zlib_ng

from hikari_shard import _c_api

include "decompressor.pxi"

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    /* zlib-ng 2.x's zng_stream (zlib-ng.h), field for field. */
    typedef struct hs_zng_stream {
        const uint8_t *next_in;
        uint32_t avail_in;
        size_t total_in;
        uint8_t *next_out;
        uint32_t avail_out;
        size_t total_out;
        const char *msg;
        void *state;
        void *zalloc;
        void *zfree;
        void *opaque;
        int data_type;
        uint32_t adler;
        unsigned long reserved;
    } hs_zng_stream;
    typedef int32_t (*hs_inflate_init2_fn)(hs_zng_stream *, int32_t);
    typedef int32_t (*hs_inflate_fn)(hs_zng_stream *, int32_t);
    typedef int32_t (*hs_inflate_end_fn)(hs_zng_stream *);
    typedef const char *(*hs_version_fn)(void);
    """
    ctypedef struct hs_zng_stream:
        const unsigned char* next_in
        unsigned int avail_in
        unsigned char* next_out
        unsigned int avail_out
        const char* msg
    ctypedef int (*hs_inflate_init2_fn)(hs_zng_stream*, int) noexcept
    ctypedef int (*hs_inflate_fn)(hs_zng_stream*, int) noexcept nogil
    ctypedef int (*hs_inflate_end_fn)(hs_zng_stream*) noexcept
    ctypedef const char* (*hs_version_fn)() noexcept

cdef enum:
    Z_OK = 0
    Z_STREAM_END = 1
    Z_NEED_DICT = 2
    Z_STREAM_ERROR = -2
    Z_DATA_ERROR = -3
    Z_MEM_ERROR = -4
    Z_BUF_ERROR = -5
    Z_SYNC_FLUSH = 2
    _WINDOW_BITS = 15  # zlib format, 32 KiB window: decompressobj()'s default

__all__ = ("ZLIBNG_VERSION", "Decompress", "decompressobj", "error")

error = _zlib_ng.error
"""Raised for corrupt data: ``zlib_ng.error``, as zlib-ng's own decompressobj raises."""

cdef hs_inflate_init2_fn _inflate_init2 = NULL
cdef hs_inflate_fn _inflate = NULL
cdef hs_inflate_end_fn _inflate_end = NULL


cdef str _find_api():
    """Fill in the function pointers from zlib_ng's extension; return its zlib-ng version."""
    global _inflate_init2, _inflate, _inflate_end
    cdef void* handle = _loaded_handle(_zlib_ng.__file__)
    cdef hs_version_fn version_of
    if handle is NULL:
        raise ImportError(f"zlib-ng's C API is not reachable in {_zlib_ng.__file__}")
    version_of = <hs_version_fn>hs_symbol(handle, "zlibng_version")
    _inflate_init2 = <hs_inflate_init2_fn>hs_symbol(handle, "zng_inflateInit2")
    _inflate = <hs_inflate_fn>hs_symbol(handle, "zng_inflate")
    _inflate_end = <hs_inflate_end_fn>hs_symbol(handle, "zng_inflateEnd")
    if version_of is NULL or _inflate_init2 is NULL or _inflate is NULL or _inflate_end is NULL:
        raise ImportError(f"{_zlib_ng.__file__} does not export zlib-ng's inflate functions")
    version = version_of().decode("ascii")
    _c_api.check_zlibng(version)  # zng_inflateInit2 checks no version or struct size: this is the only guard
    return version


ZLIBNG_VERSION = _find_api()
"""The zlib-ng version whose inflate this module calls (the one inside the ``zlib_ng`` package)."""

cdef unsigned int _MAX_CHUNK = 1 << 30
"""zlib counts in ``unsigned int``: larger inputs and outputs go in steps of this size."""


cdef class Decompress(_ScratchDecompressor):
    """One zlib stream (``zlib_ng.decompressobj()``'s format: a zlib header, a 32 KiB window).

    ``decompress(data, max_length=-1)``: a positive ``max_length`` bounds the output; 0 or less
    does not, as in zlib.
    """

    cdef hs_zng_stream _stream
    cdef bint _ready

    def __cinit__(self):
        memset(&self._stream, 0, sizeof(hs_zng_stream))
        status = _inflate_init2(&self._stream, _WINDOW_BITS)
        if status == Z_MEM_ERROR:
            raise MemoryError("zlib-ng: out of memory")
        if status != Z_OK:
            raise error(f"Error {status} while preparing to decompress data")
        self._ready = True

    def __dealloc__(self):
        if self._ready:
            _inflate_end(&self._stream)

    cdef bytes _decompress(self, const unsigned char* data, Py_ssize_t size, Py_ssize_t max_length):
        cdef hs_zng_stream* stream = &self._stream
        cdef Py_ssize_t remaining = size, produced = 0, room
        cdef Py_ssize_t limit = max_length if max_length > 0 else PY_SSIZE_T_MAX
        cdef unsigned int given
        cdef int status = Z_OK
        cdef bint release = size >= _NOGIL_FROM
        if self._eof or size == 0:
            return b""
        stream.next_in = data
        while remaining and produced < limit and not self._eof:
            stream.avail_in = given = <unsigned int>min(remaining, <Py_ssize_t>_MAX_CHUNK)
            while produced < limit:
                if produced == self._capacity:
                    self._grow(produced + 1, limit)
                room = min(self._capacity - produced, limit - produced, <Py_ssize_t>_MAX_CHUNK)
                stream.next_out = self._out + produced
                stream.avail_out = <unsigned int>room
                if release:
                    with nogil:
                        status = _inflate(stream, Z_SYNC_FLUSH)
                else:
                    status = _inflate(stream, Z_SYNC_FLUSH)
                produced += room - stream.avail_out
                if status == Z_STREAM_END:
                    self._eof = True  # anything after the end of the stream is ignored
                    break
                if status != Z_OK and status != Z_BUF_ERROR:
                    stream.next_in = NULL
                    self._fail(status)
                if stream.avail_out:
                    break  # zlib had room left: this chunk of input is used up
            if stream.avail_in == given and not self._eof:
                break  # no input taken at all: zlib cannot go on (only when max_length stopped it)
            remaining -= given - stream.avail_in
        stream.next_in = NULL
        return self._take(produced)

    cdef int _fail(self, int status) except -1:
        cdef const char* reason = self._stream.msg
        self._drop()
        # The texts of zlib_ng's own wrapper (CPython's zlib module): the library's message, else a
        # fixed one for three codes, else none (Z_NEED_DICT comes without a message).
        if reason is not NULL:
            message = reason.decode("utf-8", "replace")
        elif status == Z_BUF_ERROR:
            message = "incomplete or truncated stream"
        elif status == Z_STREAM_ERROR:
            message = "inconsistent stream state"
        elif status == Z_DATA_ERROR:
            message = "invalid input data"
        else:
            message = None
        if status == Z_MEM_ERROR:
            raise MemoryError(f"zlib-ng: out of memory while decompressing data ({message})")
        if message is None:
            raise error(f"Error {status} while decompressing data")
        raise error(f"Error {status} while decompressing data: {message}")


def decompressobj():
    """A new :class:`Decompress`, like ``zlib_ng.decompressobj()`` with its defaults."""
    return Decompress()
