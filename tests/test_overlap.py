"""The overlap machinery: order kept, errors surface where they belong, nothing runs away."""

from __future__ import annotations

import threading

import pytest

from scenegrep.pipeline.overlap import BackgroundIterator, BackgroundWriter, prefetch_each


def test_background_iterator_keeps_order_and_reraises_the_producers_error():
    def produce():
        yield from range(5)
        raise ValueError("broken file")

    items = BackgroundIterator(produce, depth=2)
    got = []
    with pytest.raises(ValueError, match="broken file"):
        for item in items:
            got.append(item)
    assert got == [0, 1, 2, 3, 4]
    items.close()


def test_closing_early_stops_the_producer_and_runs_its_cleanup():
    produced, cleaned = [], threading.Event()

    def produce():
        try:
            for i in range(10_000):
                produced.append(i)
                yield i
        finally:
            cleaned.set()

    with BackgroundIterator(produce, depth=3) as items:
        assert next(items) == 0
    assert cleaned.is_set()
    # Bounded: the producer ran at most a queue (3) plus one in hand plus one taken ahead.
    assert len(produced) <= 6


def test_prefetch_each_yields_jobs_in_order_with_at_most_workers_running():
    running, peak, lock = [0], [0], threading.Lock()

    def job(n):
        def produce():
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                yield from (f"{n}.{i}" for i in range(3))
            finally:
                with lock:
                    running[0] -= 1
        return produce

    jobs = [(n, job(n) if n % 3 else None) for n in range(9)]
    seen = []
    for key, items in prefetch_each(jobs, workers=2, depth=1):
        seen.append((key, list(items) if items is not None else None))
    assert [key for key, _ in seen] == list(range(9))
    assert seen[1] == (1, ["1.0", "1.1", "1.2"]) and seen[3] == (3, None)
    assert peak[0] <= 2


def test_writer_runs_calls_in_order_and_a_failure_cancels_what_follows():
    done = []
    writer = BackgroundWriter(depth=2)
    first = writer.submit(done.append, "a")

    def fail():
        raise OSError("disk full")

    writer.submit(fail)
    after = writer.submit(done.append, "mark video as indexed")
    with pytest.raises(OSError, match="disk full"):
        writer.flush()
    assert first.result() is None and done == ["a"]
    assert after.cancelled()
    with pytest.raises(OSError):
        writer.submit(done.append, "b")
    with pytest.raises(OSError):
        writer.close()
