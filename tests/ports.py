"""Free loopback ports for the servers tests start (Chroma, Ray)."""

from __future__ import annotations

import socket

RAY_DEFAULT_PORTS = frozenset({6379, 8265, 10001, 52365, *range(10002, 20000)})
"""Ports a `ray start` takes by default (GCS, dashboard, client server, dashboard agent,
workers). Ray refuses to start when a port given to it is one of them, or is taken by
another server: the kernel's ephemeral range holds 52365, and a CI run once drew it for
the Ray client server, so no node started."""


def free_port() -> int:
    """A free loopback port that none of Ray's own defaults will claim."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in RAY_DEFAULT_PORTS:
            return port
