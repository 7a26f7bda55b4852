"""What keeps the workbench safe: signed session cookies, CSRF tokens, the sign-in rate limit,
the response headers, and the trusted reverse-proxy header.

- The session is a cookie holding the account name and when it was issued, signed with
  HMAC-SHA256 under the app's secret (HttpOnly, SameSite=Lax, Secure when served over TLS). Each
  request looks the account up again: a disabled account is signed out at its next click.
- CSRF: every visitor gets a random ``poam_csrf`` cookie; every form carries the HMAC of it
  under the secret, and every POST is refused (403) unless the two agree (OWASP's "signed
  double-submit cookie"). A POST whose ``Origin`` names another site is refused as well.
- Sign-in attempts: at most ``MAX_FAILURES`` failures per client address and per account name
  within ``WINDOW_SECONDS``; then 429 with ``Retry-After`` until the window has passed.
- Headers: a Content-Security-Policy with no inline script (no script at all: the pages are
  plain forms), ``nosniff``, no framing, no referrer to other sites; HSTS under TLS.
- A reverse proxy doing SSO may name the user in a header (``trusted_user_header``, off by
  default); it is believed only from the addresses in ``trusted_proxies``, and the name must be
  an enabled local account (which gives the role).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "poam_session"
CSRF_COOKIE = "poam_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
WINDOW_SECONDS = 300

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Signer:
    """Signs and checks the session cookie and CSRF tokens with one secret."""

    secret: bytes

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self.secret, f"{purpose}|{text}".encode(), hashlib.sha256).hexdigest()

    def session(self, name: str, now: float) -> str:
        body = _b64(json.dumps({"u": name, "t": int(now)}, separators=(",", ":")).encode())
        return f"{body}.{self._mac('session', body)}"

    def session_name(self, cookie: str | None, now: float) -> str | None:
        """The account a session cookie names, while it is genuine and not expired."""
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac("session", body)):
            return None
        try:
            data = json.loads(_unb64(body))
            name, issued = data["u"], data["t"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(name, str) or not isinstance(issued, int):
            return None
        if not 0 <= now - issued <= SESSION_SECONDS:
            return None
        return name

    def csrf_token(self, seed: str) -> str:
        return self._mac("csrf", seed)

    def csrf_ok(self, seed: str | None, token: str | None) -> bool:
        if not seed or not token:
            return False
        return hmac.compare_digest(token, self.csrf_token(seed))


def new_csrf_seed() -> str:
    return secrets.token_urlsafe(32)


def origin_ok(request: Request) -> bool:
    """A POST whose Origin (sent by every current browser) names another site is refused."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


@dataclass
class LoginLimiter:
    """Failed sign-ins per key (a client address, an account name) in a sliding window."""

    max_failures: int = MAX_FAILURES
    window: float = WINDOW_SECONDS
    _failures: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def retry_after(self, keys: Iterable[str], now: float) -> int | None:
        """Seconds to wait when any key has had too many failures lately; None when free."""
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._failures.get(key)
                if not times:
                    continue
                while times and now - times[0] > self.window:
                    times.popleft()
                if len(times) >= self.max_failures:
                    wait = max(wait, self.window - (now - times[0]))
        return max(int(wait) + 1, 1) if wait > 0 else None

    def failed(self, keys: Iterable[str], now: float) -> None:
        with self._lock:
            for key in keys:
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def client_address(request: Request, trusted_proxies: frozenset[str]) -> str:
    """The client's address: the peer, or behind a trusted proxy the last address of
    ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed(forwarded):
        if address and address not in trusted_proxies:
            return address
    return peer


def is_tls(request: Request, trusted_proxies: frozenset[str]) -> bool:
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    return peer in trusted_proxies and request.headers.get("x-forwarded-proto") == "https"


class SecurityHeaders:
    """Adds :data:`HEADERS` to every response (and HSTS when the request came over TLS)."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: frozenset[str]) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = is_tls(Request(scope), self.trusted_proxies)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if tls:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def now() -> float:
    return time.time()
