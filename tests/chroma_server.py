"""Start and stop a real Chroma server (`chroma run`) on 127.0.0.1 for tests and CI.

    python tests/chroma_server.py start --path DIR   # prints the URL, then the pid
    python tests/chroma_server.py stop PID

A free port is picked by the OS; if another process grabs it before the
server binds (a port collision), or the server dies while starting, it is
started again on a new port. A slow start is waited for up to START_TIMEOUT.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from ports import free_port

START_TIMEOUT = 90.0
"""Seconds to wait for the heartbeat: the server starts in ~2 s, but CI machines
shared by several jobs can be many times slower."""

START_ATTEMPTS = 3
"""Fresh ports tried before giving up (each collision costs one attempt)."""


def heartbeat(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def chroma_executable() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "chroma")
    found = here if os.path.exists(here) else shutil.which("chroma")
    if not found:
        raise RuntimeError("the `chroma` command (from the chromadb package) is not installed")
    return found


def start(path: str, log_path: str | None = None) -> tuple[str, subprocess.Popen]:
    """Start `chroma run` on a free loopback port; returns (url, process) once it answers."""
    errors = []
    for _ in range(START_ATTEMPTS):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = open(log_path or os.devnull, "ab")
        process = subprocess.Popen(
            [chroma_executable(), "run", "--path", path, "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                errors.append(f"port {port}: server exited with {process.returncode} (port taken?)")
                break
            if heartbeat(url):
                return url, process
            time.sleep(0.2)
        else:
            stop(process)
            errors.append(f"port {port}: no heartbeat within {START_TIMEOUT:.0f} s")
    raise RuntimeError("could not start a Chroma server: " + "; ".join(errors))


def stop(process: subprocess.Popen | int) -> None:
    """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
    pid = process if isinstance(process, int) else process.pid
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if isinstance(process, subprocess.Popen):
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            pass
    else:
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "start" and sys.argv[2] == "--path":
        server_url, server = start(sys.argv[3], log_path=sys.argv[3].rstrip("/") + ".log")
        print(server_url)
        print(server.pid)
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
