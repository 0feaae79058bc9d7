"""Addresses, ports and tokens for `scenegrep serve`."""

from __future__ import annotations

import ipaddress
import re
import socket

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
"""A token the user chooses: long enough not to be guessed, and safe in a URL and a cookie as it is."""


def is_loopback(host: str) -> bool:
    """Whether `host` is an address only this machine can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def valid_token(token: str) -> bool:
    return bool(TOKEN.match(token))


def check_port(host: str, port: int) -> str | None:
    """Why the server cannot listen at host:port, or None when it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), port))
    except OSError as exc:
        return f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host"
    return None


def page_url(host: str, port: int, token: str | None) -> str:
    """The URL to open: this machine's name for a wildcard address, the token in the query."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
