"""Helper threads and scratch buffers: lanes of chunks for Conv2D (im2col, products, col2im) and pooling.

(Also importable as ``nnlayers._threads``, its former path: the same module.)

numpy releases the GIL inside its array loops and matrix products, so Python
threads that work on different samples of a batch run on different cores.
A kernel cuts its batch into chunks and calls ``map_chunks(work, chunks)``;
``work(chunk, scratch)`` runs once per chunk, on the calling thread or on a
helper thread, and the results come back in chunk order (so sums over chunks
add up in the same order whatever the thread count).

``scratch`` hands out reusable work arrays, one set per thread: a kernel asks
for ``scratch.array("cols", shape, dtype)`` on every call and gets the same
memory back each time (grown when a larger one is asked for), instead of
allocating and freeing megabytes per step. Layers run one after another, so
every layer on a thread shares that thread's set; an array from ``scratch``
must therefore never be returned to the caller or cached, and its contents
are undefined when handed out.

The thread count is ``NNLAYERS_NUM_THREADS`` if set, else 1 (the caller alone);
``set_num_threads`` changes it at run time. ``Conv2D``'s fast path hands whole
chunks to the lanes (each unfolds and multiplies its own), pooling splits its
batch, and work nested inside a lane runs on that lane's thread
(``num_threads()`` is 1 there). One is the default because BLAS already uses
every core: OpenBLAS's helper thread keeps spinning after each product,
exactly when a second lane wants that core. Lanes are meant for BLAS at one
thread (``OPENBLAS_NUM_THREADS=1``): then the convolutions run on all the
lanes' cores while the matrix products outside convolutions stay on one
(the measurements: docs/speed.rst).
Results never depend on nnlayers' thread count (the chunks are cut the same
way whatever it is, and sums over them run in chunk order); OpenBLAS's own
thread count can change the last bits of its products.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

__all__ = ["num_threads", "set_num_threads", "map_chunks", "Scratch", "even_slices", "slices_within"]

_state = {"threads": None, "pool": None}
_pool_lock = threading.Lock()
_local = threading.local()


def _default_threads() -> int:
    value = os.environ.get("NNLAYERS_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


def num_threads() -> int:
    """How many threads (lanes) layers spread their work over (1: none besides the caller,
    and 1 inside a lane of ``map_chunks``: work nested in a lane runs on that lane's thread)."""
    if getattr(_local, "in_lane", False):
        return 1
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


def set_num_threads(count: int) -> None:
    """Use ``count`` threads (the caller and ``count`` − 1 helpers) from now on."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"set_num_threads: count must be a positive integer, got {count!r}")
    with _pool_lock:
        _state["threads"] = int(count)
        pool, _state["pool"] = _state["pool"], None
    if pool is not None:
        pool.shutdown(wait=False)


def even_slices(total: int, pieces: int) -> list:
    """``pieces`` consecutive slices covering range(total), their sizes differing by at most one."""
    cuts = [total * k // pieces for k in range(pieces + 1)]
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


#: Chunks of a batch come in multiples of this, so that two lanes share them evenly. A fixed
#: number, not the thread count: the cut, and so every sum over chunks, stays the same whatever
#: the thread count.
CHUNK_MULTIPLE = 2


def slices_within(total: int, bytes_each: int, budget: int) -> list:
    """The fewest ``even_slices`` of range(total) holding at most ``budget`` bytes each, at
    ``bytes_each`` per item (but at least one item each): a batch cut into chunks of samples.
    Their number is rounded up to a multiple of ``CHUNK_MULTIPLE`` (as far as there are items),
    and their sizes alternate so that every other chunk adds up to half the items."""
    if not total:
        return []
    pieces = -(-total // max(1, budget // max(bytes_each, 1)))
    pieces = min(total, -(-pieces // CHUNK_MULTIPLE) * CHUNK_MULTIPLE)
    if pieces % 2 or total % pieces == 0:
        return even_slices(total, pieces)
    # Cut pairs first, then each pair in two, its larger half going to whichever of the even and
    # odd positions holds fewer items so far: lanes taking every other chunk then get as many
    # items each, give or take one (6 items: 1, 2, 2, 1, not 1, 2, 1, 2).
    cuts, even, odd = [0], 0, 0
    for pair in even_slices(total, pieces // 2):
        size = pair.stop - pair.start
        first = size - size // 2 if even < odd else size // 2
        cuts += [pair.start + first, pair.stop]
        even, odd = even + first, odd + size - first
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


class Scratch:
    """Reusable work arrays of one thread, by name (see the module docstring)."""

    def __init__(self):
        self._buffers: dict[str, np.ndarray] = {}

    def array(self, name: str, shape, dtype) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` with undefined contents, reused across calls."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size:
            buffer = self._buffers[name] = np.empty(max(size, 1), dtype=np.uint8)
        return buffer[:size].view(dtype).reshape(shape)

    def zeros(self, name: str, shape, dtype) -> np.ndarray:
        array = self.array(name, shape, dtype)
        array.fill(0)
        return array

    def nbytes(self) -> int:
        return sum(buffer.size for buffer in self._buffers.values())


def scratch() -> Scratch:
    """This thread's scratch arrays."""
    mine = getattr(_local, "scratch", None)
    if mine is None:
        mine = _local.scratch = Scratch()
    return mine


def _pool(helpers: int) -> ThreadPoolExecutor:
    with _pool_lock:
        if _state["pool"] is None:
            _state["pool"] = ThreadPoolExecutor(helpers, thread_name_prefix="nnlayers")
        return _state["pool"]


def _forget_pool_after_fork() -> None:  # a forked child has none of the parent's threads
    _state["pool"] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def map_chunks(work, chunks, threads: int | None = None, combine=None):
    """``[work(chunk, scratch) for chunk in chunks]``, spread over up to ``threads`` threads.

    Chunk k goes to lane k mod (number of lanes), lane 0 being the calling
    thread; each lane works through its chunks in order with its own scratch.
    With one thread or one chunk everything runs on the caller, with no
    hand-over cost. Called from inside a lane, it runs on that lane's thread:
    ``num_threads()`` is 1 there, so work nests without waiting on itself.

    With ``combine``, nothing is returned: instead ``combine(result)`` is
    called on the calling thread for each chunk's result in chunk order, as
    soon as the results before it are in (a running sum thus keeps only a
    few results alive, and adds them in the same order whatever the lanes).
    """
    threads = num_threads() if threads is None or getattr(_local, "in_lane", False) else threads
    lanes = min(threads, len(chunks))
    if lanes <= 1:
        mine = scratch()
        if combine is None:
            return [work(chunk, mine) for chunk in chunks]
        for chunk in chunks:
            combine(work(chunk, mine))
        return None

    done, done_lock, taken = {}, threading.Lock(), [0]      # results by chunk index, not yet taken

    def lane(first: int) -> None:
        mine = scratch()
        _local.in_lane = True                 # work nested in this lane stays on its thread
        try:
            for k in range(first, len(chunks), lanes):
                result = work(chunks[k], mine)
                with done_lock:
                    done[k] = result
                if first == 0 and combine is not None:   # the caller's lane hands results on as it goes
                    take_ready()
        finally:
            _local.in_lane = False

    def take_ready() -> None:
        while True:
            with done_lock:
                if taken[0] not in done:
                    return
                result = done.pop(taken[0])
            combine(result)
            taken[0] += 1

    futures = [_pool(threads - 1).submit(lane, first) for first in range(1, lanes)]
    try:
        lane(0)
    finally:
        wait(futures)  # no lane may still be writing when the caller moves on, even after an error
    for future in futures:
        future.result()                       # a lane's error, raised here
    if combine is None:
        return [done[k] for k in range(len(chunks))]
    take_ready()
    return None
