"""The Jira simulator itself: the state and behaviour put together, behind an ASGI app.

:class:`JiraSimulator` combines the mixins of this package (users, rendering, issues,
workflow, search, the human API, the handlers) and adds what HTTP needs: authentication
(basic auth with an API token; a PAT on Data Center), routing of ``/rest/api/{2,3,latest}``,
and Jira's fault answers (rate-limit headers differ between Cloud and Data Center).
"""

from __future__ import annotations

import base64
import json
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

from poam_sync.simulators._base import (
    Receive,
    Scope,
    Send,
    SimMiddleware,
    _read_body,
    _send_json,
    _send_raw,
)
from poam_sync.simulators.jira.human import JiraHuman
from poam_sync.simulators.jira.model import (
    CLOUD_NOT_AUTHENTICATED,
    DEFAULT_PAT,
    DEFAULT_TOKEN,
    NOT_AUTHENTICATED,
    ApiError,
    JsonDict,
    SimUser,
)
from poam_sync.simulators.jira.routes import Handler, JiraRoutes, _Ctx
from poam_sync.simulators.jira.webhooks import WEBHOOK_PATH


class JiraSimulator(JiraHuman, JiraRoutes):
    """State and ASGI app of one simulated Jira site."""

    def __init__(
        self, *, mode: str = "cloud", state: JsonDict | None = None, search_lag: float = 0.0
    ) -> None:
        super().__init__(mode=mode, state=state, search_lag=search_lag)
        self._routes = self._build_routes()
        self.app = SimMiddleware(self._asgi, self.control, self._fault_response)

    # -- HTTP --------------------------------------------------------------------------------

    def _fault_response(self, status: int, retry_after: int | None) -> tuple[bytes, dict[str, str]]:
        headers: dict[str, str] = {}
        if status == 429:
            wait = retry_after if retry_after is not None else 1
            reset = datetime.now(UTC) + timedelta(seconds=wait)
            if self.cloud:
                headers = {
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "X-RateLimit-NearLimit": "true",
                    "RateLimit-Reason": "jira-burst-based",
                }
            else:  # Data Center's token bucket
                headers = {
                    "Retry-After": str(wait),
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Interval-Seconds": "1",
                    "X-RateLimit-FillRate": "10",
                }
            body: JsonDict = {"errorMessages": ["Rate limit exceeded."], "errors": {}}
        else:
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            body = {"errorMessages": ["Internal server error"], "errors": {}}
        return json.dumps(body).encode(), headers

    def _authenticate(self, scope: Scope) -> SimUser | None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        sync = self.users[0]
        if auth.startswith("Basic "):
            # everyone signs in with their own account and the token (users.py)
            with suppress(ValueError, UnicodeDecodeError):
                login, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                user = self.sign_in(login)
                if user is not None and secret == DEFAULT_TOKEN:
                    return user
        if auth.startswith("Bearer ") and not self.cloud and auth[7:] == DEFAULT_PAT:
            return sync
        return None

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        base = f"{scope.get('scheme', 'http')}://{headers.get('host', 'localhost')}"
        raw_body = await _read_body(receive)
        user = self._authenticate(scope)
        if user is None:
            if self.cloud:  # Cloud answers in plain text
                text = CLOUD_NOT_AUTHENTICATED.encode()
                await _send_raw(send, 401, text, {"content-type": "text/plain;charset=UTF-8"})
                return
            headers = {"WWW-Authenticate": 'Basic realm="protected-area"'}
            if "authorization" in {k.decode().lower() for k, _ in scope["headers"]}:
                headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
            await _send_json(
                send, 401, {"errorMessages": [NOT_AUTHENTICATED], "errors": {}}, headers
            )
            return
        if path == "/rest/applinks/latest/listApplicationlinks":
            await _send_json(send, 200, [], {})  # no application links on this site
            return
        if path.startswith(WEBHOOK_PATH):  # admin webhooks (simulators/jira/webhooks.py)
            await self._send_webhook_resource(send, method, path, raw_body, base)
            return
        handler, ctx_groups, version = self._route(method, path)
        if handler is None:
            await _send_json(send, 404, {"errorMessages": ["null for uri: " + path]}, {})
            return
        try:
            body = json.loads(raw_body) if raw_body else None
        except json.JSONDecodeError:
            await _send_json(
                send, 400, {"errorMessages": ["Unexpected character in the request body."]}, {}
            )
            return
        params = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
        ctx = _Ctx(method, version, params, body, user, base, ctx_groups)
        try:
            with self.lock:
                status, payload = handler(ctx)
        except ApiError as exc:
            status, payload = exc.status, exc.body
        await _answer(send, status, payload)

    async def _send_webhook_resource(
        self, send: Send, method: str, path: str, raw_body: bytes, base: str
    ) -> None:
        try:
            body = json.loads(raw_body) if raw_body else None
            status, payload = self.webhook_resource(method, path, body, base)
        except json.JSONDecodeError:
            status, payload = 400, {"errorMessages": ["Unexpected character in the request body."]}
        except ApiError as exc:
            status, payload = exc.status, exc.body
        await _answer(send, status, payload)

    def _route(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], str]:
        for prefix in ("/rest/api/2/", "/rest/api/3/", "/rest/api/latest/"):
            if path.startswith(prefix):
                version = prefix.split("/")[3]
                rest = path[len(prefix) :].rstrip("/")
                break
        else:
            return None, {}, ""
        if version == "3" and not self.cloud:
            return None, {}, version
        parts = rest.split("/")
        for (m, pattern), handler in self._routes.items():
            pat = pattern.split("/")
            if m != method or len(pat) != len(parts):
                continue
            groups: dict[str, str] = {}
            for want, got in zip(pat, parts, strict=True):
                if want.startswith("{"):
                    groups[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return handler, groups, version
        return None, {}, version


async def _answer(send: Send, status: int, payload: object) -> None:
    """A handler's answer: JSON, or an empty body for None (204)."""
    if payload is None:
        await _send_raw(send, status, b"", {})
    else:
        await _send_json(send, status, payload, {})
