"""The Jira connector (Cloud and Data Center) over the ``jira`` package (pycontribs).

In the order of a bugwarrior service module: the settings model, the client wiring (with our
own retry policy in charge and the client's errors mapped to ours), normalization (Jira issue
JSON <-> canonical values, through :class:`~poam_sync.connectors.jira.mapping.JiraMapping`), and the
connector class.

Jira specifics handled here:

- Cloud search is ``search/jql`` (``nextPageToken``; the old ``search`` answers 410 since
  2025, Atlassian CHANGE-2046); Data Center pages ``search`` with ``startAt``. JQL dates have
  minute granularity in the sync user's time zone, so pulls apply an overlap and de-duplicate.
- Status only changes through workflow transitions. Jira lists only the transitions available
  from the current status, so paths are planned on the mapping's workflow graph, corrected by
  what Jira answers at each hop, required screen fields filled from the mapping; a path that
  turns out blocked is walked back and reported (never a silent no-op).
- Owners go through the user directory (``accountId`` on Cloud, ``name`` on Data Center); an
  owner nobody matches is reported and the assignee is left as it was.
- Custom fields are found by name through ``GET /field``.
"""

from __future__ import annotations

import functools
import json
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
import structlog
from jira import JIRA, JIRAError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from poam_sync.connectors._http import RetryPolicy, parse_retry_after, with_retries
from poam_sync.connectors.base import (
    Connector,
    FieldProblem,
    RemoteRecord,
    Stamp,
    WriteResult,
    mark_note,
    parse_note,
)
from poam_sync.connectors.jira.mapping import (
    JiraMapping,
    StatusTarget,
    as_label,
    single_line,
    sort_milestones,
)
from poam_sync.errors import (
    ConfigError,
    RecordGone,
    RemoteAuthError,
    RemoteError,
    RemoteRejected,
    RemoteTransientError,
)
from poam_sync.model import JsonValue, MilestoneStatus, Note, RiskLevel, Status

__all__ = ["JiraConnector", "JiraSettings"]

T = TypeVar("T")
JsonDict = dict[str, Any]
log = structlog.get_logger(__name__)

BULK_SIZE = 50  # Jira's limit for POST /issue/bulk
_NOT_ON_SCREEN = "not on the appropriate screen"
_MAX_HOPS = 8
STAMP_LABEL_PREFIX = "poam-sync:"  # Stamp.token


# -- settings ------------------------------------------------------------------------------


class JiraSettings(BaseModel):
    """How to reach one Jira site. Secrets come from the environment or a file (config.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    email: str | None = None  # Cloud: the account's e-mail, with an API token
    token: SecretStr | None = None
    pat: SecretStr | None = None  # Data Center: a personal access token
    project_key: str = Field(min_length=1)
    jql: str | None = None  # extra scope, ANDed with the project
    page_size: int = Field(default=100, ge=1, le=1000)
    overlap_minutes: int = Field(default=5, ge=0)
    verify: bool | Path = True  # or a CA bundle
    max_attempts: int = Field(default=5, ge=1)
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local simulator)")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_auth(self) -> JiraSettings:
        cloud = self.email is not None or self.token is not None
        if cloud and self.pat is not None:
            raise ValueError("give either email + token (Cloud) or pat (Data Center), not both")
        if cloud and (self.email is None or self.token is None):
            raise ValueError("Cloud authentication needs both email and token")
        if not cloud and self.pat is None:
            raise ValueError("no credentials: give email + token (Cloud) or pat (Data Center)")
        return self


# -- client wiring ---------------------------------------------------------------------------


def _jira_message(exc: JIRAError) -> str:
    """Jira's own error text (errorMessages + errors), never the request headers."""
    response = exc.response
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [str(m) for m in body.get("errorMessages") or []]
        parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
        if parts:
            return "; ".join(parts)
    return str(exc.text or "no details")


def _retry_after(response: requests.Response | None) -> float | None:
    if response is None:
        return None
    wait = parse_retry_after(response.headers.get("Retry-After"))
    if wait is None and (reset := response.headers.get("X-RateLimit-Reset")):
        try:
            when = datetime.fromisoformat(reset.replace("Z", "+00:00"))
            wait = max(0.0, (when - datetime.now(UTC)).total_seconds())
        except ValueError:
            wait = None
    return wait


def translate(exc: Exception, *, connector: str, key: str | None, what: str) -> RemoteError:
    """A ``jira``/``requests`` error as ours (transient, auth, rejected, gone)."""
    if isinstance(exc, JIRAError):
        status = exc.status_code
        msg = _jira_message(exc)
        where = f"{what} on {key}" if key else what
        kw: dict[str, Any] = {"connector": connector, "key": key, "status": status}
        if status == 429 or (status is not None and status >= 500):
            return RemoteTransientError(
                f"Jira answered {status} to {where}: {msg}",
                retry_after=_retry_after(exc.response),
                **kw,
            )
        if status in (401, 403):
            return RemoteAuthError(
                f"Jira refused the credentials for {where} ({status}): {msg}",
                hint="check the e-mail + API token (Cloud) or the PAT (Data Center)",
                **kw,
            )
        if status == 404 and key is not None:
            return RecordGone(f"Jira issue {key} no longer exists ({what}): {msg}", **kw)
        return RemoteRejected(f"Jira rejected {where} ({status}): {msg}", **kw)
    return RemoteTransientError(
        f"network error during {what}: {type(exc).__name__}", connector=connector, key=key
    )


# -- normalization ---------------------------------------------------------------------------


def parse_jira_time(text: str) -> datetime:
    """``2025-01-01T10:00:00.000+0000`` -> aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _FieldIds:
    """Jira field ids for the mapping's targets, discovered through ``/field``."""

    by_canonical: dict[str, str]
    stamp_field: str | None

    def canonical_of(self, field_id: str) -> str | None:
        return next((c for c, f in self.by_canonical.items() if f == field_id), None)


@dataclass(frozen=True, slots=True)
class _Meta:
    cloud: bool
    project_id: str
    issue_type_id: str
    subtask_type_id: str | None
    time_zone: ZoneInfo
    sync_user: str


@dataclass(frozen=True, slots=True)
class _Hop:
    id: str
    name: str
    to: str
    fields: dict[str, Any]


class JiraConnector(Connector):
    """The Jira side of poam-sync (see the module docstring)."""

    def __init__(
        self,
        settings: JiraSettings,
        mapping: JiraMapping,
        *,
        name: str = "jira",
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.mapping = mapping
        self.synced_fields = mapping.synced_fields
        self.retry = retry or RetryPolicy(attempts=settings.max_attempts)
        self.log = log.bind(connector=name, url=settings.url, project=settings.project_key)
        self._client: Any = None
        self._meta: _Meta | None = None
        self._ids: _FieldIds | None = None
        self._users: dict[str, str | None] = {}  # e-mail -> Jira id (None: nobody)
        self._edges: dict[tuple[str, str], dict[str, _Hop]] = {}  # learned transitions

    # -- wiring ----------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T], *, key: str | None = None) -> T:
        def attempt() -> T:
            try:
                return fn()
            except (JIRAError, requests.RequestException) as exc:
                raise translate(exc, connector=self.name, key=key, what=what) from None

        return with_retries(attempt, self.retry, what=what)

    @property
    def client(self) -> Any:
        if self._client is None:
            s = self.settings
            options: dict[str, Any] = {"check_update": False, "verify": s.verify}
            if isinstance(s.verify, Path):
                options["verify"] = str(s.verify)
            auth: dict[str, Any] = {}
            if s.pat is not None:
                auth["token_auth"] = s.pat.get_secret_value()
            else:
                assert s.email is not None and s.token is not None
                auth["basic_auth"] = (s.email, s.token.get_secret_value())

            def connect() -> Any:
                # max_retries=0: our RetryPolicy decides about 429/503, not the client
                return JIRA(
                    s.url,
                    options=options,
                    max_retries=0,
                    timeout=s.timeout,
                    logging=False,
                    **auth,
                )

            client = self._call("connect", connect)
            if isinstance(s.verify, Path):
                # REQUESTS_CA_BUNDLE would otherwise override the CA we were told to trust
                client._session.trust_env = False
            self._client = client
        return self._client

    def _url(self, path: str) -> str:
        return f"{self.settings.url}/rest/api/2/{path}"

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.client._session.get(self._url(path), params=params).json()

    def _send(self, method: str, path: str, body: Any) -> requests.Response:
        session = self.client._session
        response: requests.Response = session.request(
            method, self._url(path), data=json.dumps(body)
        )
        return response

    @property
    def meta(self) -> _Meta:
        if self._meta is None:
            cloud = self.client.deploymentType == "Cloud"  # read by the client's first call
            me = self._call("myself", lambda: self._get("myself"))
            key = self.settings.project_key
            project = self._call(
                "project", lambda: self._get(f"project/{key}", {"expand": "issueTypes"})
            )
            types = {t["name"].lower(): t["id"] for t in project.get("issueTypes", [])}
            wanted = self.mapping.issue_type.lower()
            if wanted not in types:
                raise ConfigError(
                    f"[mappings/jira.yaml] issue_type <- project {key} has no issue type "
                    f"{self.mapping.issue_type!r} (it has {sorted(types)})"
                )
            subtask = None
            if "milestones" in self.synced_fields:
                subtask = types.get(self.mapping.milestones.issue_type.lower())
                if subtask is None:
                    raise ConfigError(
                        "[mappings/jira.yaml] milestones.issue_type <- project "
                        f"{key} has no issue type {self.mapping.milestones.issue_type!r}"
                    )
            try:
                tz = ZoneInfo(me.get("timeZone") or "UTC")
            except (ZoneInfoNotFoundError, ValueError):
                tz = ZoneInfo("UTC")
            self._meta = _Meta(
                cloud=cloud,
                project_id=str(project["id"]),
                issue_type_id=types[wanted],
                subtask_type_id=subtask,
                time_zone=tz,
                sync_user=str(me.get("accountId") if cloud else me.get("name")),
            )
            self.log.info("jira.connected", cloud=cloud, time_zone=str(tz))
        return self._meta

    @property
    def ids(self) -> _FieldIds:
        if self._ids is None:
            fields = self._call("field", lambda: self._get("field"))
            by_name: dict[str, str] = {}
            for f in fields:
                by_name.setdefault(str(f["name"]).lower(), f["id"])
                by_name[str(f["id"]).lower()] = f["id"]

            def resolve(option: str, target: str) -> str:
                found = by_name.get(target.lower())
                if found is None:
                    custom = sorted(f["name"] for f in fields if f.get("custom"))
                    raise ConfigError(
                        f"[mappings/jira.yaml] {option} <- Jira has no field {target!r} "
                        f"(custom fields: {custom})",
                        hint="create the custom field in Jira or fix its name in the mapping",
                    )
                return found

            mapped = {
                c: resolve(f"fields.{c}", t)
                for c, t in self.mapping.fields.items()
                if c in self.synced_fields
            }
            stamp_target = self.mapping.stamp.field
            stamp = resolve("stamp.field", stamp_target) if stamp_target else None
            self._ids = _FieldIds(mapped, stamp)
        return self._ids

    def check(self) -> dict[str, str]:
        info = self._call("serverInfo", lambda: self._get("serverInfo"))
        meta, ids = self.meta, self.ids
        return {
            "url": self.settings.url,
            "deployment": str(info.get("deploymentType")),
            "version": str(info.get("version")),
            "project": self.settings.project_key,
            "time_zone": str(meta.time_zone),
            "fields": ", ".join(f"{c}={f}" for c, f in sorted(ids.by_canonical.items())),
        }

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- users -----------------------------------------------------------------------------

    def _user_id(self, email: str) -> str | None:
        """The Jira id (accountId / username) for ``email``, or None when nobody matches."""
        low = email.lower()
        if low in self._users:
            return self._users[low]
        entry = self.mapping.user(email)
        cloud = self.meta.cloud
        found: str | None = None
        if entry is not None:
            found = entry.account_id if cloud else entry.username
        if found is None:
            param = {"query": email} if cloud else {"username": email}
            users = self._call("user search", lambda: self._get("user/search", param))
            for user in users:
                if str(user.get("emailAddress", "")).lower() == low:
                    found = user.get("accountId") if cloud else user.get("name")
                    break
        self._users[low] = found
        return found

    def _email_of(self, user: JsonDict | None) -> str | None:
        if not user:
            return None
        if user.get("emailAddress"):
            return str(user["emailAddress"]).lower()
        ident = user.get("accountId") or user.get("name")
        entry = self.mapping.user_by_id(str(ident)) if ident else None
        if entry is not None:
            return entry.email.lower()
        return f"jira-user:{ident}"  # a person we cannot name by e-mail; never a blank owner

    def _user_ref(self, ident: str) -> JsonDict:
        return {"accountId": ident} if self.meta.cloud else {"name": ident}

    # -- normalization ---------------------------------------------------------------------

    def project(self, field: str, value: JsonValue) -> JsonValue:
        if field == "owner" and isinstance(value, str):
            return value.lower()
        return self.mapping.project(field, value)

    def _read_fields(self) -> list[str]:
        wanted = {
            "summary",
            "status",
            "resolution",
            "updated",
            "labels",
            "comment",
            "issuetype",
            "subtasks",
        }
        wanted |= set(self.ids.by_canonical.values())
        if self.ids.stamp_field:
            wanted.add(self.ids.stamp_field)
        return sorted(wanted)

    def _canonical(self, raw: JsonDict, subtasks: list[JsonDict]) -> dict[str, JsonValue]:
        f = raw["fields"]
        ids = self.ids.by_canonical
        out: dict[str, JsonValue] = {}
        for field in self.synced_fields:
            if field == "status":
                res = (f.get("resolution") or {}).get("name")
                status = self.mapping.status_for(f["status"]["name"], res)
                out["status"] = status.value if status else None
            elif field == "milestones":
                out["milestones"] = self._milestones_of(subtasks)
            elif field == "owner":
                out["owner"] = self._email_of(f.get(ids["owner"]))
            elif field == "original_risk":
                risk = self.mapping.risk_for((f.get(ids[field]) or {}).get("name"))
                out[field] = risk.value if risk else None
            elif field in ("title", "description"):
                out[field] = f.get(ids[field]) or ""
            elif field == "controls":
                values = f.get(ids[field]) or []
                out[field] = [v for v in values if not str(v).startswith(STAMP_LABEL_PREFIX)]
            else:
                out[field] = f.get(ids[field])
        return out

    def _milestones_of(self, subtasks: list[JsonDict]) -> list[JsonValue]:
        ms = self.mapping.milestones
        found = []
        for sub in subtasks:
            labels = sub["fields"].get("labels") or []
            if ms.removed_label in labels:
                continue
            mid = next(
                (lb[len(ms.label_prefix) :] for lb in labels if lb.startswith(ms.label_prefix)),
                f"jira:{sub['key']}",
            )
            status = self.mapping.milestone_status_for(sub["fields"]["status"]["name"])
            found.append(
                {
                    "id": mid,
                    "description": sub["fields"].get("summary") or "",
                    "due_date": sub["fields"].get("duedate"),
                    "status": status.value,
                }
            )
        return list(sort_milestones(found))

    def _stamp_of(self, raw: JsonDict) -> Stamp | None:
        value = (raw.get("properties") or {}).get(self.mapping.stamp.property)
        if isinstance(value, dict):
            try:
                return Stamp(
                    system=str(value["system"]),
                    poam_id=str(value["poam_id"]),
                    item_uuid=str(value["item_uuid"]),
                )
            except KeyError:
                return None
        return None

    def _record(self, raw: JsonDict, subtasks: list[JsonDict]) -> RemoteRecord:
        f = raw["fields"]
        actor, latest = None, None
        for h in (raw.get("changelog") or {}).get("histories", []):
            when = parse_jira_time(h["created"])
            if latest is None or when > latest:
                actor, latest = h.get("author"), when
        notes = []
        for c in (f.get("comment") or {}).get("comments", []):
            created = parse_jira_time(c["created"])
            author = self._email_of(c.get("author"))
            if latest is None or created >= latest:
                actor, latest = c.get("author"), created
            notes.append(
                parse_note(
                    str(c.get("body") or ""),
                    connector=self.name,
                    remote_id=str(c["id"]),
                    author=author,
                    created=created,
                )
            )
        return RemoteRecord(
            remote_id=str(raw["id"]),
            key=str(raw["key"]),
            version=str(f["updated"]),
            updated_at=parse_jira_time(f["updated"]),
            fields=self._canonical(raw, subtasks),
            stamp=self._stamp_of(raw),
            updated_by=self._email_of(actor),
            url=f"{self.settings.url}/browse/{raw['key']}",
            notes=tuple(notes),
        )

    # -- search ----------------------------------------------------------------------------

    def _search(
        self, jql: str, fields: list[str], *, expand: str | None = None
    ) -> Iterator[JsonDict]:
        """All issues matching ``jql``, page by page (each page retried on its own)."""
        size = min(self.settings.page_size, 100) if self.meta.cloud else self.settings.page_size
        props = self.mapping.stamp.property
        if self.meta.cloud:
            token: str | None = None
            while True:

                def page(token: str | None = token) -> Any:
                    return self.client.enhanced_search_issues(
                        jql,
                        nextPageToken=token,
                        maxResults=size,
                        fields=list(fields),
                        expand=expand,
                        properties=props,
                        json_result=True,
                    )

                result = self._call("search", page)
                yield from result.get("issues", [])
                token = result.get("nextPageToken")
                if result.get("isLast", True) or not token:
                    return
        start = 0
        while True:

            def dc_page(start: int = start) -> Any:
                return self.client.search_issues(
                    jql,
                    startAt=start,
                    maxResults=size,
                    fields=list(fields),
                    expand=expand,
                    properties=props,
                    json_result=True,
                )

            result = self._call("search", dc_page)
            issues = result.get("issues", [])
            yield from issues
            start += len(issues)
            if not issues or start >= int(result.get("total", 0)):
                return

    def _scope(self) -> str:
        jql = f'project = "{self.settings.project_key}" AND issuetype = "{self.mapping.issue_type}"'
        if self.settings.jql:
            jql += f" AND ({self.settings.jql})"
        return jql

    def _subtasks_of(self, parents: Sequence[JsonDict]) -> dict[str, list[JsonDict]]:
        """Sub-tasks (milestones) of ``parents``, fetched in one search per 50 parents."""
        out: dict[str, list[JsonDict]] = {str(p["id"]): [] for p in parents}
        if "milestones" not in self.synced_fields:
            return out
        keys = [p["key"] for p in parents if p["fields"].get("subtasks")]
        for n in range(0, len(keys), BULK_SIZE):
            chunk = ", ".join(keys[n : n + BULK_SIZE])
            fields = ["summary", "status", "duedate", "labels", "parent"]
            for sub in self._search(f"parent in ({chunk}) ORDER BY key ASC", fields):
                parent_id = str(sub["fields"]["parent"]["id"])
                out.setdefault(parent_id, []).append(sub)
        return out

    def _records(self, raws: Sequence[JsonDict]) -> list[RemoteRecord]:
        subs = self._subtasks_of(raws)
        return [self._record(r, subs.get(str(r["id"]), [])) for r in raws]

    def _fetch(self, keys: Sequence[str]) -> list[RemoteRecord]:
        found: list[RemoteRecord] = []
        for n in range(0, len(keys), 100):
            jql = f"issuekey in ({', '.join(keys[n : n + 100])}) ORDER BY key ASC"
            raws = list(self._search(jql, self._read_fields(), expand="changelog"))
            found += self._records(raws)
        return found

    # -- reading ---------------------------------------------------------------------------

    def pull(self, since: datetime | None) -> Iterator[RemoteRecord]:
        jql = self._scope()
        if since is not None:
            bound = since.astimezone(self.meta.time_zone) - timedelta(
                minutes=self.settings.overlap_minutes
            )
            jql += f' AND updated >= "{bound.strftime("%Y/%m/%d %H:%M")}"'  # floors to the minute
        jql += " ORDER BY key ASC"
        seen: set[tuple[str, str]] = set()
        batch: list[JsonDict] = []
        for raw in self._search(jql, self._read_fields(), expand="changelog"):
            ident = (str(raw["id"]), str(raw["fields"]["updated"]))
            if ident in seen:
                continue
            seen.add(ident)
            batch.append(raw)
            if len(batch) >= 100:
                yield from self._records(batch)
                batch = []
        if batch:
            yield from self._records(batch)

    def get(self, remote_id: str) -> RemoteRecord:
        raw, subs = self._get_full(remote_id)
        return self._record(raw, subs)

    def _get_full(self, remote_id: str) -> tuple[JsonDict, list[JsonDict]]:
        params = {
            "fields": ",".join(self._read_fields()),
            "expand": "changelog",
            "properties": self.mapping.stamp.property,
        }
        raw = self._call("get issue", lambda: self._get_issue(remote_id, params), key=remote_id)
        return raw, self._subtasks_of([raw]).get(str(raw["id"]), [])

    def _get_issue(self, remote_id: str, params: Mapping[str, Any]) -> JsonDict:
        response = self.client._session.get(self._url(f"issue/{remote_id}"), params=params)
        result: JsonDict = response.json()
        return result

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        jql = f'project = "{self.settings.project_key}"'
        if self.mapping.stamp.label:
            jql += f' AND labels = "{stamp.token}"'
        else:
            jql += f' AND "{self.mapping.stamp.field}" ~ "{_jql_escape(stamp.poam_id)}"'
        raws = list(self._search(jql, self._read_fields(), expand="changelog"))
        for record in self._records(raws):
            if record.stamp == stamp:
                return record
        return None

    # -- creating --------------------------------------------------------------------------

    def create(self, stamp: Stamp, fields: Mapping[str, JsonValue]) -> WriteResult:
        result = self.create_many([(stamp, fields)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def create_many(
        self, batch: Sequence[tuple[Stamp, Mapping[str, JsonValue]]]
    ) -> list[WriteResult | Exception]:
        results: list[WriteResult | Exception] = []
        for n in range(0, len(batch), BULK_SIZE):
            chunk = batch[n : n + BULK_SIZE]
            try:
                results += self._create_chunk(chunk)
            except RemoteError as exc:
                # this chunk failed as a whole (the engine finds any issue made by its stamp)
                results += [exc] * len(chunk)
        return results

    def _create_body(
        self, stamp: Stamp, values: Mapping[str, JsonValue], problems: list[FieldProblem]
    ) -> JsonDict:
        meta, ids, ms = self.meta, self.ids, self.mapping.stamp
        fields: JsonDict = {
            "project": {"id": meta.project_id},
            "issuetype": {"id": meta.issue_type_id},
            "summary": single_line(str(values.get("title") or stamp.poam_id)) or stamp.poam_id,
        }
        plain = {k: v for k, v in values.items() if k in ids.by_canonical and k != "title"}
        fields |= self._edit_values(plain, problems)
        if "title" in ids.by_canonical and ids.by_canonical["title"] != "summary":
            fields |= self._edit_values({"title": values.get("title")}, problems)
        if "original_risk" in self.synced_fields and "original_risk" not in values:
            fields[ids.by_canonical["original_risk"]] = {"name": self.mapping.default_priority}
        labels = list(fields.get("labels", []))
        if ms.label:
            labels.append(stamp.token)
        if labels:
            fields["labels"] = labels
        if ids.stamp_field:
            fields[ids.stamp_field] = stamp.poam_id
        value = {"poam_id": stamp.poam_id, "system": stamp.system, "item_uuid": stamp.item_uuid}
        return {"fields": fields, "properties": [{"key": ms.property, "value": value}]}

    def _create_chunk(
        self, chunk: Sequence[tuple[Stamp, Mapping[str, JsonValue]]]
    ) -> list[WriteResult | Exception]:
        problems: list[list[FieldProblem]] = [[] for _ in chunk]
        bodies = [self._create_body(s, v, p) for (s, v), p in zip(chunk, problems, strict=True)]
        keys: list[str | Exception] = [RemoteRejected("not created") for _ in chunk]
        state = {"attempt": 0}

        def attempt() -> None:
            state["attempt"] += 1
            todo = [i for i, k in enumerate(keys) if not isinstance(k, str)]
            if state["attempt"] > 1:
                # the previous try may have created some before failing: never create twice
                for i in todo:
                    found = self._find_key(chunk[i][0])
                    if found:
                        keys[i] = found
                todo = [i for i, k in enumerate(keys) if not isinstance(k, str)]
            for _round in range(2):
                if not todo:
                    return
                response = self._bulk([bodies[i] for i in todo])
                created = iter(response.get("issues", []))
                failed = {e["failedElementNumber"]: e for e in response.get("errors", [])}
                again = []
                for pos, i in enumerate(todo):
                    if pos not in failed:
                        keys[i] = next(created)["key"]
                        continue
                    body = failed[pos].get("elementErrors", {})
                    if _round == 0 and self._strip_refused(bodies[i], body, problems[i]):
                        again.append(i)  # the rest of the item is fine: create it without
                        continue
                    keys[i] = RemoteRejected(
                        f"Jira refused to create {chunk[i][0].poam_id}: {_body_text(body)}",
                        connector=self.name,
                        status=failed[pos].get("status"),
                    )
                todo = again

        self._call("create issues", attempt)
        made = [(i, k) for i, k in enumerate(keys) if isinstance(k, str)]
        for i, key in made:
            values = chunk[i][1]
            if "milestones" in self.synced_fields and values.get("milestones"):
                problems[i] += self._sync_milestones(key, values["milestones"], [])
            wanted = values.get("status")
            if "status" in self.synced_fields and wanted and wanted != Status.OPEN.value:
                problem = self._move_to(key, self.mapping.statuses[Status(str(wanted))])
                if problem:
                    problems[i].append(problem)
        records = {r.key: r for r in self._fetch([k for _, k in made])}
        out: list[WriteResult | Exception] = []
        for i, outcome in enumerate(keys):
            if isinstance(outcome, Exception):
                out.append(outcome)
            elif outcome not in records:
                out.append(RecordGone(f"Jira issue {outcome} vanished right after its creation"))
            else:
                out.append(WriteResult(records[outcome], tuple(problems[i])))
        self.log.info("jira.created", count=len(made), failed=len(chunk) - len(made))
        return out

    def _strip_refused(
        self, body: JsonDict, errors: JsonDict, problems: list[FieldProblem]
    ) -> bool:
        """Drop optional fields Jira refused from a create body; False when that cannot help."""
        refused = errors.get("errors") or {}
        fields = body["fields"]
        essential = {"project", "issuetype", "summary", "parent"}
        if errors.get("errorMessages") or not refused:
            return False
        if any(fid not in fields or fid in essential for fid in refused):
            return False
        for fid, message in refused.items():
            del fields[fid]
            canonical = self.ids.canonical_of(fid) or fid
            problems.append(_screen_problem(canonical, fid, str(message), self.mapping))
        return True

    def _bulk(self, updates: list[JsonDict]) -> JsonDict:
        try:
            response = self._send("POST", "issue/bulk", {"issueUpdates": updates})
        except JIRAError as exc:
            # all of them failed: Jira answers 400 with the same per-element body
            if exc.status_code == 400 and exc.response is not None:
                body: JsonDict = exc.response.json()
                if "errors" in body and "issues" in body:
                    return body
            raise
        result: JsonDict = response.json()
        return result

    def _find_key(self, stamp: Stamp) -> str | None:
        found = self.find_by_stamp(stamp)
        return found.key if found else None

    # -- updating --------------------------------------------------------------------------

    def _edit_values(
        self, values: Mapping[str, JsonValue], problems: list[FieldProblem]
    ) -> JsonDict:
        """Canonical plain fields as Jira edit values (owner through the user directory)."""
        ids = self.ids.by_canonical
        out: JsonDict = {}
        for field, value in values.items():
            if field not in ids:
                continue
            fid = ids[field]
            if field == "title":
                out[fid] = single_line(str(value or ""))
            elif field == "description":
                out[fid] = str(value or "") or None
            elif field == "owner":
                if value is None:
                    out[fid] = None
                    continue
                ident = self._user_id(str(value))
                if ident is None:
                    problems.append(
                        FieldProblem(
                            "owner",
                            "unknown_user",
                            f"no Jira user for {value}; the assignee was left as it was",
                            hint="add the user to users: in mappings/jira.yaml",
                        )
                    )
                    continue
                out[fid] = self._user_ref(ident)
            elif field == "original_risk":
                name = (
                    self.mapping.priorities[_risk(value)]
                    if value
                    else self.mapping.default_priority
                )
                out[fid] = {"name": name}
            elif field == "controls":
                labels = value if isinstance(value, list) else []
                out[fid] = list(dict.fromkeys(as_label(str(c)) for c in labels))
            else:
                out[fid] = value
        return out

    def update(self, remote_id: str, changes: Mapping[str, JsonValue]) -> WriteResult:
        changes = {k: v for k, v in changes.items() if k in self.synced_fields}
        problems: list[FieldProblem] = []
        raw, subs = self._get_full(remote_id)
        current = self._record(raw, subs)
        edit = self._edit_values(
            {
                k: v
                for k, v in changes.items()
                if k in self.ids.by_canonical and self.project(k, v) != current.fields.get(k)
            },
            problems,
        )
        if "labels" in edit:  # a field mapped to the labels must not wash our stamp away
            stamps = [
                lb for lb in raw["fields"].get("labels") or [] if lb.startswith(STAMP_LABEL_PREFIX)
            ]
            edit["labels"] = [*edit["labels"], *stamps]
        if edit:
            problems += self._put_fields(current.key, edit)
        if "milestones" in changes:
            problems += self._sync_milestones(current.key, changes["milestones"], subs)
        wanted = changes.get("status")
        if wanted is not None and current.fields.get("status") != self.project("status", wanted):
            problem = self._move_to(current.key, self.mapping.statuses[Status(str(wanted))])
            if problem:
                problems.append(problem)
        record = self.get(remote_id)
        self.log.info(
            "jira.updated", key=record.key, fields=sorted(changes), problems=len(problems)
        )
        return WriteResult(record, tuple(problems))

    def _put_fields(self, key: str, edit: JsonDict) -> list[FieldProblem]:
        """PUT the fields; fields Jira refuses are reported and the rest written anyway."""
        problems: list[FieldProblem] = []
        while edit:

            def put(edit: JsonDict = edit) -> dict[str, str]:
                try:
                    self._send("PUT", f"issue/{key}", {"fields": edit})
                except JIRAError as exc:
                    errors = _field_errors(exc)
                    if errors and set(errors) <= set(edit):
                        return errors
                    raise
                return {}

            refused = self._call("edit issue", put, key=key)
            if not refused:
                return problems
            for fid, message in refused.items():
                canonical = self.ids.canonical_of(fid) or fid
                problems.append(_screen_problem(canonical, fid, f"{key}: {message}", self.mapping))
            edit = {k: v for k, v in edit.items() if k not in refused}
        return problems

    # -- workflow ------------------------------------------------------------------------

    def _transitions(self, key: str) -> tuple[str, str, str | None, list[_Hop]]:
        """(issue type id, status, resolution, transitions available now) of an issue."""

        def read() -> tuple[JsonDict, JsonDict]:
            issue = self._get_issue(key, {"fields": "status,resolution,issuetype"})
            trans = self.client._session.get(
                self._url(f"issue/{key}/transitions"), params={"expand": "transitions.fields"}
            ).json()
            return issue, trans

        issue, trans = self._call("transitions", read, key=key)
        f = issue["fields"]
        hops = [
            _Hop(str(t["id"]), str(t["name"]), str(t["to"]["name"]), t.get("fields") or {})
            for t in trans.get("transitions", [])
        ]
        status = str(f["status"]["name"])
        itype = str(f["issuetype"]["id"])
        self._edges[(itype, status.lower())] = {h.to.lower(): h for h in hops}
        return itype, status, (f.get("resolution") or {}).get("name"), hops

    def _plan(
        self, itype: str, start: str, goal: str, *, cycle: bool, avoid: set[tuple[str, str]]
    ) -> list[str] | None:
        """Statuses to pass through from ``start`` to ``goal`` (BFS on known + mapped edges).

        Edges seen blocked in this walk, and learned edges whose screens need a field the
        mapping does not fill, are left out.
        """
        hints = {k.lower(): [v.lower() for v in vs] for k, vs in self.mapping.workflow.items()}

        def nexts(status: str) -> list[str]:
            learned = self._edges.get((itype, status))
            if learned is not None:
                found = [to for to, hop in learned.items() if not self._screen_values(hop, None)[1]]
            elif itype == self.meta.issue_type_id:
                found = hints.get(status, [])
            else:
                found = []
            return [to for to in found if (status, to) not in avoid]

        start, goal = start.lower(), goal.lower()
        queue: deque[list[str]] = deque([[start]])
        seen = {start} if not cycle else set()
        while queue:
            path = queue.popleft()
            for nxt in nexts(path[-1]):
                if nxt == goal and len(path) >= 1:
                    return [*path[1:], nxt]
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append([*path, nxt])
        return None

    def _move_to(self, key: str, target: StatusTarget) -> FieldProblem | None:
        """Transition ``key`` to ``target`` (multi-hop); a problem when it cannot be done."""
        origin = self._transitions(key)[1]
        return self._walk(key, target, rollback_to=origin)

    def _walk(
        self, key: str, target: StatusTarget, *, rollback_to: str | None
    ) -> FieldProblem | None:
        trail: list[str] = []
        avoid: set[tuple[str, str]] = set()
        last_why: str | None = None
        for _ in range(_MAX_HOPS):
            itype, status, resolution, hops = self._transitions(key)
            same = status.lower() == target.status.lower()
            res_ok = target.resolution is None or (
                resolution is not None and resolution.lower() == target.resolution.lower()
            )
            if same and (res_ok or trail):
                return None
            path = self._plan(itype, status, target.status, cycle=same, avoid=avoid)
            by_to = {h.to.lower(): h for h in hops}
            if not path or path[0] not in by_to:
                why = last_why or (
                    f"no transition path from {status!r} to {target.status!r} "
                    f"(available now: {sorted(h.name for h in hops)})"
                )
                needs = [self._needs(h, status) for h in hops if self._screen_values(h, None)[1]]
                if needs and not last_why:
                    why += "; " + "; ".join(needs)
                return self._blocked(key, target, why, trail, rollback_to)
            hop = by_to[path[0]]
            final = len(path) == 1
            fields, missing = self._screen_values(hop, target if final else None)
            if missing:
                last_why = self._needs(hop, status)
                avoid.add((status.lower(), hop.to.lower()))
                continue
            body: JsonDict = {"transition": {"id": hop.id}}
            if fields:
                body["fields"] = fields
            try:
                self._call(
                    "transition", functools.partial(self._post_transition, key, body), key=key
                )
            except RemoteRejected as exc:
                last_why = exc.message
                avoid.add((status.lower(), hop.to.lower()))
                continue
            trail.append(hop.to)
        return self._blocked(key, target, f"more than {_MAX_HOPS} hops", trail, rollback_to)

    def _needs(self, hop: _Hop, status: str) -> str:
        missing = self._screen_values(hop, None)[1]
        return (
            f"transition {hop.name!r} ({status} -> {hop.to}) needs "
            f"{', '.join(missing)}, which mappings/jira.yaml does not fill"
        )

    def _post_transition(self, key: str, body: JsonDict) -> None:
        self._send("POST", f"issue/{key}/transitions", body)

    def _screen_values(self, hop: _Hop, final: StatusTarget | None) -> tuple[JsonDict, list[str]]:
        values: JsonDict = {}
        missing: list[str] = []
        extra = {k.lower(): v for k, v in self.mapping.transition_fields.items()}
        for fid, meta in hop.fields.items():
            name = str(meta.get("name") or fid)
            given = extra.get(fid.lower(), extra.get(name.lower()))
            if fid == "resolution":
                wanted = final.resolution if final and final.resolution else None
                if wanted is None and meta.get("required"):
                    wanted = str(given) if given is not None else "Done"
                if wanted is not None:
                    values[fid] = {"name": wanted}
            elif given is not None:
                values[fid] = given
            elif meta.get("required") and not meta.get("hasDefaultValue"):
                missing.append(f"{name} ({fid})")
        return values, missing

    def _blocked(
        self,
        key: str,
        target: StatusTarget,
        why: str,
        trail: list[str],
        rollback_to: str | None,
    ) -> FieldProblem:
        note = ""
        if trail and rollback_to is not None:
            back = self._walk(key, StatusTarget(status=rollback_to), rollback_to=None)
            note = (
                f"; it was moved back to {rollback_to!r}"
                if back is None
                else f"; it is left in {trail[-1]!r} (moving it back failed too)"
            )
        message = f"{key}: cannot reach Jira status {target.status!r}: {why}{note}"
        self.log.warning("jira.transition_blocked", key=key, target=target.status, why=why)
        return FieldProblem(
            "status",
            "transition_blocked",
            message,
            hint="fix the workflow in Jira, or workflow/transition_fields in mappings/jira.yaml",
        )

    # -- milestones (sub-tasks) ----------------------------------------------------------

    def _sync_milestones(
        self, parent_key: str, wanted: JsonValue, existing: list[JsonDict]
    ) -> list[FieldProblem]:
        ms = self.mapping.milestones
        problems: list[FieldProblem] = []
        by_id: dict[str, JsonDict] = {}
        for sub in existing:
            labels = sub["fields"].get("labels") or []
            mid = next(
                (lb[len(ms.label_prefix) :] for lb in labels if lb.startswith(ms.label_prefix)),
                f"jira:{sub['key']}",
            )
            by_id[mid] = sub
        items = [
            self.mapping.project_milestone(m)
            for m in sort_milestones(wanted if isinstance(wanted, list) else [])
        ]
        new = [m for m in items if str(m["id"]) not in by_id]
        if new:
            bodies = [self._milestone_body(parent_key, m) for m in new]
            result = self._call("create milestones", lambda: self._bulk(bodies), key=parent_key)
            failed = {e["failedElementNumber"] for e in result.get("errors", [])}
            for err in result.get("errors", []):
                problems.append(
                    FieldProblem("milestones", "rejected", _body_text(err.get("elementErrors")))
                )
            created = iter(result.get("issues", []))
            for i, (m, body) in enumerate(zip(new, bodies, strict=True)):
                if i in failed:
                    continue
                by_id[str(m["id"])] = {
                    "key": next(created)["key"],
                    "fields": {
                        "summary": body["fields"]["summary"],
                        "duedate": m["due_date"],
                        "labels": body["fields"]["labels"],
                        "status": {"name": ms.statuses[MilestoneStatus.OPEN]},
                    },
                }
        wanted_ids = {str(m["id"]) for m in items}
        for m in items:
            found = by_id.get(str(m["id"]))
            if found is None:
                continue
            sub = found
            f = sub["fields"]
            edit: JsonDict = {}
            if (f.get("summary") or "") != m["description"] and m["description"]:
                edit["summary"] = m["description"]
            if f.get("duedate") != m["due_date"]:
                edit["duedate"] = m["due_date"]
            if edit:
                problems += [
                    FieldProblem("milestones", p.code, p.message, p.hint)
                    for p in self._put_fields(sub["key"], edit)
                ]
            want_status = ms.statuses[MilestoneStatus(str(m["status"]))]
            if f["status"]["name"].lower() != want_status.lower():
                problem = self._walk(sub["key"], StatusTarget(status=want_status), rollback_to=None)
                if problem:
                    problems.append(FieldProblem("milestones", problem.code, problem.message))
        for mid, existing_sub in by_id.items():
            sub = existing_sub
            labels = sub["fields"].get("labels") or []
            if mid not in wanted_ids and ms.removed_label not in labels:
                retired = {"fields": {"labels": [*labels, ms.removed_label]}}
                put = functools.partial(self._send, "PUT", f"issue/{sub['key']}", retired)
                self._call("retire milestone", put, key=sub["key"])
        return problems

    def _milestone_body(self, parent_key: str, m: Mapping[str, JsonValue]) -> JsonDict:
        ms = self.mapping.milestones
        fields: JsonDict = {
            "project": {"id": self.meta.project_id},
            "issuetype": {"id": self.meta.subtask_type_id},
            "parent": {"key": parent_key},
            "summary": m["description"] or f"Milestone {m['id']}",
            "labels": [as_label(f"{ms.label_prefix}{m['id']}")],
        }
        if m["due_date"]:
            fields["duedate"] = m["due_date"]
        return {"fields": fields}

    # -- notes -----------------------------------------------------------------------------

    def add_note(self, remote_id: str, note: Note) -> None:
        body = mark_note(note)

        def post() -> None:
            # idempotent: a retry (or a re-run after a crash) never posts the note twice
            page = self.client._session.get(
                self._url(f"issue/{remote_id}/comment"), params={"maxResults": 5000}
            ).json()
            marker = body.partition("\n")[0]
            if any(str(c.get("body", "")).startswith(marker) for c in page.get("comments", [])):
                return
            self._send("POST", f"issue/{remote_id}/comment", {"body": body})

        self._call("add comment", post, key=remote_id)


# -- helpers -----------------------------------------------------------------------------------


def _risk(value: JsonValue) -> RiskLevel:
    return RiskLevel(str(value))


def _jql_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _body_text(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)
    parts = [str(m) for m in body.get("errorMessages") or []]
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    return "; ".join(parts) or "no details"


def _screen_problem(canonical: str, fid: str, message: str, mapping: JiraMapping) -> FieldProblem:
    if _NOT_ON_SCREEN in message:
        return FieldProblem(
            canonical,
            "not_on_screen",
            message,
            hint=f"add the field {fid} to the create and edit screens of {mapping.issue_type} "
            "issues in Jira, or stop syncing it in mappings/jira.yaml",
        )
    return FieldProblem(canonical, "rejected", message)


def _field_errors(exc: JIRAError) -> dict[str, str]:
    """The per-field ``errors`` of a Jira 400 answer (empty for anything else)."""
    if exc.status_code != 400 or exc.response is None:
        return {}
    try:
        body = exc.response.json()
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}
