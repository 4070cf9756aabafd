# The C types that Cython adds when it compiles src/hikari_shard/_pure/inflate.py into
# hikari_shard._fastpath.inflate (setup.py).  The logic lives only in that .py file.

cimport cython


@cython.final
cdef class _Broken:
    cdef str _scheme


@cython.final
cdef class ZlibStreamInflator:
    cdef object _decompress
    cdef object _max_length
    cdef Py_ssize_t _max_message_size
    cdef Py_ssize_t _uncapped_size
    cdef bytearray _buffer
    cdef Py_ssize_t _used

    @cython.locals(message=bytes)
    cdef bytes _inflate(self, object data, Py_ssize_t compressed)

    @cython.locals(used=Py_ssize_t, end=Py_ssize_t, buffer=bytearray)
    cdef object _feed_fragment(self, object frame)

    cdef _fail(self)


@cython.final
cdef class ZstdStreamInflator:
    cdef object _decompress
    cdef object _max_length
    cdef Py_ssize_t _max_message_size
    cdef Py_ssize_t _pending
    cdef int _window_log_max

    cdef object _new_decompress(self)

    cdef _fail(self)


@cython.final
cdef class PayloadZlibInflator:
    cdef object _max_length
    cdef Py_ssize_t _max_message_size
