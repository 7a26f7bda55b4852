"""The workbench application: :func:`create_app` builds it on a store.

Every page needs a signed-in account (or, when configured, a trusted proxy's header); a POST
also needs its CSRF token. The handlers live in ``pages`` (review) and ``settle`` (conflicts
and problems); this module holds what they share: the settings, who is signed in, templates,
and the sign-in pages.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.resources import files
from typing import Any
from urllib.parse import quote, urlsplit

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from poam_sync.store import Role, Store, UserRow
from poam_sync.web import security
from poam_sync.web.accounts import authenticate, may
from poam_sync.web.queries import TrendCache

log = structlog.get_logger(__name__)


class WebSettings(BaseModel):
    """How the workbench runs (``poam-sync serve`` fills these from its options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: signs session cookies and CSRF tokens; a random one per process when not given (then a
    #: restart signs everyone out, and several processes need the same one)
    secret: SecretStr | None = None
    #: the header a trusted reverse proxy names the signed-in user in (off when None)
    trusted_user_header: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    #: field -> its policy, as the page shows it ("manual", "authority: local", ...)
    policies: dict[str, str] = Field(default_factory=dict)
    due_soon_days: int = Field(default=14, ge=0)
    per_page: int = Field(default=50, ge=1, le=500)


@dataclass
class Workbench:
    """What every handler needs: the store, the settings and the app's own state."""

    store: Store
    settings: WebSettings
    signer: security.Signer
    env: Environment
    limiter: security.LoginLimiter = field(default_factory=security.LoginLimiter)
    trends: TrendCache = field(default_factory=TrendCache)
    today: Callable[[], date] = field(default=lambda: datetime.now(UTC).date())

    @property
    def proxies(self) -> frozenset[str]:
        return frozenset(self.settings.trusted_proxies)

    # ---------------------------------------------------------------- who is it
    async def user(self, request: Request) -> UserRow | None:
        name: str | None = None
        header = self.settings.trusted_user_header
        peer = request.client.host if request.client else ""
        if header and peer in self.proxies and request.headers.get(header):
            name = request.headers[header].strip()
        else:
            name = self.signer.session_name(
                request.cookies.get(security.SESSION_COOKIE), security.now()
            )
        if not name:
            return None

        def look_up() -> UserRow | None:
            with self.store.read() as tx:
                return tx.user(name)

        user = await run_in_threadpool(look_up)
        return None if user is None or user.disabled else user

    async def require(self, request: Request, role: Role = "viewer") -> UserRow:
        """The signed-in account, when it may act as ``role``: else to the sign-in page (a
        GET) or 401 / 403."""
        user = await self.user(request)
        if user is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise _SignIn(target)
            raise HTTPException(401, "sign in first")
        if not may(user.role, role):
            raise HTTPException(403, f"a {user.role} may not do this; ask an admin")
        return user

    async def form(self, request: Request) -> FormData:
        """The POST's form, once its CSRF token and origin are checked (403 otherwise)."""
        form = await request.form()
        token = form.get(security.CSRF_FIELD)
        seed = request.cookies.get(security.CSRF_COOKIE)
        if not security.origin_ok(request) or not self.signer.csrf_ok(
            seed, token if isinstance(token, str) else None
        ):
            raise HTTPException(403, "this form has expired or did not come from this site")
        return form

    # ------------------------------------------------------------------- pages
    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any],
        *,
        user: UserRow | None,
        status_code: int = 200,
    ) -> HTMLResponse:
        seed = request.cookies.get(security.CSRF_COOKIE) or security.new_csrf_seed()
        body = self.env.get_template(template).render(
            **{"title": "Workbench", **context},
            user=user,
            csrf_field=security.CSRF_FIELD,
            csrf_token=self.signer.csrf_token(seed),
            path=request.url.path,
            may_settle=user is not None and may(user.role, "resolver"),
        )
        response = HTMLResponse(body, status_code=status_code)
        response.headers["cache-control"] = "no-store"
        if request.cookies.get(security.CSRF_COOKIE) != seed:
            self.set_cookie(request, response, security.CSRF_COOKIE, seed, samesite="strict")
        return response

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, *, samesite: str
    ) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite=samesite,  # type: ignore[arg-type]
            secure=security.is_tls(request, self.proxies),
            path="/",
        )


class _SignIn(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def _safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//elsewhere`` or a full URL) to go on to."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _login_routes(wb: Workbench) -> list[BaseRoute]:
    async def login_page(request: Request) -> Response:
        if await wb.user(request) is not None:
            return RedirectResponse(_safe_next(request.query_params.get("next")), 303)
        return wb.render(
            request,
            "login.html",
            {
                "next": _safe_next(request.query_params.get("next")),
                "error": None,
                "title": "Sign in",
            },
            user=None,
        )

    async def login(request: Request) -> Response:
        form = await wb.form(request)
        name = str(form.get("name") or "").strip()
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or "/"))
        keys = [f"ip:{security.client_address(request, wb.proxies)}", f"name:{name.lower()}"]
        wait = wb.limiter.retry_after(keys, security.now())
        if wait is not None:
            log.warning("web.login_throttled", account=name, retry_after=wait)
            response = wb.render(
                request,
                "login.html",
                {"next": target, "error": f"Too many failed attempts: try again in {wait} s."},
                user=None,
                status_code=429,
            )
            response.headers["retry-after"] = str(wait)
            return response
        user = await run_in_threadpool(authenticate, wb.store, name, password)
        if user is None:
            wb.limiter.failed(keys, security.now())
            log.info("web.login_failed", account=name)
            return wb.render(
                request,
                "login.html",
                {"next": target, "error": "That name and password do not match an account."},
                user=None,
                status_code=401,
            )
        wb.limiter.succeeded(keys)
        log.info("web.login", account=user.name, role=user.role)
        done = RedirectResponse(target, 303)
        cookie = wb.signer.session(user.name, security.now())
        wb.set_cookie(request, done, security.SESSION_COOKIE, cookie, samesite="lax")
        return done

    async def logout(request: Request) -> Response:
        await wb.form(request)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(security.SESSION_COOKIE, path="/")
        return response

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
    ]


def create_app(store: Store, settings: WebSettings | None = None) -> Starlette:
    """The workbench on ``store``: mount it, or serve it alone (``poam-sync serve``)."""
    from poam_sync.web.pages import review_routes
    from poam_sync.web.settle import settle_routes

    settings = settings or WebSettings()
    secret = settings.secret.get_secret_value() if settings.secret else secrets.token_hex(32)
    env = Environment(
        loader=PackageLoader("poam_sync.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda v: quote(str(v), safe="")
    wb = Workbench(store, settings, security.Signer(secret.encode()), env)
    static = StaticFiles(directory=str(files("poam_sync.web") / "static"))
    routes: list[BaseRoute] = [
        *_login_routes(wb),
        *review_routes(wb),
        *settle_routes(wb),
        Mount("/static", app=static, name="static"),
    ]

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _SignIn)
        return RedirectResponse(f"/login?next={quote(exc.target, safe='')}", 303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        user = await wb.user(request) if exc.status_code != 401 else None
        return wb.render(
            request,
            "error.html",
            {"status": exc.status_code, "message": exc.detail},
            user=user,
            status_code=exc.status_code,
        )

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        _SignIn: to_sign_in,
        HTTPException: http_error,
    }
    app = Starlette(
        routes=routes,
        exception_handlers=handlers,
        middleware=[Middleware(security.SecurityHeaders, trusted_proxies=wb.proxies)],
    )
    app.state.workbench = wb
    return app
