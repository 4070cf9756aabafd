# What zlibng.pyx and libzstd.pyx share (each includes this file): finding a C library's functions
# in an extension module that is already loaded, and a decompressor base class that owns the
# output scratch buffer and the buffer-protocol entry point.  Each module fills in _decompress.

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX

cdef extern from *:
    """
    /* A loaded extension's own symbols (Python loads extensions RTLD_LOCAL, so they are not global). */
    #if defined(_WIN32)
    static void *hs_open_loaded(const char *path) { (void)path; return NULL; }
    static void *hs_symbol(void *handle, const char *name) { (void)handle; (void)name; return NULL; }
    #else
    #include <dlfcn.h>
    static void *hs_open_loaded(const char *path) { return dlopen(path, RTLD_NOW | RTLD_NOLOAD); }
    static void *hs_symbol(void *handle, const char *name) { return dlsym(handle, name); }
    #endif
    """
    void* hs_open_loaded(const char* path)
    void* hs_symbol(void* handle, const char* name)

import os as _os


cdef void* _loaded_handle(object path):
    """A handle on the already loaded extension module at ``path`` (NULL if it is not loaded, or on Windows)."""
    cdef bytes encoded = _os.fsencode(path)
    return hs_open_loaded(encoded)


cdef Py_ssize_t _FIRST_SCRATCH = 64 * 1024
cdef Py_ssize_t _SCRATCH_KEEP = 1024 * 1024
"""A scratch buffer that grew past this size is freed after its call instead of kept."""
cdef Py_ssize_t _NOGIL_FROM = 64 * 1024
"""Inputs at least this long are decompressed with the GIL released."""


cdef class _ScratchDecompressor:
    """Decompresses into a scratch buffer kept between calls, then one exact-size ``bytes``."""

    cdef bint _eof
    cdef unsigned char* _scratch
    cdef Py_ssize_t _capacity

    def __dealloc__(self):
        PyMem_Free(self._scratch)

    @property
    def eof(self):
        """Whether the end of the compressed stream (or frame) was reached."""
        return self._eof

    def decompress(self, data, Py_ssize_t max_length=-1):
        """Decompress ``data`` (bytes-like); at most ``max_length`` bytes of output when it is positive.

        Raises
        ------
        error
            If the data is corrupt.
        """
        cdef Py_buffer view
        if PyBytes_CheckExact(data):
            return self._decompress(<const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), max_length)
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            return self._decompress(<const unsigned char*>view.buf, view.len, max_length)
        finally:
            PyBuffer_Release(&view)

    cdef bytes _decompress(self, const unsigned char* data, Py_ssize_t size, Py_ssize_t max_length):
        raise NotImplementedError

    cdef int _grow(self, Py_ssize_t needed, Py_ssize_t limit) except -1:
        """Room for at least ``needed`` bytes: doubling, but never past ``limit`` (the most a call may produce)."""
        cdef Py_ssize_t capacity = self._capacity if self._capacity else _FIRST_SCRATCH
        cdef unsigned char* grown
        while capacity < needed:
            capacity *= 2
        if capacity > limit:
            capacity = max(needed, limit)
        grown = <unsigned char*>PyMem_Realloc(self._scratch, <size_t>capacity)
        if grown is NULL:
            raise MemoryError("out of memory for the decompressed data")
        self._scratch = grown
        self._capacity = capacity
        return 0

    cdef bytes _take(self, Py_ssize_t produced):
        """The first ``produced`` scratch bytes as a new ``bytes``; a scratch grown past 1 MiB is freed."""
        message = PyBytes_FromStringAndSize(<const char*>self._scratch, produced)
        if self._capacity > _SCRATCH_KEEP:
            PyMem_Free(self._scratch)
            self._scratch = NULL
            self._capacity = 0
        return message
