"""The Chroma server the server-mode tests (and CI) run against starts reliably."""

from __future__ import annotations

import socket

import chroma_server


def test_a_taken_port_is_retried_on_a_fresh_one(tmp_path, monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        ports = iter([busy_port])
        real_free_port = chroma_server.free_port
        monkeypatch.setattr(chroma_server, "free_port", lambda: next(ports, None) or real_free_port())
        url, process = chroma_server.start(str(tmp_path / "data"))
        try:
            assert not url.endswith(f":{busy_port}")
            assert chroma_server.heartbeat(url)
        finally:
            chroma_server.stop(process)
    assert process.poll() is not None  # stopped
