"""Checks every request before a route sees it: the access token, the Host
header, the body size, the origin of requests that act; and adds headers that
keep the page's content inert.

Without a token the server answers only requests addressed to a loopback
name, so a web page elsewhere cannot reach it by pointing a domain at
127.0.0.1 (DNS rebinding). With a token, the token is what counts: it comes as
`Authorization: Bearer …`, as the cookie set when the printed URL's
`?token=` is opened, or as `?token=` itself.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

from .uploads import MAX_REQUEST_BYTES

COOKIE = "scenegrep_token"

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""Host header names a tokenless server answers to."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' blob: data:; media-src 'self'; "
                                 b"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
"""No inline script, nothing from elsewhere (the page works offline and an
injected tag cannot run), no sniffing a video or thumbnail into HTML, and no
token leaking in a Referer."""


class BodyTooLarge(Exception):
    pass


class Guard:
    """ASGI middleware around the app; `token` None means loopback-only, no token."""

    def __init__(self, app, token: str | None = None, max_body: int = MAX_REQUEST_BYTES):
        self.app = app
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        refusal = self._refusal(scope, headers, query)
        if refusal:
            return await _json(send, *refusal)
        if self.token and query.get("token") and scope["method"] == "GET" and scope["path"] == "/":
            return await _enter(send, self.token)  # keep the token in a cookie and drop it from the address bar
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return await _json(send, 413, f"request body over {self.max_body // (1024 * 1024)} MB")

        received = 0
        started = False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge
            return message

        async def secured(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": list(message.get("headers", [])) + HEADERS}
            await send(message)

        try:
            await self.app(scope, counted, secured)
        except BodyTooLarge:
            if not started:
                await _json(send, 413, f"request body over {self.max_body // (1024 * 1024)} MB")

    def _refusal(self, scope, headers: dict, query: dict) -> tuple[int, str] | None:
        if self.token:
            given = _bearer(headers) or _cookie(headers) or (query.get("token") or [""])[0]
            if not hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode("utf-8")):
                return 401, "this server needs its access token: open the URL `scenegrep serve` printed (…/?token=…)"
        elif _hostname(headers.get("host", "")) not in LOOPBACK_HOSTS:
            return 403, "this server answers only at 127.0.0.1 or localhost; bind another address with a token"
        origin = headers.get("origin")
        if scope["method"] not in SAFE_METHODS and origin \
                and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():  # "null" too: a sandboxed frame
            return 403, "requests that act must come from this server's own page"
        return None


def _hostname(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _bearer(headers: dict) -> str:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _cookie(headers: dict) -> str:
    try:
        morsel = SimpleCookie(headers.get("cookie", "")).get(COOKIE)
    except Exception:  # a malformed Cookie header is no token
        return ""
    return morsel.value if morsel else ""


async def _json(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + HEADERS})
    await send({"type": "http.response.body", "body": body})


async def _enter(send, token: str) -> None:
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/".encode("latin-1")
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", b"/"), (b"set-cookie", cookie), (b"content-length", b"0")] + HEADERS})
    await send({"type": "http.response.body", "body": b""})
