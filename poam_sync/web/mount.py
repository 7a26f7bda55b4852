"""The workbench inside the daemon: ``run --http`` serves it beside /healthz and the webhooks.

The daemon starts its HTTP server before it opens the store (so that a daemon which cannot start
still says why on ``/readyz``); the workbench therefore opens its own store at its first request.
A store it cannot open is a 503 naming why, never a traceback, and the next request tries again.
"""

from __future__ import annotations

import threading

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from poam_sync.errors import PoamSyncError
from poam_sync.web.app import WebSettings, create_app

SECRET_ENV = "POAM_SYNC_WEB_SECRET"
"""Signs the workbench's session cookies and CSRF tokens (``serve`` and ``run --http`` alike)."""


class LazyWorkbench:
    """An ASGI app that becomes :func:`create_app` on the store at ``url`` when first asked."""

    def __init__(self, url: str, settings: WebSettings) -> None:
        self.url = url
        self.settings = settings
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    def _build(self) -> ASGIApp:
        from poam_sync.store import Store

        with self._lock:
            if self._app is None:
                self._app = create_app(Store.open(self.url), self.settings)
            return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return  # lifespan: nothing to start before the first request
        try:
            app = self._build()
        except PoamSyncError as exc:
            response = PlainTextResponse(
                f"the workbench cannot open the store: {exc.message}", status_code=503
            )
            await response(scope, receive, send)
            return
        await app(scope, receive, send)
