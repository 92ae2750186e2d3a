"""Giving the memory a finished piece of work freed back to the system.

When Python frees objects, the C allocator keeps the pages to reuse them: glibc's malloc keeps
the freed chunks of its heaps, and Arrow's memory pool keeps its freed buffers. In a process
that runs many steps one after another (`esk-data demo` runs every step of a job in the
demo's own process), what one step freed stays in the process's RSS, and the next step starts
from there.
`release_freed_memory()` hands it back: a full garbage collection (objects kept only by
reference cycles), Arrow's `release_unused()`, and glibc's `malloc_trim(0)`, which returns the
free pages of every heap, not only the top of the main one. Where the C library has no
`malloc_trim` (musl, macOS), that part is skipped.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable

import pyarrow as pa

__all__ = ["release_freed_memory"]


def release_freed_memory() -> None:
    """Collect garbage, then give the freed memory of Arrow's pool and of malloc to the system."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
