"""The ServiceNow simulator itself: state and behaviour put together behind an ASGI app.

:class:`ServiceNowSimulator` combines the mixins of this package and adds what HTTP needs:
dispatching a request (OAuth, the Batch API ``POST /api/now/v1/batch``, the Table API), losing
answers on demand, and the instance's fault answers.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from urllib.parse import parse_qs

from poam_sync.simulators._base import (
    Receive,
    Scope,
    Send,
    SimControl,
    SimMiddleware,
    _read_body,
    _send_raw,
)
from poam_sync.simulators.servicenow.auth import ServiceNowAuth
from poam_sync.simulators.servicenow.human import ServiceNowHuman
from poam_sync.simulators.servicenow.model import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DEFAULT_USERS,
    SimError,
)
from poam_sync.simulators.servicenow.state import DEFAULT_TIME_ZONE
from poam_sync.simulators.servicenow.table_api import ServiceNowTableApi
from poam_sync.simulators.servicenow.tables import TableSpec, default_tables


class ServiceNowSimulator(ServiceNowHuman, ServiceNowTableApi, ServiceNowAuth):
    """State of one simulated instance, its ASGI app, and a "human" API for tests and demos."""

    def __init__(
        self,
        *,
        extra_tables: Sequence[TableSpec] = (),
        users: Iterable[tuple[str, str, str, str]] = DEFAULT_USERS,
        control: SimControl | None = None,
        time_zone: str = DEFAULT_TIME_ZONE,
        least_privilege: bool = False,
        client_credentials: bool = False,
        languages: Sequence[str] = ("en",),
    ) -> None:
        """``least_privilege``: users without the admin role cannot read the system tables
        (:data:`~.model.ADMIN_ONLY_TABLES`) nor ``sys_user.email`` (see
        :meth:`~.human.ServiceNowHuman.restrict_non_admins`); ``client_credentials``: the OAuth
        client credentials grant is enabled (it is off on an instance until an admin sets
        its property, see :mod:`.auth`); ``languages``: a multi-language instance, whose
        ``sys_choice`` holds a row per choice and language (see :mod:`.human`)."""
        super().__init__(control=control)
        specs = [*default_tables(), *extra_tables]
        for spec in specs:
            self.tables[spec.name] = spec
            self.rows[spec.name] = {}
        for spec in specs:
            self._write_meta(spec)
        for user_name, name, email, tz in users:
            self._insert(
                "sys_user",
                {"user_name": user_name, "name": name, "email": email, "time_zone": tz},
                ADMIN_USER,
            )
            self.passwords.setdefault(user_name, ADMIN_PASSWORD)
        self.set_time_zone(time_zone)
        if least_privilege:
            self.restrict_non_admins()
        if client_credentials:
            self.enable_client_credentials()
        for language in languages:
            if language != "en":
                self.translate_choices(language)
        self.app = SimMiddleware(self._asgi, self.control, _fault_response)

    # -- HTTP ----------------------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode()
        host = headers.get("host", "127.0.0.1")
        base = f"{scope.get('scheme', 'https')}://{host}"
        status, out_headers, payload = self.handle(
            scope["method"], scope["path"], query, headers, body, base=base
        )
        with self.lock:
            lose = self.lose_answers > 0 and scope["method"] in self.lose_methods
            if lose:
                self.lose_answers -= 1
        if lose:
            # The request was carried out; the client only sees the connection cut.
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-length", str(len(payload) + 64).encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload[:10]})
            return
        await _send_raw(send, status, payload, out_headers)

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        base: str,
        user: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, synchronously: (status, headers, body). Used by HTTP and the Batch API."""
        try:
            if path == "/oauth_token.do" and method == "POST":
                return self._oauth(body, headers)
            who = user or self._authenticate(headers)
            if path == "/api/now/v1/batch" and method == "POST":
                return self._batch(body, headers, base=base, user=who)
            m = re.fullmatch(r"/api/now(?:/(v[12]))?/table/([A-Za-z0-9_]+)(?:/([^/]+))?/?", path)
            if not m:
                raise SimError(400, "Requested URI does not represent any resource", path)
            version, table, sys_id = m.group(1), m.group(2), m.group(3)
            params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
            with self.lock:
                status, out_headers, payload = self._table(
                    method, table, sys_id, params, headers, body, base, who
                )
            listed = version == "v1" and method == "GET" and sys_id is None and status == 200
            if listed and payload == b'{"result": []}':
                # v1 answers an empty list as 404 "No Record found"; the unversioned path and
                # v2 answer 200 with [] (ServiceNow KB0551763)
                raise SimError(404, "No Record found", "Records not found")
            return status, out_headers, payload
        except SimError as exc:
            payload = json.dumps(exc.body()).encode()
            return exc.status, {"content-type": "application/json"}, payload

    def _batch(
        self, body: bytes, headers: Mapping[str, str], *, base: str, user: str
    ) -> tuple[int, dict[str, str], bytes]:
        """The Batch API (ServiceNow docs "Batch API", ServiceNowDocs batch-api.md): each of
        ``rest_requests`` is run as the request it describes, in order, with the batch's
        user and "existing ACLs" applied "to each API call in the batch"; each answer in
        ``serviced_requests`` carries its own ``status_code``, ``status_text`` (the doc's
        example: "OK", "Created"), ``headers`` (none with ``exclude_response_headers``) and
        base64 ``body``, so a refused PATCH or a missing record fails that call alone; an
        error's message is also in ``error_message`` ("If present, the error messages")."""
        try:
            data = json.loads(body)
            requests_ = data["rest_requests"]
            batch_id = data.get("batch_request_id", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise SimError(400, "Invalid batch request", str(exc)) from exc
        serviced = []
        for req in requests_:
            url = str(req.get("url", ""))
            path, _, query = url.partition("?")
            inner_headers = {h["name"].lower(): h["value"] for h in req.get("headers", [])}
            inner_body = base64.b64decode(req["body"]) if req.get("body") else b""
            status, out_headers, payload = self.handle(
                str(req.get("method", "GET")).upper(),
                path,
                query,
                inner_headers,
                inner_body,
                base=base,
                user=user,
            )
            answer: dict[str, object] = {
                "id": req.get("id"),
                "status_code": status,
                "status_text": _phrase(status),
                "headers": []
                if req.get("exclude_response_headers") is True
                else [{"name": k, "value": v} for k, v in out_headers.items()],
                "body": base64.b64encode(payload).decode(),
                "execution_time": 1,
            }
            if status >= 400:
                answer["error_message"] = _message(payload)
            serviced.append(answer)
        payload_out = {
            "batch_request_id": str(batch_id),
            "serviced_requests": serviced,
            "unserviced_requests": [],
        }
        return 200, {"content-type": "application/json"}, json.dumps(payload_out).encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _message(payload: bytes) -> str:
    """The ``error.message`` of an error answer's body (the Table API's error shape)."""
    try:
        error = json.loads(payload).get("error") or {}
    except (ValueError, AttributeError):
        return ""
    return str(error.get("message") or "") if isinstance(error, dict) else ""


def _fault_response(status: int, retry_after: int | None) -> tuple[bytes, dict[str, str]]:
    """An injected error as an instance sends it (REST rate limiting docs for 429)."""
    headers: dict[str, str] = {}
    if status == 429:
        wait = retry_after if retry_after is not None else 1
        headers = {
            "Retry-After": str(wait),
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Reset": str(int(time.time()) + wait),
            "X-RateLimit-Rule": "poam-sync simulator rule",
        }
        body = {
            "error": {
                "message": "Rate limit exceeded",
                "detail": "Rate limit of 1000 requests per hour for user exceeded",
            },
            "status": "failure",
        }
    else:
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = {
            "error": {
                "message": "Service unavailable" if status == 503 else "Server error",
                "detail": f"simulated {status}",
            },
            "status": "failure",
        }
    return json.dumps(body).encode(), headers
