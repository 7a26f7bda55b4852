"""Signed webhooks from Jira and ServiceNow: each valid event queues a targeted pull.

The daemon's HTTP server (:mod:`poam_sync.health`) serves, when ``webhooks`` is configured:

- ``POST /webhooks/jira``: a Jira admin webhook. Signed (``webhooks.jira.secret``): Jira sends
  ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` (Jira Cloud admin webhooks
  with a secret, developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks;
  Jira Data Center 10, confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html).
  Or, for a Data Center site whose webhooks carry no signature, a token
  (``webhooks.jira.token``) in the URL Jira was given (``/webhooks/jira?token=...``) or in an
  ``X-Poam-Sync-Token`` header.
- ``POST /webhooks/servicenow``: the business rule of docs/operations.md posts ``{"table",
  "sys_id", "parent", ...}`` signed with ``X-Poam-Sync-Signature: sha256=<base64 HMAC-SHA256>``
  (hex is accepted too).

Each request is checked in this order, and a refusal queues nothing: a body over
``webhooks.max_body_bytes`` -> 413; a missing or wrong signature or token -> 401 (compared in
constant time, :func:`hmac.compare_digest`); a body that is not the vendor's JSON, or names a
Jira project or ServiceNow table no connector syncs -> 400. A valid event -> 202 ``{"queued":
N}``: the record it names (a sub-task's or milestone task's parent: the POA&M record) is put
on the :class:`PullQueue`. Events that name no record we sync (another event type, a deleted
top-level issue, whose loss the reconcile reports) are answered 202 with ``queued: 0``.

The daemon drains the queue between its cycles (:func:`wait_between_cycles`): the first event
starts a ``debounce_seconds`` wait for more, then one targeted cycle reads just those records
(``Engine.run_cycle(fetch=...)``); the full cycle still runs on its interval.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from poam_sync.config import Config, JiraWebhookConfig, WebhooksConfig
from poam_sync.telemetry import TELEMETRY

log = structlog.get_logger(__name__)

SERVICENOW_SIGNATURE = "x-poam-sync-signature"
JIRA_TOKEN_HEADER = "x-poam-sync-token"
_SYS_ID = re.compile(r"^[0-9a-f]{32}$")

Batch = dict[str, frozenset[str]]  # connector name -> remote ids to read


class PullQueue:
    """Records to pull, by connector: filled by the HTTP thread, drained by the daemon's."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._pending: dict[str, set[str]] = {}
        self.received = 0  # events queued since the start, for the logs and tests

    def put(self, connector: str, remote_id: str) -> None:
        with self._lock:
            self._pending.setdefault(connector, set()).add(remote_id)
            self.received += 1
        self._ready.set()

    def wait(self, timeout: float) -> bool:
        """True as soon as something is queued (at once if it already is)."""
        return self._ready.wait(max(0.0, timeout))

    def drain(self) -> Batch:
        with self._lock:
            batch = {name: frozenset(ids) for name, ids in self._pending.items()}
            self._pending.clear()
            self._ready.clear()
        return batch


def wait_between_cycles(
    stop: threading.Event,
    pulls: PullQueue | None,
    seconds: float,
    debounce: float,
    targeted: Callable[[Batch], object],
) -> bool:
    """Wait ``seconds`` for the next full cycle; meanwhile run ``targeted`` for each debounced
    batch of queued records. True when ``stop`` was set."""
    deadline = time.monotonic() + seconds
    if pulls is None:
        return stop.wait(max(0.0, seconds))
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if not pulls.wait(min(left, 0.5)):
            continue
        if stop.wait(debounce):  # more events for the same records fold into one pull
            return True
        batch = pulls.drain()
        if batch:
            targeted(batch)
    return True


# -- checking a request ----------------------------------------------------------------------


def hub_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Hub-Signature: sha256=<hex>`` over ``body``, compared in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    want = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want.encode(), header[7:].strip().lower().encode())


def servicenow_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Poam-Sync-Signature: sha256=<base64 or hex>`` over ``body``, in constant time."""
    if not header or not header.startswith("sha256="):
        return False
    given = header[7:].strip()
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    try:
        raw = bytes.fromhex(given) if len(given) == 64 else base64.b64decode(given, validate=True)
    except (ValueError, binascii.Error):
        return False
    return hmac.compare_digest(mac, raw)


def _jira_ok(cfg: JiraWebhookConfig, request: Request, body: bytes) -> bool:
    if cfg.secret is not None and hub_signature_ok(
        cfg.secret.get_secret_value(), body, request.headers.get("x-hub-signature")
    ):
        return True
    if cfg.token is not None:
        given = request.query_params.get("token") or request.headers.get(JIRA_TOKEN_HEADER)
        want = cfg.token.get_secret_value()
        if given and hmac.compare_digest(given.encode(), want.encode()):
            return True
    return False


class Refused(Exception):
    """A request answered with ``status`` and nothing queued."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def jira_targets(body: object, projects: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(connector, remote id, key) of the record a Jira event names: the issue, or a
    sub-task's parent. :class:`Refused` (400) for a body that is not a Jira event or names a
    project no connector syncs."""
    if not isinstance(body, dict) or not isinstance(body.get("webhookEvent"), str):
        raise Refused(400, "not a Jira webhook event (no webhookEvent)")
    issue = body.get("issue")
    if not isinstance(issue, dict):
        return []  # an event about something else (a project, a sprint): nothing of ours
    raw_fields = issue.get("fields")
    fields: dict[str, object] = raw_fields if isinstance(raw_fields, dict) else {}
    project = fields.get("project")
    key = str(issue.get("key") or "")
    project_key = project.get("key") if isinstance(project, dict) else None
    project_key = str(project_key or key.rpartition("-")[0]).upper()
    connector = projects.get(project_key)
    if connector is None:
        raise Refused(400, f"no connector syncs the Jira project {project_key or '(none)'}")
    parent = fields.get("parent")
    if isinstance(parent, dict) and parent.get("id"):
        return [(connector, str(parent["id"]), str(parent.get("key") or parent["id"]))]
    if body["webhookEvent"] == "jira:issue_deleted" or not issue.get("id"):
        return []  # a deleted issue: the reconcile reports the broken link
    return [(connector, str(issue["id"]), key)]


def servicenow_targets(
    body: object, tables: Mapping[str, str], child_tables: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(connector, sys_id, sys_id) of the record a business rule's call names."""
    if not isinstance(body, dict) or not isinstance(body.get("table"), str):
        raise Refused(400, 'not a poam-sync business rule call (no "table")')
    table = body["table"]
    if table in tables:
        connector, sys_id = tables[table], body.get("sys_id")
    elif table in child_tables:
        connector, sys_id = child_tables[table], body.get("parent")
        if not sys_id:
            return []  # a milestone task of no POA&M record
    else:
        raise Refused(400, f"no connector syncs the ServiceNow table {table}")
    if not isinstance(sys_id, str) or not _SYS_ID.match(sys_id):
        raise Refused(400, "sys_id must be 32 hexadecimal characters")
    return [(connector, sys_id, sys_id)]


# -- the routes ------------------------------------------------------------------------------


@dataclass
class Receivers:
    """What the two routes need from the configuration."""

    settings: WebhooksConfig
    pulls: PullQueue
    projects: dict[str, str] = field(default_factory=dict)  # Jira project key -> connector
    tables: dict[str, str] = field(default_factory=dict)  # ServiceNow table -> connector
    child_tables: dict[str, str] = field(default_factory=dict)  # milestone table -> connector

    @classmethod
    def from_config(cls, config: Config, pulls: PullQueue) -> Receivers:
        out = cls(config.webhooks, pulls)
        for c in config.connectors:
            if c.type == "jira" and isinstance(c.settings.get("project_key"), str):
                out.projects[c.settings["project_key"].upper()] = c.name
            elif c.type == "servicenow":
                out.tables[str(c.settings.get("table") or "sn_grc_issue")] = c.name
                child = c.settings.get("milestone_table") or "sn_irm_cont_auth_milestone_task"
                out.child_tables[str(child)] = c.name
        return out

    def routes(self) -> list[Route]:
        found = []
        if self.settings.jira is not None:
            found.append(Route("/webhooks/jira", self._jira, methods=["POST"]))
        if self.settings.servicenow is not None:
            found.append(Route("/webhooks/servicenow", self._servicenow, methods=["POST"]))
        return found

    async def _jira(self, request: Request) -> Response:
        cfg = self.settings.jira
        assert cfg is not None

        def check(body: bytes) -> None:
            if not _jira_ok(cfg, request, body):
                raise Refused(401, "missing or wrong X-Hub-Signature (or token)")

        return await self._receive("jira", request, check, lambda b: jira_targets(b, self.projects))

    async def _servicenow(self, request: Request) -> Response:
        cfg = self.settings.servicenow
        assert cfg is not None

        def check(body: bytes) -> None:
            header = request.headers.get(SERVICENOW_SIGNATURE)
            if not servicenow_signature_ok(cfg.secret.get_secret_value(), body, header):
                raise Refused(401, "missing or wrong X-Poam-Sync-Signature")

        return await self._receive(
            "servicenow",
            request,
            check,
            lambda b: servicenow_targets(b, self.tables, self.child_tables),
        )

    async def _receive(
        self,
        source: str,
        request: Request,
        check: Callable[[bytes], None],
        targets: Callable[[object], list[tuple[str, str, str]]],
    ) -> Response:
        bound = log.bind(source=source, client=request.client.host if request.client else None)
        try:
            body = await _read_limited(request, self.settings.max_body_bytes)
            check(body)
            try:
                parsed: object = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise Refused(400, "the body is not JSON") from None
            found = targets(parsed)
        except Refused as exc:
            bound.warning("webhook.refused", status=exc.status, error=exc.message)
            TELEMETRY.webhook(source, f"refused_{exc.status}")
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        for connector, remote_id, key in found:
            self.pulls.put(connector, remote_id)
            bound.info("webhook.queued", connector=connector, remote_key=key)
        TELEMETRY.webhook(source, "queued" if found else "ignored")
        return JSONResponse({"queued": len(found)}, status_code=202)


async def _read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or :class:`Refused` (413) as soon as it is longer than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def receiving(config: Config) -> bool:
    """Whether ``config`` enables a webhook receiver."""
    return config.webhooks.jira is not None or config.webhooks.servicenow is not None


def webhook_routes(config: Config, pulls: PullQueue) -> list[Route]:
    """The receivers ``config.webhooks`` enables (none when it names neither vendor)."""
    return Receivers.from_config(config, pulls).routes()
