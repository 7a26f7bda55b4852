"""The ServiceNow connector: POA&M items as records of a table, through the Table API with pysnc.

In the order bugwarrior's service modules use: settings, client wiring, normalization, the
connector class.

Why pysnc: it is ServiceNow's own maintained client, pages with ``sysparm_offset`` and
``X-Total-Count``, and ``GlideRecord.update()`` PATCHes only the fields that changed. pysnow is
unmaintained since 2021, pins old dependencies, does not page, and overwrites whole records with
PUT. pysnc only accepts ``https://`` instances.

What the remote does and how we cope (ServiceNow docs "Table API", "REST API rate limiting";
PySNC 1.2.1 source):

- ``sys_updated_on`` is UTC to the second: ``pull`` asks for ``sys_updated_on>=`` the watermark
  minus one second and de-duplicates on ``sys_id`` + ``sys_mod_count``; pages are keyset pages
  (``sys_id>last^ORDERBYsys_id``), which neither skip nor repeat records edited meanwhile.
- State and priority codes are instance configuration: they are read from ``sys_choice``; the
  mapping speaks labels.
- ``assigned_to`` is a reference to ``sys_user``, found by e-mail; an unknown e-mail is a
  :class:`~poam_sync.connectors.base.FieldProblem` and the owner is left as it was.
- pysnc retries neither POST nor PATCH (and its GET retries are turned off here, so that one
  policy is in charge): every call goes through :func:`~poam_sync.connectors._http.with_retries`;
  a create is repeated only after :meth:`ServiceNowConnector.find_by_stamp` shows that it did not
  happen, a work note only after the journal shows it is not there.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import pysnc
import requests
import structlog
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pysnc.client import BatchAPI
from requests.adapters import HTTPAdapter

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
from poam_sync.connectors.servicenow.mapping import (
    ServiceNowMapping,
    join_controls,
    sort_milestones,
    split_controls,
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

T = TypeVar("T")
log = structlog.get_logger(__name__)

SN_TIME = "%Y-%m-%d %H:%M:%S"
SYS_ID = re.compile(r"[0-9a-f]{32}")
STAMP_PREFIX = "poam-sync:"
JOURNAL_ELEMENTS = ("work_notes", "comments")
BATCH_CHUNK = 50


# -- settings ----------------------------------------------------------------------------------


class ServiceNowSettings(BaseModel):
    """Where the instance is, who we are there, and which records are POA&M items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    user: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    table: str = "sn_grc_issue"
    milestone_table: str = "sn_irm_cont_auth_milestone_task"
    query: str | None = None  # extra encoded query limiting the scope, e.g. "active=true"
    stamp_field: str = "correlation_id"
    # holds "system/poam_id" beside the stamp; None: both go into stamp_field
    stamp_display_field: str | None = "correlation_display"
    page_size: int = Field(default=100, ge=1, le=10000)
    ca_bundle: Path | None = None
    max_attempts: int = Field(default=5, ge=1, le=20)
    timeout: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError(
                f"{value!r} is not an https:// URL (pysnc and ServiceNow accept HTTPS only)"
            )
        return f"https://{parts.netloc}{parts.path.rstrip('/')}"

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> ServiceNowSettings:
        basic = self.user is not None or self.password is not None
        oauth = self.client_id is not None or self.client_secret is not None
        if basic and oauth:
            raise ValueError("give either user/password or client_id/client_secret, not both")
        if basic and (not self.user or self.password is None):
            raise ValueError("basic authentication needs both user and password")
        if oauth and (not self.client_id or self.client_secret is None):
            raise ValueError("OAuth needs both client_id and client_secret")
        if not basic and not oauth:
            raise ValueError("no credentials: give user/password or client_id/client_secret")
        return self

    @property
    def auth_description(self) -> str:
        if self.client_id:
            return f"OAuth client credentials (client {self.client_id})"
        return f"basic ({self.user})"


# -- client wiring -----------------------------------------------------------------------------


class _TimeoutAdapter(HTTPAdapter):
    """pysnc passes no timeout; every request of the session gets ours."""

    def __init__(self, timeout: float) -> None:
        super().__init__(max_retries=0)
        self.timeout = timeout

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=self.timeout if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


class _ClientCredentials(requests.auth.AuthBase):
    """OAuth client credentials against ``/oauth_token.do``, trusting our CA.

    (pysnc's own ``ServiceNowClientCredentialsFlow`` fetches tokens with a bare
    ``requests.post``, which ignores the session's ``verify`` and would not trust a local CA.)
    """

    def __init__(self, settings: ServiceNowSettings, connector: str) -> None:
        self.url = f"{settings.url}/oauth_token.do"
        self.client_id = settings.client_id or ""
        self.secret = settings.client_secret
        self.timeout = settings.timeout
        self.verify: str | bool = str(settings.ca_bundle) if settings.ca_bundle else True
        self.connector = connector
        self.token: str | None = None
        self.expires = 0.0

    def _fetch(self) -> None:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.verify
        try:
            response = session.post(
                self.url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.client_id,
                    "client_secret": self.secret.get_secret_value() if self.secret else "",
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise RemoteTransientError(
                f"cannot reach the OAuth token endpoint {self.url}: {exc}", connector=self.connector
            ) from exc
        finally:
            session.close()
        if response.status_code == 429 or response.status_code >= 500:
            raise RemoteTransientError(
                f"OAuth token endpoint {self.url} answered {response.status_code}",
                connector=self.connector,
                status=response.status_code,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code != 200:
            raise RemoteAuthError(
                f"ServiceNow refused OAuth client {self.client_id!r} at {self.url} "
                f"({response.status_code})",
                connector=self.connector,
                status=response.status_code,
                hint="check client_id/client_secret and the OAuth application on the instance",
            )
        data = response.json()
        self.token = str(data["access_token"])
        self.expires = time.time() + float(data.get("expires_in", 1800)) - 60

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is None or time.time() > self.expires:
            self._fetch()
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _error_message(body: bytes | str) -> str:
    """``message: detail`` from ServiceNow's ``{"error": {...}, "status": "failure"}``."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        return text[:200]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        detail = str(err.get("detail") or "").strip()
        return f"{message}: {detail}" if detail else message
    return str(data)[:200]


def remote_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    what: str,
    connector: str,
    key: str | None = None,
) -> RemoteError | None:
    """The typed error for an HTTP answer, or None when it succeeded."""
    if status < 400:
        return None
    text = _error_message(body)
    message = f"ServiceNow {what} failed with {status}: {text}"
    if status == 429 or status >= 500:
        return RemoteTransientError(
            message,
            connector=connector,
            key=key,
            status=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status == 401:
        return RemoteAuthError(
            message, connector=connector, key=key, status=status,
            hint="check the user/password or OAuth client in the connector settings",
        )  # fmt: skip
    if status == 403 and "data policy" not in text.lower():
        return RemoteAuthError(
            message, connector=connector, key=key, status=status,
            hint="the integration user lacks a role or an ACL blocks it",
        )  # fmt: skip
    if status == 404:
        return RecordGone(message, connector=connector, key=key, status=status)
    return RemoteRejected(message, connector=connector, key=key, status=status)


def build_session(
    settings: ServiceNowSettings, *, connector: str, on_response: Callable[..., Any]
) -> requests.Session:
    """A session trusting the configured CA (and only it), with auth, timeout and error hook."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify= otherwise
    session.verify = str(settings.ca_bundle) if settings.ca_bundle else True
    session.mount("https://", _TimeoutAdapter(settings.timeout))
    if settings.client_id:
        session.auth = _ClientCredentials(settings, connector)
    else:
        password = settings.password.get_secret_value() if settings.password else ""
        session.auth = requests.auth.HTTPBasicAuth(settings.user or "", password)
    session.hooks["response"].append(on_response)
    return session


# -- normalization -----------------------------------------------------------------------------

Row = dict[str, tuple[str, str]]  # column -> (value, display value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _rows(gr: Any, fields: Sequence[str]) -> list[Row]:
    out = []
    for _ in gr:
        out.append({f: (_text(gr.get_value(f)), _text(gr.get_display_value(f))) for f in fields})
    return out


def _current_row(gr: Any, fields: Sequence[str]) -> Row:
    return {f: (_text(gr.get_value(f)), _text(gr.get_display_value(f))) for f in fields}


def sn_time(value: str) -> datetime:
    """``2026-01-19 04:52:04`` (UTC, as the Table API sends raw values) -> aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def watermark_query(since: datetime) -> str:
    """``sys_updated_on>=`` one second before ``since`` (UTC, second granularity)."""
    if since.tzinfo is None:
        raise ValueError("the watermark must be timezone-aware")
    start = since.astimezone(UTC) - timedelta(seconds=1)
    return f"sys_updated_on>={start.strftime(SN_TIME)}"


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True)
class _Meta:
    """What was discovered on the instance: choice codes and column lengths."""

    codes: dict[str, dict[str, str]]  # "table.column" -> label -> value
    labels: dict[str, dict[str, str]]  # "table.column" -> value -> label
    lengths: dict[str, int]  # mapping.project key -> max length

    def code(self, table: str, column: str, label: str) -> str | None:
        return self.codes.get(f"{table}.{column}", {}).get(label)

    def label(self, table: str, column: str, value: str) -> str | None:
        return self.labels.get(f"{table}.{column}", {}).get(value)


# -- the connector -----------------------------------------------------------------------------


class ServiceNowConnector(Connector):
    """POA&M items as records of one ServiceNow table (default ``sn_grc_issue``)."""

    def __init__(
        self,
        settings: ServiceNowSettings,
        mapping: ServiceNowMapping,
        *,
        name: str = "servicenow",
        retry: RetryPolicy | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.mapping = mapping
        self.synced_fields = mapping.synced_fields
        self.retry = retry or RetryPolicy(attempts=settings.max_attempts)
        self.table = settings.table
        self.milestone_table = (
            mapping.milestones.table if mapping.milestones and mapping.milestones.table
            else settings.milestone_table
        )  # fmt: skip
        self._log = log.bind(connector=name, table=settings.table)
        self._session = build_session(settings, connector=name, on_response=self._on_response)
        self._client = pysnc.ServiceNowClient(settings.url, self._session, auto_retry=False)
        self._meta: _Meta | None = None
        self._user_ids: dict[str, str] = {}  # lower-case e-mail -> sys_id
        self._emails: dict[str, str] = {}  # sys_id -> lower-case e-mail

    # -- plumbing --------------------------------------------------------------------------

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """requests hook: turn an error answer into our typed error before pysnc sees it."""
        request = response.request
        path = urlsplit(str(request.url or "")).path
        error = remote_error(
            response.status_code,
            response.headers,
            response.content,
            what=f"{request.method} {path}",
            connector=self.name,
            key=path.rsplit("/", 1)[-1] if len(path.rsplit("/", 1)[-1]) == 32 else None,
        )
        if error is not None:
            raise error

    def _guarded(self, call: Callable[[], T], *, what: str) -> T:
        """Run one pysnc call; network trouble and pysnc's own errors become our errors."""
        try:
            return call()
        except RemoteError:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise RemoteTransientError(
                f"ServiceNow {what}: network error: {exc}", connector=self.name
            ) from exc
        except requests.RequestException as exc:  # truncated body, decode errors...
            raise RemoteTransientError(
                f"ServiceNow {what}: incomplete response: {exc}", connector=self.name
            ) from exc
        except (
            pysnc.exceptions.AuthenticationException,
            pysnc.exceptions.RoleException,
        ) as exc:
            raise RemoteAuthError(f"ServiceNow {what}: {exc}", connector=self.name) from exc
        except (pysnc.exceptions.RestException, pysnc.exceptions.RequestException) as exc:
            raise RemoteRejected(f"ServiceNow {what}: {exc}", connector=self.name) from exc
        except json.JSONDecodeError as exc:  # an unparsable (cut) answer; requests' is one too
            raise RemoteTransientError(
                f"ServiceNow {what}: unreadable response: {exc!r}", connector=self.name
            ) from exc

    def _call(self, call: Callable[[], T], *, what: str) -> T:
        """A call that is safe to repeat, under the retry policy."""
        return with_retries(lambda: self._guarded(call, what=what), self.retry, what=what)

    def _page(
        self, table: str, fields: Sequence[str], query: str, *, after: str | None, size: int
    ) -> list[Row]:
        """One keyset page: records with sys_id > ``after`` matching ``query``, by sys_id."""
        full = "^".join(filter(None, [query, f"sys_id>{after}" if after else ""]))

        def fetch() -> list[Row]:
            # rewindable=False would be leaner, but pysnc 1.2.1 then blanks the last row of a page
            # when it reads the first (results[current - 1] with current == 0).
            gr = self._client.GlideRecord(table, batch_size=size)
            gr.fields = list(fields)
            if full:
                gr.add_encoded_query(full)
            gr.order_by("sys_id")
            gr.limit = size
            gr.query()
            return _rows(gr, fields)

        return self._call(fetch, what=f"GET {table}")

    def _select(self, table: str, fields: Sequence[str], query: str) -> Iterator[Row]:
        """All records matching ``query``, page by page."""
        fields = ["sys_id", *[f for f in fields if f != "sys_id"]]
        after: str | None = None
        size = self.settings.page_size
        while True:
            rows = self._page(table, fields, query, after=after, size=size)
            yield from rows
            if len(rows) < size:
                return
            after = rows[-1]["sys_id"][0]

    def _insert(self, table: str, values: Mapping[str, str]) -> Row:
        def post() -> Row:
            gr = self._client.GlideRecord(table)
            gr.initialize()
            for column, value in values.items():
                gr.set_value(column, value)
            gr.insert()
            return _current_row(gr, list(gr.fields or []))

        return self._guarded(post, what=f"POST {table}")

    def _patch(self, table: str, sys_id: str, values: Mapping[str, str]) -> Row:
        def patch() -> Row:
            gr = self._client.GlideRecord(table)
            gr.initialize()
            gr.set_value("sys_id", sys_id)
            for column, value in values.items():
                # pysnc sends only *changed* elements, and an element created by set_value is
                # not marked changed: create it empty, then change it.
                gr.set_value(column, None)
                gr.set_value(column, value)
            gr.update()
            return _current_row(gr, list(gr.fields or []))

        return self._guarded(patch, what=f"PATCH {table}/{sys_id}")

    def _delete(self, table: str, sys_id: str) -> None:
        def delete() -> None:
            gr = self._client.GlideRecord(table)
            gr.initialize()
            gr.set_value("sys_id", sys_id)
            with contextlib.suppress(RecordGone):  # already gone is what we wanted
                gr.delete()

        self._guarded(delete, what=f"DELETE {table}/{sys_id}")

    # -- discovery ---------------------------------------------------------------------------

    def meta(self, *, refresh: bool = False) -> _Meta:
        """Choice codes (``sys_choice``) and column lengths (``sys_dictionary``), cached."""
        if self._meta is not None and not refresh:
            return self._meta
        m = self.mapping
        wanted: list[tuple[str, str]] = []
        if "status" in m.fields:
            wanted.append((self.table, m.fields["status"]))
        if "original_risk" in m.fields:
            wanted.append((self.table, m.fields["original_risk"]))
        if m.milestones is not None:
            wanted.append((self.milestone_table, m.milestones.state_field))
        codes: dict[str, dict[str, str]] = {f"{t}.{c}": {} for t, c in wanted}
        labels: dict[str, dict[str, str]] = {f"{t}.{c}": {} for t, c in wanted}
        tables = sorted({t for t, _ in wanted})
        if wanted:
            query = (
                f"nameIN{','.join(tables)}^elementIN{','.join(sorted({c for _, c in wanted}))}"
                "^inactive=false"
            )
            for row in self._select("sys_choice", ["name", "element", "value", "label"], query):
                key = f"{row['name'][0]}.{row['element'][0]}"
                if key in codes:
                    codes[key].setdefault(row["label"][0], row["value"][0])
                    labels[key].setdefault(row["value"][0], row["label"][0])
        lengths: dict[str, int] = {}
        text_columns = {m.fields[f]: f for f in ("title", "description") if f in m.fields}
        dict_tables = [self.table]
        if m.milestones is not None:
            dict_tables.append(self.milestone_table)
        query = f"nameIN{','.join(dict_tables)}"
        for row in self._select("sys_dictionary", ["name", "element", "max_length"], query):
            table, element, length = row["name"][0], row["element"][0], row["max_length"][0]
            if not length.isdigit():
                continue
            if table == self.table and element in text_columns:
                lengths[element] = int(length)
            if (
                m.milestones is not None
                and table == self.milestone_table
                and element == m.milestones.description_field
            ):
                lengths[f"milestone.{element}"] = int(length)
        self._check_labels(codes)
        self._meta = _Meta(codes, labels, lengths)
        return self._meta

    def _check_labels(self, codes: Mapping[str, Mapping[str, str]]) -> None:
        m = self.mapping
        problems = []
        if "status" in m.fields:
            known = codes[f"{self.table}.{m.fields['status']}"]
            for status, label in m.states.items():
                if label not in known:
                    problems.append(
                        f"states.{status.value} <- {label!r} is not a choice of "
                        f"{self.table}.{m.fields['status']} (choices: {', '.join(known) or 'none'})"
                    )
        if "original_risk" in m.fields:
            known = codes[f"{self.table}.{m.fields['original_risk']}"]
            for risk, label in m.risks.items():
                if label not in known:
                    problems.append(
                        f"risks.{risk.value} <- {label!r} is not a choice of "
                        f"{self.table}.{m.fields['original_risk']} "
                        f"(choices: {', '.join(known) or 'none'})"
                    )
        if m.milestones is not None:
            known = codes[f"{self.milestone_table}.{m.milestones.state_field}"]
            for ms, label in m.milestones.states.items():
                if label not in known:
                    problems.append(
                        f"milestones.states.{ms.value} <- {label!r} is not a choice of "
                        f"{self.milestone_table}.{m.milestones.state_field} "
                        f"(choices: {', '.join(known) or 'none'})"
                    )
        if problems:
            raise ConfigError(
                "\n".join(f"[{self.name} mapping] {p}" for p in problems),
                hint="use the labels the instance shows in sys_choice, or add the choices there",
            )

    def _sys_id(self, remote_id: str) -> str:
        """``remote_id`` if it is a sys_id (it goes into URLs and queries), else RecordGone."""
        if not SYS_ID.fullmatch(remote_id):
            raise RecordGone(
                f"{remote_id!r} is not a ServiceNow sys_id (32 hex digits): no such record",
                connector=self.name,
                key=remote_id,
                hint="the link to this record is broken; relink the item",
            )
        return remote_id

    # -- users ---------------------------------------------------------------------------------

    def _user_id(self, email: str) -> str | None:
        wanted = email.strip().lower()
        if wanted in self._user_ids:
            return self._user_ids[wanted]
        if any(c in wanted for c in "^,\n") or "@" not in wanted:
            return None  # not an e-mail; "^" would even change the meaning of the query
        candidates = dict.fromkeys([email.strip(), wanted])
        for candidate in candidates:
            rows = self._page(
                "sys_user",
                ["sys_id", "email"],
                f"email={candidate}^active=true",
                after=None,
                size=2,
            )
            if rows:
                sys_id = rows[0]["sys_id"][0]
                self._user_ids[wanted] = sys_id
                self._emails[sys_id] = wanted
                return sys_id
        return None

    def _email(self, sys_id: str) -> str | None:
        if not sys_id:
            return None
        if sys_id not in self._emails:
            rows = self._page(
                "sys_user", ["sys_id", "email"], f"sys_id={sys_id}", after=None, size=1
            )
            email = rows[0]["email"][0].strip().lower() if rows else ""
            self._emails[sys_id] = email
            if email:
                self._user_ids.setdefault(email, sys_id)
        return self._emails[sys_id] or None

    # -- reading -------------------------------------------------------------------------------

    def _fields(self) -> list[str]:
        s, m = self.settings, self.mapping
        names = ["sys_id", "number", "sys_updated_on", "sys_updated_by", "sys_mod_count"]
        names.append(s.stamp_field)
        if s.stamp_display_field:
            names.append(s.stamp_display_field)
        names += list(m.fields.values())
        if "owner" in m.fields:
            names.append(f"{m.fields['owner']}.email")
        return list(dict.fromkeys(names))

    def _milestone_fields(self) -> list[str]:
        ms = self.mapping.milestones
        assert ms is not None
        return [
            "sys_id",
            ms.parent_field,
            ms.id_field,
            ms.description_field,
            ms.due_date_field,
            ms.state_field,
        ]

    def _milestone_rows(self, parents: Sequence[str]) -> dict[str, list[Row]]:
        ms = self.mapping.milestones
        out: dict[str, list[Row]] = {p: [] for p in parents}
        if ms is None or not parents:
            return out
        for chunk in _chunks(list(parents), 100):
            query = f"{ms.parent_field}IN{','.join(chunk)}"
            for row in self._select(self.milestone_table, self._milestone_fields(), query):
                out.setdefault(row[ms.parent_field][0], []).append(row)
        return out

    def _milestone_value(self, row: Row) -> dict[str, JsonValue]:
        ms = self.mapping.milestones
        assert ms is not None
        code, display = row[ms.state_field]
        label = self.meta().label(self.milestone_table, ms.state_field, code) or display
        status = ms.read_back(label) or MilestoneStatus.OPEN
        return {
            "id": row[ms.id_field][0],
            "description": row[ms.description_field][0],
            "due_date": row[ms.due_date_field][0][:10] or None,
            "status": status.value,
        }

    def _notes(self, record_ids: Sequence[str]) -> dict[str, list[Note]]:
        out: dict[str, list[Note]] = {r: [] for r in record_ids}
        if not record_ids:
            return out
        fields = ["sys_id", "element_id", "value", "sys_created_on", "sys_created_by"]
        entries: list[Row] = []
        for chunk in _chunks(list(record_ids), 100):
            query = (
                f"name={self.table}^element_idIN{','.join(chunk)}"
                f"^elementIN{','.join(JOURNAL_ELEMENTS)}"
            )
            entries += self._select("sys_journal_field", fields, query)
        entries.sort(key=lambda r: (r["sys_created_on"][0], r["sys_id"][0]))
        for row in entries:
            created = row["sys_created_on"][0]
            out.setdefault(row["element_id"][0], []).append(
                parse_note(
                    row["value"][0],
                    connector=self.name,
                    remote_id=row["sys_id"][0],
                    author=row["sys_created_by"][0] or None,
                    created=sn_time(created) if created else None,
                )
            )
        return out

    def _stamp_values(self, stamp: Stamp) -> dict[str, str]:
        where = f"{quote(stamp.system, safe='')}/{quote(stamp.poam_id, safe='')}"
        if self.settings.stamp_display_field:
            return {
                self.settings.stamp_field: stamp.token,
                self.settings.stamp_display_field: where,
            }
        return {self.settings.stamp_field: f"{stamp.token} {where}"}

    def _stamp(self, row: Row) -> Stamp | None:
        raw = row.get(self.settings.stamp_field, ("", ""))[0]
        if not raw.startswith(STAMP_PREFIX):
            return None
        token, _, where = raw.partition(" ")
        if self.settings.stamp_display_field:
            where = row.get(self.settings.stamp_display_field, ("", ""))[0]
        system, sep, poam_id = where.partition("/")
        if not sep:
            return None
        return Stamp(
            system=unquote(system), poam_id=unquote(poam_id), item_uuid=token[len(STAMP_PREFIX) :]
        )

    def _record(
        self, row: Row, milestones: list[dict[str, JsonValue]] | None, notes: Sequence[Note] = ()
    ) -> RemoteRecord:
        m = self.mapping
        fields: dict[str, JsonValue] = {}
        for canonical, column in m.fields.items():
            value, display = row.get(column, ("", ""))
            if canonical == "status":
                label = self.meta().label(self.table, column, value) or display
                status = m.status_from_label(label)
                if status is None:
                    self._log.warning(
                        "servicenow.unmapped_state", sys_id=row["sys_id"][0], state=label
                    )
                    continue
                fields["status"] = status.value
            elif canonical == "original_risk":
                label = self.meta().label(self.table, column, value) or display
                risk = m.risk_from_label(label)
                fields["original_risk"] = risk.value if risk else None
            elif canonical == "owner":
                email = row.get(f"{column}.email", ("", ""))[0].strip().lower()
                if email and value:
                    self._emails[value] = email
                fields["owner"] = email or (self._email(value) if value else None)
            elif canonical in ("due_date", "scheduled_completion_date"):
                fields[canonical] = value[:10] or None
            elif canonical == "controls":
                fields["controls"] = split_controls(value)
            else:
                fields[canonical] = value
        if milestones is not None:
            fields["milestones"] = sort_milestones(milestones)
        sys_id = row["sys_id"][0]
        return RemoteRecord(
            remote_id=sys_id,
            key=row.get("number", ("", ""))[0] or sys_id,
            version=row["sys_mod_count"][0],
            updated_at=sn_time(row["sys_updated_on"][0]),
            fields=fields,
            stamp=self._stamp(row),
            updated_by=row.get("sys_updated_by", ("", ""))[0] or None,
            url=f"{self.settings.url}/nav_to.do?uri={self.table}.do?sys_id={sys_id}",
            notes=tuple(notes),
        )

    def _records(self, rows: Sequence[Row]) -> list[RemoteRecord]:
        """Records for a page of rows: milestones and notes fetched for the page at once."""
        ids = [r["sys_id"][0] for r in rows]
        children = self._milestone_rows(ids) if self.mapping.milestones else None
        notes = self._notes(ids)
        out = []
        for row in rows:
            sys_id = row["sys_id"][0]
            milestones = (
                [self._milestone_value(c) for c in children.get(sys_id, [])]
                if children is not None
                else None
            )
            out.append(self._record(row, milestones, notes.get(sys_id, [])))
        return out

    # -- Connector API ---------------------------------------------------------------------------

    def project(self, field: str, value: JsonValue) -> JsonValue:
        lengths: Mapping[str, int] = {}
        try:
            lengths = self.meta().lengths
        except RemoteError:
            lengths = {}
        return self.mapping.project(field, value, lengths)

    def check(self) -> dict[str, str]:
        meta = self.meta(refresh=True)

        def count() -> int:
            gr = self._client.GlideRecord(self.table, batch_size=1)
            gr.fields = ["sys_id"]
            if self.settings.query:
                gr.add_encoded_query(self.settings.query)
            gr.limit = 1
            gr.query()
            return int(gr.get_row_count())

        total = self._call(count, what=f"GET {self.table}")
        states = meta.codes.get(f"{self.table}.{self.mapping.fields.get('status', 'state')}", {})
        return {
            "url": self.settings.url,
            "auth": self.settings.auth_description,
            "table": self.table,
            "records_in_scope": str(total),
            "state_choices": ", ".join(f"{label}={code}" for label, code in states.items()),
            "milestone_table": self.milestone_table if self.mapping.milestones else "(not synced)",
        }

    def pull(self, since: datetime | None) -> Iterator[RemoteRecord]:
        scope = self.settings.query or ""
        changed = watermark_query(since) if since is not None else ""
        query = "^".join(filter(None, [scope, changed]))
        seen: set[tuple[str, str]] = set()
        yielded = 0
        fields = self._fields()
        after: str | None = None
        size = self.settings.page_size
        while True:
            rows = self._page(self.table, fields, query, after=after, size=size)
            for record in self._records(rows):
                if (record.remote_id, record.version) not in seen:
                    seen.add((record.remote_id, record.version))
                    yielded += 1
                    yield record
            if len(rows) < size:
                break
            after = rows[-1]["sys_id"][0]
        # A milestone edited in ServiceNow does not touch its parent's sys_updated_on: pull
        # the parents of milestones changed since the watermark too.
        ms = self.mapping.milestones
        if since is not None and ms is not None:
            parents = {
                row[ms.parent_field][0]
                for row in self._select(self.milestone_table, [ms.parent_field], changed)
            }
            parents -= {sys_id for sys_id, _ in seen}
            parents.discard("")
            for chunk in _chunks(sorted(parents), size):
                in_scope = "^".join(filter(None, [scope, f"sys_idIN{','.join(chunk)}"]))
                rows = list(self._select(self.table, fields, in_scope))
                for record in self._records(rows):
                    if (record.remote_id, record.version) not in seen:
                        seen.add((record.remote_id, record.version))
                        yielded += 1
                        yield record
        self._log.info(
            "servicenow.pulled", since=since.isoformat() if since else None, records=yielded
        )

    def get(self, remote_id: str) -> RemoteRecord:
        remote_id = self._sys_id(remote_id)
        fields = self._fields()

        def fetch() -> Row:
            gr = self._client.GlideRecord(self.table)
            gr.fields = list(fields)
            if not gr.get(remote_id):
                raise RecordGone(
                    f"ServiceNow record {self.table}/{remote_id} no longer exists",
                    connector=self.name,
                    key=remote_id,
                    status=404,
                )
            return _current_row(gr, fields)

        row = self._call(fetch, what=f"GET {self.table}/{remote_id}")
        return self._records([row])[0]

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        column = self.settings.stamp_field
        if self.settings.stamp_display_field:
            query = f"{column}={stamp.token}"
        else:
            query = f"{column}STARTSWITH{stamp.token} "
        # An instance ignores a query term naming an unknown column and returns everything:
        # keep only rows that really carry the stamp.
        rows = [
            r
            for r in self._page(self.table, self._fields(), query, after=None, size=10)
            if self._stamp(r) == stamp
        ]
        if not rows:
            return None
        if len(rows) > 1:
            self._log.warning(
                "servicenow.duplicate_stamp",
                stamp=stamp.token,
                records=[r["number"][0] for r in rows],
            )
        rows.sort(key=lambda r: r["number"][0])
        return self._records(rows[:1])[0]

    # -- writing -------------------------------------------------------------------------------

    def _values(
        self, changes: Mapping[str, JsonValue]
    ) -> tuple[dict[str, str], list[FieldProblem]]:
        """Column values for canonical ``changes`` (milestones excluded), and what cannot go."""
        m = self.mapping
        out: dict[str, str] = {}
        problems: list[FieldProblem] = []
        for canonical, value in changes.items():
            if canonical == "milestones" or canonical not in m.fields:
                continue
            column = m.fields[canonical]
            if canonical == "status":
                label = m.states[Status(str(value))]
                code = self.meta().code(self.table, column, label)
                if code is None:
                    problems.append(
                        FieldProblem(
                            "status",
                            "unknown_state",
                            f"state {label!r} is not a choice of {self.table}.{column}",
                            hint="fix states in the ServiceNow mapping",
                        )
                    )
                    continue
                out[column] = code
            elif canonical == "original_risk":
                if value is None:
                    out[column] = ""
                    continue
                label = m.risks[RiskLevel(str(value))]
                code = self.meta().code(self.table, column, label)
                if code is None:
                    problems.append(
                        FieldProblem(
                            "original_risk",
                            "unknown_choice",
                            f"priority {label!r} is not a choice of {self.table}.{column}",
                            hint="fix risks in the ServiceNow mapping",
                        )
                    )
                    continue
                out[column] = code
            elif canonical == "owner":
                if value is None or not str(value).strip():
                    out[column] = ""
                    continue
                user = self._user_id(str(value))
                if user is None:
                    problems.append(
                        FieldProblem(
                            "owner",
                            "unknown_user",
                            f"no active ServiceNow user (sys_user) has the e-mail {value}; "
                            "the record keeps its current assignee",
                            hint="create the user in ServiceNow or map the owner in users.yaml",
                        )
                    )
                    continue
                out[column] = user
            elif canonical in ("due_date", "scheduled_completion_date"):
                out[column] = str(value)[:10] if value else ""
            elif canonical == "controls":
                out[column] = join_controls(value or [])
            else:
                out[column] = "" if value is None else str(value)
        return out, problems

    def _create_once(self, stamp: Stamp, fields: Mapping[str, JsonValue]) -> WriteResult:
        values, problems = self._values(fields)
        row = self._insert(self.table, {**values, **self._stamp_values(stamp)})
        return self._after_create(row, fields, problems)

    def _after_create(
        self, row: Row, fields: Mapping[str, JsonValue], problems: list[FieldProblem]
    ) -> WriteResult:
        sys_id = row["sys_id"][0]
        milestones: list[dict[str, JsonValue]] | None = None
        if self.mapping.milestones is not None:
            fresh = True  # a record just created has no children: no need to read them first

            def write() -> list[dict[str, JsonValue]]:
                nonlocal fresh
                first, fresh = fresh, False
                return self._write_milestones(sys_id, fields.get("milestones") or [], fresh=first)

            milestones = self._call(write, what="milestones")
        self._log.info("servicenow.created", sys_id=sys_id, number=row.get("number", ("", ""))[0])
        return WriteResult(self._record(row, milestones), tuple(problems))

    def create(self, stamp: Stamp, fields: Mapping[str, JsonValue]) -> WriteResult:
        return self._create(stamp, fields, checked=False)

    def _create(
        self, stamp: Stamp, fields: Mapping[str, JsonValue], *, checked: bool
    ) -> WriteResult:
        """POST once; before any repeat, look the stamp up (the POST may have gone through)."""
        must_check = checked

        def attempt() -> WriteResult:
            nonlocal must_check
            if must_check:
                found = self.find_by_stamp(stamp)
                if found is not None:
                    self._log.info("servicenow.create_found", sys_id=found.remote_id)
                    if self.mapping.milestones is not None:
                        self._call(
                            lambda: self._write_milestones(
                                found.remote_id, fields.get("milestones") or []
                            ),
                            what="milestones",
                        )
                    return WriteResult(self.get(found.remote_id))
            must_check = True
            return self._guarded(lambda: self._create_once(stamp, fields), what="create")

        return with_retries(attempt, self.retry, what="create")

    def create_many(
        self, batch: Sequence[tuple[Stamp, Mapping[str, JsonValue]]]
    ) -> list[WriteResult | Exception]:
        """Creates through the Batch API, 50 per request; per-item errors in place."""
        results: list[WriteResult | Exception | None] = [None] * len(batch)
        for start in range(0, len(batch), BATCH_CHUNK):
            self._create_chunk(batch, start, min(len(batch), start + BATCH_CHUNK), results)
        return [r if r is not None else RuntimeError("not created") for r in results]

    def _create_chunk(
        self,
        batch: Sequence[tuple[Stamp, Mapping[str, JsonValue]]],
        start: int,
        end: int,
        results: list[WriteResult | Exception | None],
    ) -> None:
        api = BatchAPI(self._client)  # a fresh one: pysnc's keeps failed requests queued
        prepared: dict[int, list[FieldProblem]] = {}
        rows: dict[int, Row] = {}
        for i in range(start, end):
            stamp, fields = batch[i]
            try:
                values, problems = self._values(fields)
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results[i] = exc
                continue
            prepared[i] = problems
            gr = self._client.GlideRecord(self.table)
            gr.initialize()
            for column, value in {**values, **self._stamp_values(stamp)}.items():
                gr.set_value(column, value)

            def hook(response: requests.Response | None, i: int = i) -> None:
                if response is None:
                    return  # unserviced: created one by one below
                error = remote_error(
                    response.status_code,
                    response.headers,
                    response.content,
                    what=f"batched POST {self.table}",
                    connector=self.name,
                )
                if isinstance(error, RemoteTransientError):
                    return  # may or may not have happened: created one by one below
                if error is not None:
                    results[i] = error
                    return
                result = response.json()["result"]
                rows[i] = {
                    k: (
                        (_text(v.get("value")), _text(v.get("display_value")))
                        if isinstance(v, dict)
                        else (_text(v), _text(v))
                    )
                    for k, v in result.items()
                }

            api.post(gr, hook)
        if prepared:
            try:
                self._guarded(api.execute, what="POST batch")
            except RemoteTransientError as exc:
                # The batch may or may not have been applied: each item is created on its own,
                # after looking its stamp up.
                self._log.info("servicenow.batch_failed", error=str(exc), items=len(prepared))
            except RemoteError as exc:
                for i in prepared:
                    results[i] = exc
                return
        for i, problems in prepared.items():
            if results[i] is not None:
                continue
            stamp, fields = batch[i]
            try:
                if i in rows:
                    results[i] = self._after_create(rows[i], fields, problems)
                else:
                    results[i] = self._create(stamp, fields, checked=True)
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results[i] = exc

    def update(self, remote_id: str, changes: Mapping[str, JsonValue]) -> WriteResult:
        remote_id = self._sys_id(remote_id)
        # PATCHing field values and upserting milestones are idempotent: safe to repeat.
        return self._call(lambda: self._update_once(remote_id, changes), what="update")

    def _update_once(self, remote_id: str, changes: Mapping[str, JsonValue]) -> WriteResult:
        values, problems = self._values(changes)
        row: Row | None = None
        if values:
            try:
                row = self._patch(self.table, remote_id, values)
            except RemoteRejected as exc:
                state = self.mapping.fields.get("status")
                if exc.status != 403 or state not in values:
                    raise
                # A data policy refuses the state (e.g. Closed needs close notes): write the
                # rest and report the status.
                problems.append(
                    FieldProblem(
                        "status",
                        "transition_blocked",
                        f"ServiceNow refused the state change: {exc.message}",
                        hint="the state needs fields poam-sync does not set; change it in "
                        "ServiceNow or relax the data policy",
                    )
                )
                rest = {k: v for k, v in values.items() if k != state}
                row = self._patch(self.table, remote_id, rest) if rest else None
        milestones: list[dict[str, JsonValue]] | None = None
        if "milestones" in changes and self.mapping.milestones is not None:
            milestones = self._write_milestones(remote_id, changes.get("milestones") or [])
        for p in problems:
            self._log.warning(
                "servicenow.field_problem", sys_id=remote_id, field=p.field, code=p.code
            )
        if row is None or "sys_mod_count" not in row:
            return WriteResult(self.get(remote_id), tuple(problems))
        if milestones is None and self.mapping.milestones is not None:
            milestones = [
                self._milestone_value(r) for r in self._milestone_rows([remote_id])[remote_id]
            ]
        return WriteResult(self._record(row, milestones), tuple(problems))

    def _write_milestones(
        self, parent: str, wanted: JsonValue, *, fresh: bool = False
    ) -> list[dict[str, JsonValue]]:
        """Make the parent's milestone records equal ``wanted`` (idempotent); the result.

        ``fresh``: the parent was just created, so it has no children to read yet.
        """
        ms = self.mapping.milestones
        assert ms is not None
        target = self.mapping.project_milestones(wanted, self.meta().lengths)
        existing: dict[str, tuple[str, dict[str, JsonValue]]] = {}
        extra: list[str] = []
        for row in [] if fresh else self._milestone_rows([parent])[parent]:
            value = self._milestone_value(row)
            if str(value["id"]) in existing:
                extra.append(row["sys_id"][0])
            else:
                existing[str(value["id"])] = (row["sys_id"][0], value)
        for item in target:
            columns = {
                ms.id_field: str(item["id"]),
                ms.description_field: str(item["description"] or ""),
                ms.due_date_field: str(item["due_date"] or ""),
                ms.state_field: self._milestone_code(str(item["status"])),
            }
            if str(item["id"]) not in existing:
                self._insert(self.milestone_table, {ms.parent_field: parent, **columns})
                continue
            sys_id, have = existing.pop(str(item["id"]))
            if have != item:
                self._patch(self.milestone_table, sys_id, columns)
        for sys_id, _ in existing.values():
            self._delete(self.milestone_table, sys_id)
        for sys_id in extra:
            self._delete(self.milestone_table, sys_id)
        return target

    def _milestone_code(self, status: str) -> str:
        ms = self.mapping.milestones
        assert ms is not None
        label = ms.states[MilestoneStatus(status)]
        code = self.meta().code(self.milestone_table, ms.state_field, label)
        if code is None:
            raise ConfigError(
                f"[{self.name} mapping] milestones.states.{status} <- {label!r} is not a choice "
                f"of {self.milestone_table}.{ms.state_field}"
            )
        return code

    def add_note(self, remote_id: str, note: Note) -> None:
        remote_id = self._sys_id(remote_id)
        body = mark_note(note)
        repeat = False

        def attempt() -> None:
            nonlocal repeat
            if repeat and any(n.id == note.id for n in self._notes([remote_id])[remote_id]):
                return  # the earlier attempt went through
            repeat = True
            self._patch(self.table, remote_id, {"work_notes": body})

        self._call(attempt, what="add work note")

    def close(self) -> None:
        self._session.close()
