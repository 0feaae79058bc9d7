"""A searching process runs numpy's BLAS on one thread.

A search's numpy work is small products: the text tower over a dozen tokens,
a few thousand rows of the frame matrix, the candidates' pairwise
similarities. A multi-threaded OpenBLAS splits each one across threads that
spin while they wait for work, so on a machine with anything else running
(an `index` next to the server, another program) every product waits for a
thread the scheduler has not run yet. `python bench/blas_threads.py` at 200k
frames on 2 cores, load 2.6: a new-text search p50 142 / p95 948 ms on 2
threads, 105 / 174 ms on one; with 2 more busy processes 1,513 / 3,170 against
197 / 333 ms. Refined searches (no text tower): p95 81 against 28 ms. The
text tower alone, `bench/text_tower.py` at load 2: p50 433 ms on 2 threads,
64 ms on one. On an idle machine 2 threads were ~1.2-1.4x faster at the
median (bench/RESULTS.md), which is worth less than never being 5-10x slower.
"""

from __future__ import annotations

SEARCH_BLAS_THREADS = 1
"""BLAS threads of a process that searches (`scenegrep search`, `scenegrep serve`)."""


def search_on_one_blas_thread() -> None:
    """Limit the BLAS libraries loaded so far (numpy's OpenBLAS) to SEARCH_BLAS_THREADS, for the rest of the process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(SEARCH_BLAS_THREADS, user_api="blas")
