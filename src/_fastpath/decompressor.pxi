# What zlibng.pyx and libzstd.pyx share (each includes this file): finding a C library's functions
# in an extension module that is already loaded, and a decompressor base class that owns the
# output scratch buffer and the buffer-protocol entry point.  Each module fills in _decompress.

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_CLEAR, Py_XDECREF
from libc.string cimport memcpy

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

cdef extern from *:
    """
    /* A new bytes object of `size` uninitialised bytes (a new reference, or NULL with MemoryError set). */
    static PyObject *hs_new_bytes(Py_ssize_t size) { return PyBytes_FromStringAndSize(NULL, size); }
    /* Resize the only reference to a bytes object: 0, or -1 with `*slot` freed, NULL and MemoryError set. */
    static int hs_resize(PyObject **slot, Py_ssize_t size) { return _PyBytes_Resize(slot, size); }
    /* Move the reference out of `*slot` (a new reference to the caller), leaving NULL. */
    static PyObject *hs_take_result(PyObject **slot) { PyObject *taken = *slot; *slot = NULL; return taken; }
    """
    PyObject* hs_new_bytes(Py_ssize_t size)
    int hs_resize(PyObject** slot, Py_ssize_t size)
    bytes hs_take_result(PyObject** slot)

import os as _os


cdef void* _loaded_handle(object path):
    """A handle on the already loaded extension module at ``path`` (NULL if it is not loaded, or on Windows)."""
    cdef bytes encoded = _os.fsencode(path)
    return hs_open_loaded(encoded)


cdef Py_ssize_t _FIRST_SCRATCH = 64 * 1024
cdef Py_ssize_t _SCRATCH_MAX = 1024 * 1024
"""The scratch buffer doubles up to this size and is kept; a longer output goes into its ``bytes`` directly."""
cdef Py_ssize_t _RESULT_STEP = 1024 * 1024
"""A result ``bytes`` being inflated into grows by this much at a time (and is trimmed once at the end)."""
cdef Py_ssize_t _NOGIL_FROM = 64 * 1024
"""Inputs at least this long are decompressed with the GIL released."""


cdef class _ScratchDecompressor:
    """Decompresses into a scratch buffer kept between calls, then one exact-size ``bytes``.

    Output up to :data:`_SCRATCH_MAX` (every message but the largest) goes into the scratch buffer,
    which doubles from 64 KiB as needed and is kept, then is copied once into a ``bytes`` of the
    exact size.  Past that, the scratch's content is copied once into a ``bytes`` one step
    larger, which the rest of the output is inflated into directly, growing by
    :data:`_RESULT_STEP` (``_PyBytes_Resize``: ``realloc``, which moves pages rather than bytes
    for blocks this large) and trimmed to size at the end.  One call's peak is its output plus at
    most 2 MiB (the scratch and one step), never more than ``max_length`` plus that.

    A subclass's ``_decompress`` writes at ``_out`` (``_capacity`` bytes), calls ``_grow`` when
    that is full, returns ``_take(produced)``, and calls ``_drop`` before raising.
    """

    cdef bint _eof
    cdef unsigned char* _scratch
    cdef Py_ssize_t _scratch_capacity
    cdef unsigned char* _out
    cdef Py_ssize_t _capacity
    cdef PyObject* _result

    def __dealloc__(self):
        PyMem_Free(self._scratch)
        Py_XDECREF(self._result)

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
        """Room at ``_out`` for at least ``needed`` bytes (the first ``needed - 1`` are the output so far).

        Never past ``limit``, the most a call may produce: the scratch doubles up to
        :data:`_SCRATCH_MAX`; past it, the output moves into the result ``bytes``, which grows by
        :data:`_RESULT_STEP`.
        """
        cdef Py_ssize_t capacity
        cdef unsigned char* grown
        if self._result is NULL and needed <= _SCRATCH_MAX:
            capacity = self._scratch_capacity if self._scratch_capacity else _FIRST_SCRATCH
            while capacity < needed:
                capacity *= 2
            capacity = min(capacity, _SCRATCH_MAX, limit)  # needed <= limit: still enough
            grown = <unsigned char*>PyMem_Realloc(self._scratch, <size_t>capacity)
            if grown is NULL:
                raise MemoryError("out of memory for the decompressed data")
            self._scratch = self._out = grown
            self._scratch_capacity = self._capacity = capacity
            return 0
        capacity = min(max(needed, self._capacity + _RESULT_STEP), limit)
        if self._result is NULL:
            self._result = hs_new_bytes(capacity)
            if self._result is NULL:
                raise MemoryError("out of memory for the decompressed data")
            memcpy(PyBytes_AS_STRING(<object>self._result), self._scratch, <size_t>(needed - 1))
        elif hs_resize(&self._result, capacity) < 0:
            self._drop()
            raise MemoryError("out of memory for the decompressed data")
        self._out = <unsigned char*>PyBytes_AS_STRING(<object>self._result)
        self._capacity = capacity
        return 0

    cdef bytes _take(self, Py_ssize_t produced):
        """The ``produced`` bytes of output as a ``bytes``: the scratch's copied, or the result trimmed to size."""
        if self._result is NULL:
            return PyBytes_FromStringAndSize(<const char*>self._scratch, produced)
        self._out = self._scratch
        self._capacity = self._scratch_capacity
        if produced < PyBytes_GET_SIZE(<object>self._result) and hs_resize(&self._result, produced) < 0:
            raise MemoryError("out of memory for the decompressed data")
        return hs_take_result(&self._result)

    cdef void _drop(self) noexcept:
        """Forget a partly inflated result (before raising): the scratch is the output again."""
        Py_CLEAR(self._result)
        self._out = self._scratch
        self._capacity = self._scratch_capacity
