"""A searching process (`scenegrep search`, `scenegrep serve`'s engine) runs numpy's BLAS on one thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

BLAS_THREADS = (
    "from threadpoolctl import threadpool_info\n"
    "print('BLAS', sorted({pool['num_threads'] for pool in threadpool_info() if pool['user_api'] == 'blas'}),"
    " file=sys.stderr)\n"
)


@pytest.mark.parametrize("searcher", ["search command", "serve engine"])
def test_a_searching_process_runs_blas_on_one_thread(searcher, shared_index):
    run = {
        "search command": "from scenegrep.cli.main import cli\n"
                          f"cli(['search', 'a red ball', '--json', '--db', {str(shared_index)!r}], standalone_mode=False)\n",
        "serve engine": "from scenegrep.pipeline.index_access import Location\n"
                        "from scenegrep.serve.engine import Engine\n"
                        f"Engine(Location(db={str(shared_index)!r})).close()\n",
    }[searcher]
    script = (
        "import sys\n"
        "import numpy\n"
        "from threadpoolctl import threadpool_limits\n"
        "threadpool_limits(2, user_api='blas')  # as numpy starts on a machine with 2 or more CPUs\n"
        + BLAS_THREADS.replace("'BLAS'", "'BEFORE'") + run + BLAS_THREADS
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    assert done.returncode == 0, done.stderr
    assert "BEFORE [2]" in done.stderr and "BLAS [1]" in done.stderr, done.stderr
    if searcher == "search command":
        assert len(json.loads(done.stdout)) > 0
