"""nnlayers/kernels/threads.py: batch cuts, lanes of chunks in order, nesting, and per-thread scratch."""
import threading

import numpy as np
import pytest

from nnlayers.kernels import threads as _threads


def test_even_slices_and_slices_within_cut_a_batch():
    assert _threads.even_slices(7, 3) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert _threads.slices_within(12, bytes_each=100, budget=300) == _threads.even_slices(12, 4)
    assert _threads.slices_within(3, bytes_each=1000, budget=10) == [slice(0, 1), slice(1, 2), slice(2, 3)]
    # In pairs, whatever the thread count, so that two lanes share them evenly: 3 → 4, 1 → 2 ...
    assert _threads.slices_within(12, bytes_each=100, budget=400) == _threads.even_slices(12, 4)
    assert _threads.slices_within(10, bytes_each=100, budget=5000) == [slice(0, 5), slice(5, 10)]
    assert _threads.slices_within(1, bytes_each=100, budget=5000) == [slice(0, 1)]
    # ... with every other chunk holding half the items: 2 + 3 and 3 + 2, not 2 + 3 and 2 + 3.
    assert [(c.start, c.stop) for c in _threads.slices_within(10, bytes_each=100, budget=300)] == \
        [(0, 2), (2, 5), (5, 8), (8, 10)]
    for total in range(2, 40):
        sizes = [c.stop - c.start for c in _threads.slices_within(total, bytes_each=100, budget=300)]
        assert sum(sizes) == total and abs(sum(sizes[0::2]) - sum(sizes[1::2])) <= 1, total
    assert _threads.slices_within(0, 4, 100) == []


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_results_come_back_in_chunk_order_from_every_lane(threads, set_threads):
    set_threads(threads)
    workers = {}

    def work(chunk, scratch):
        workers[chunk] = threading.get_ident()
        return chunk * chunk

    assert _threads.map_chunks(work, list(range(7))) == [k * k for k in range(7)]
    used = len(set(workers.values()))                         # a pool thread may serve two lanes
    assert used == 1 if threads == 1 else 2 <= used <= threads
    assert workers[0] == threading.get_ident()                 # lane 0 is the caller


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_combine_takes_results_in_chunk_order_on_the_caller(threads, set_threads):
    set_threads(threads)
    caller, taken = threading.get_ident(), []

    def work(chunk, scratch):
        return chunk, threading.get_ident()

    def combine(result):
        assert threading.get_ident() == caller
        taken.append(result[0])

    assert _threads.map_chunks(work, list(range(9)), combine=combine) is None
    assert taken == list(range(9))


def test_every_lane_has_scratch_of_its_own(set_threads):
    set_threads(2)
    both_inside = threading.Barrier(2, timeout=10)

    def work(chunk, scratch):
        both_inside.wait()                                     # the two lanes at work at once
        assert scratch is _threads.scratch()
        return id(scratch)

    first, second = _threads.map_chunks(work, [0, 1])
    assert first != second


def test_work_nested_in_a_lane_stays_on_that_lane(set_threads):
    set_threads(2)
    seen = []

    def inner(piece, scratch):
        return threading.get_ident(), piece

    def outer(chunk, scratch):
        mine = threading.get_ident()
        assert _threads.num_threads() == 1                     # so a layer's own spreading is serial here
        for threads in (None, 2):                              # even when asked for two: no waiting on itself
            assert _threads.map_chunks(inner, [0, 1, 2], threads=threads) == [(mine, 0), (mine, 1), (mine, 2)]
        seen.append(mine)
        return chunk

    assert _threads.map_chunks(outer, [0, 1, 2, 3]) == [0, 1, 2, 3]
    assert len(set(seen)) == 2
    assert _threads.num_threads() == 2                         # the caller is out of its lane again


def test_an_error_in_a_lane_reaches_the_caller_after_every_lane_stops(set_threads):
    set_threads(2)
    finished = []

    def work(chunk, scratch):
        if chunk == 1:
            raise ValueError("chunk 1")
        finished.append(chunk)

    with pytest.raises(ValueError, match="chunk 1"):
        _threads.map_chunks(work, [0, 1, 2, 3])
    assert sorted(finished) == [0, 2]                          # lane 1 stopped at its first chunk
    assert _threads.num_threads() == 2


def test_scratch_arrays_are_reused_per_thread_and_grow_when_needed():
    scratch = _threads.Scratch()
    a = scratch.array("cols", (2, 3), np.float32)
    assert a.shape == (2, 3) and a.dtype == np.float32 and a.flags.c_contiguous
    b = scratch.array("cols", (3, 2), np.float32)
    assert np.shares_memory(a, b)                              # the same memory again
    c = scratch.array("cols", (100,), np.float64)
    assert c.nbytes == 800 and scratch.nbytes() == 800         # grown
    assert not np.shares_memory(scratch.zeros("grid", (4,), np.float64), c)
    other = []
    t = threading.Thread(target=lambda: other.append(_threads.scratch()))
    t.start()
    t.join()
    assert other[0] is not _threads.scratch()                  # one set per thread


def test_set_num_threads_refuses_what_is_not_a_positive_integer(set_threads):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="count must be a positive integer"):
            set_threads(bad)
