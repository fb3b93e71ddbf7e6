"""Security headers on every response, and when cookies must be ``Secure``."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: No inline script or style anywhere: scripts and styles come from /static only, charts are SVG elements.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


class SecurityHeaders:
    """Pure ASGI middleware: adds :data:`HEADERS` to every HTTP response (errors and static files included);
    pages (not static files) also get ``Cache-Control: no-store``, HSTS when served over HTTPS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {k.decode("latin-1").lower() for k, _ in headers}
                extra = dict(HEADERS)
                extra["cache-control"] = "public, max-age=3600" if static else "no-store"
                if https:
                    extra["strict-transport-security"] = "max-age=31536000"
                for name, value in extra.items():
                    if name not in present or name == "cache-control":
                        headers = [(k, v) for k, v in headers if k.decode("latin-1").lower() != name]
                        headers.append((name.encode("latin-1"), value.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_secure(request: Request, mode: str) -> bool:
    """``Secure`` cookies: always with ``always``, never with ``never``; ``auto``: unless plain HTTP to a
    loopback host (``icp-worker console`` on 127.0.0.1, where a browser may not send a Secure cookie)."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return not (request.url.scheme == "http" and is_loopback(request.url.hostname or ""))
