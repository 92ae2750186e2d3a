"""`release_freed_memory` gives freed heap memory back to the system (glibc only)."""

import psutil
import pytest

from esk_pipeline.pipeline import memory

_CHUNKS = 100_000
_CHUNK_BYTES = 1024  # over CPython's small-object limit (512): each is a malloc of its own


@pytest.mark.skipif(memory._malloc_trim() is None, reason="the C library has no malloc_trim")
def test_freed_heap_memory_goes_back_to_the_system() -> None:
    process = psutil.Process()
    chunks = [bytes([i % 256]) * _CHUNK_BYTES for i in range(_CHUNKS)]
    # Every 64th kept: the freed ones are holes between chunks in use, which free() alone
    # cannot hand back (it only shrinks the heap's top), as after a step of many allocations.
    kept = chunks[::64]
    del chunks
    before = process.memory_info().rss
    memory.release_freed_memory()
    given_back = before - process.memory_info().rss
    # Whole pages inside the holes only; measured here, about half of the freed bytes.
    assert given_back > 0.3 * _CHUNKS * _CHUNK_BYTES
    assert len(kept) == _CHUNKS // 64 + 1
