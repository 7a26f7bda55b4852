"""The wire to a ServiceNow instance: a session, typed errors, and table calls through pysnc.

Everything here speaks tables, columns and sys_ids, never canonical values; the connector and
its helpers (:mod:`.metadata`, :mod:`.directory`, :mod:`.milestones`, :mod:`.notes`) build on
:class:`TableClient`.

- The session trusts the configured CA and only it, sends our timeout on every request (pysnc
  passes none) and authenticates with basic auth or OAuth client credentials.
- A response hook turns every error answer into our typed error
  (:func:`.answers.remote_error`) before pysnc sees it; :meth:`TableClient.guarded` does the
  same for network trouble and pysnc's own exceptions: a refused connection, an unresolved
  name, a TLS failure or a missing CA bundle is :class:`~poam_sync.errors.RemoteUnreachable` at
  once, naming the URL (not retried).
- pysnc retries neither POST nor PATCH, and its GET retries are turned off (``auto_retry=False``
  mounts no urllib3 ``Retry``; our adapter has ``max_retries=0``), so that one policy
  (:func:`~poam_sync.connectors._http.with_retries`) is in charge: :meth:`TableClient.call`
  wraps the calls that are safe to repeat; creates are repeated by the connector only after it
  looked their stamp up. Every call, retried or not, passes the client's circuit breaker.
- Reads are keyset pages (``sys_id>last^ORDERBYsys_id``), which neither skip nor repeat records
  edited meanwhile.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeVar
from urllib.parse import urlsplit

import pysnc
import requests
import structlog

from poam_sync.connectors._http import (
    CircuitBreaker,
    RetryPolicy,
    describe,
    once,
    parse_retry_after,
    unreachable,
    with_retries,
)
from poam_sync.connectors._inflight import DEFAULT_IN_FLIGHT, LimitedAdapter, limiter_for
from poam_sync.connectors.servicenow import batch
from poam_sync.connectors.servicenow.answers import remote_error
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.errors import (
    RecordGone,
    RemoteAuthError,
    RemoteError,
    RemoteRejected,
    RemoteTransientError,
    RemoteUnreachable,
)
from poam_sync.telemetry import count_response

T = TypeVar("T")
log = structlog.get_logger(__name__)

Row = dict[str, tuple[str, str]]  # column -> (value, display value)
_ACCEPT = {"Accept": "application/json"}
SYS_ID = re.compile(r"[0-9a-f]{32}")


# -- the session -------------------------------------------------------------------------------


class _ClientCredentials(requests.auth.AuthBase):
    """OAuth client credentials against ``/oauth_token.do``, trusting our CA.

    (pysnc's own ``ServiceNowClientCredentialsFlow`` fetches tokens with a bare
    ``requests.post``, which ignores the session's ``verify`` and would not trust a local CA.)
    """

    def __init__(self, settings: ServiceNowSettings, connector: str) -> None:
        self.settings = settings
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
        except (requests.RequestException, OSError) as exc:
            raise _network_error(
                exc, self.settings, connector=self.connector, what="OAuth token request"
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
                hint="check client_id/client_secret and the OAuth application on the instance; "
                "the client credentials grant is off on an instance until an admin sets "
                "glide.oauth.inbound.client.credential.grant_type.enabled to true and gives "
                "the OAuth application an OAuth Application User",
            )
        data = response.json()
        self.token = str(data["access_token"])
        self.expires = time.time() + float(data.get("expires_in", 1800)) - 60

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token is None or time.time() > self.expires:
            self._fetch()
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def _network_error(
    exc: BaseException, settings: ServiceNowSettings, *, connector: str, what: str
) -> RemoteTransientError | RemoteUnreachable:
    """No answer at all: unreachable (refused, name, TLS, CA bundle) or transient (the rest)."""
    dead = unreachable(
        exc,
        system="ServiceNow",
        url=settings.url,
        connector=connector,
        ca_bundle=settings.ca_bundle,
    )
    if dead is not None:
        return dead
    return RemoteTransientError(
        f"ServiceNow {what}: network error: {type(exc).__name__}: {describe(exc)}",
        connector=connector,
    )


def build_session(
    settings: ServiceNowSettings, *, connector: str, on_response: Callable[..., None]
) -> requests.Session:
    """A session trusting the configured CA (and only it), with auth, timeout and error hook."""
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify= otherwise
    session.verify = str(settings.ca_bundle) if settings.ca_bundle else True
    # every request holds a slot of the host's limiter, shared by the process (and sends our
    # timeout: pysnc passes none)
    limit = settings.max_in_flight or DEFAULT_IN_FLIGHT
    session.mount(
        "https://", LimitedAdapter(limiter_for(settings.url, limit), timeout=settings.timeout)
    )
    if settings.client_id:
        session.auth = _ClientCredentials(settings, connector)
    else:
        password = settings.password.get_secret_value() if settings.password else ""
        session.auth = requests.auth.HTTPBasicAuth(settings.user or "", password)
    session.hooks["response"].append(count_response(connector))  # /metrics
    session.hooks["response"].append(on_response)
    return session


# -- rows --------------------------------------------------------------------------------------


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _current_row(gr: pysnc.GlideRecord, fields: Sequence[str]) -> Row:
    return {f: (_text(gr.get_value(f)), _text(gr.get_display_value(f))) for f in fields}


def _cell(value: object) -> tuple[str, str]:
    """(value, display value) of one field as ``sysparm_display_value=all`` renders it."""
    if isinstance(value, dict):
        return _text(value.get("value")), _text(value.get("display_value"))
    return _text(value), _text(value)


def _row_of(item: Mapping[str, object], fields: Sequence[str]) -> Row:
    """A row of the fields asked for; one the instance did not send (a field ACL) is empty."""
    return {f: _cell(item.get(f)) for f in dict.fromkeys(["sys_id", *fields])}


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in slices of ``size``: ``IN`` queries stay of a length instances accept."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def checked_sys_id(remote_id: str, *, connector: str) -> str:
    """``remote_id`` if it is a sys_id (it goes into URLs and queries), else RecordGone."""
    if not SYS_ID.fullmatch(remote_id):
        raise RecordGone(
            f"{remote_id!r} is not a ServiceNow sys_id (32 hex digits): no such record",
            connector=connector,
            key=remote_id,
            hint="the link to this record is broken; relink the item",
        )
    return remote_id


# -- table calls -------------------------------------------------------------------------------


class TableClient:
    """Table API calls through pysnc on our session, raising only our typed errors."""

    def __init__(self, settings: ServiceNowSettings, *, connector: str, retry: RetryPolicy) -> None:
        self.connector = connector
        self.settings = settings
        self.retry = retry
        self.breaker = CircuitBreaker(connector)  # reset by the connector's prepare()
        self.page_size = settings.page_size
        #: where lists are read (``/api/now/v1/table`` answers an empty list with 404)
        self.list_path = "/api/now/table"
        #: tables whose rows a read ACL dropped: a first page came back empty although its
        #: X-Total-Count said rows matched (ServiceNow KB3047115)
        self.hidden: set[str] = set()
        self._log = log.bind(connector=connector, table=settings.table)
        self.session = build_session(settings, connector=connector, on_response=self._on_response)
        self._client = pysnc.ServiceNowClient(settings.url, self.session, auto_retry=False)

    def _on_response(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        """requests hook: turn an error answer into our typed error before pysnc sees it."""
        request = response.request
        path = urlsplit(str(request.url or "")).path
        error = remote_error(
            response.status_code,
            response.headers,
            response.content,
            what=f"{request.method} {path}",
            connector=self.connector,
            key=path.rsplit("/", 1)[-1] if len(path.rsplit("/", 1)[-1]) == 32 else None,
        )
        if error is not None:
            raise error

    def guarded(self, call: Callable[[], T], *, what: str) -> T:
        """Run one pysnc call once, under the breaker; every error it raises becomes ours."""
        return once(lambda: self._translated(call, what=what), breaker=self.breaker)

    def _translated(self, call: Callable[[], T], *, what: str) -> T:
        name = self.connector
        try:
            return call()
        except RemoteError:
            raise
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _network_error(exc, self.settings, connector=name, what=what) from exc
        except requests.RequestException as exc:  # truncated body, decode errors...
            raise RemoteTransientError(
                f"ServiceNow {what}: incomplete response: {exc}", connector=name
            ) from exc
        except OSError as exc:  # requests' bare OSError for a CA bundle path that does not exist
            raise _network_error(exc, self.settings, connector=name, what=what) from exc
        except (
            pysnc.exceptions.AuthenticationException,
            pysnc.exceptions.RoleException,
        ) as exc:
            raise RemoteAuthError(f"ServiceNow {what}: {exc}", connector=name) from exc
        except (pysnc.exceptions.RestException, pysnc.exceptions.RequestException) as exc:
            raise RemoteRejected(f"ServiceNow {what}: {exc}", connector=name) from exc
        except json.JSONDecodeError as exc:  # an unparsable (cut) answer; requests' is one too
            raise RemoteTransientError(
                f"ServiceNow {what}: unreadable response: {exc!r}", connector=name
            ) from exc

    def call(self, call: Callable[[], T], *, what: str) -> T:
        """A call that is safe to repeat, under the retry policy."""
        return with_retries(
            lambda: self.guarded(call, what=what), self.retry, what=what, breaker=self.breaker
        )

    # -- reading -------------------------------------------------------------------------------

    def page(
        self, table: str, fields: Sequence[str], query: str, *, after: str | None, size: int
    ) -> list[Row]:
        """One keyset page: records with sys_id > ``after`` matching ``query``, by sys_id.

        For a lookup of a few rows; a walk through a table is :meth:`pages`."""
        return self._fetch(table, fields, query, after=after, offset=0, size=size)[0]

    def pages(
        self, table: str, fields: Sequence[str], query: str, *, size: int, display: bool = True
    ) -> Iterator[list[Row]]:
        """Every record matching ``query``, page by page, by sys_id.

        The end is the API's own marker (no ``Link`` rel="next", else the ``X-Total-Count``),
        never a short page: row ACLs drop rows *after* the instance cut the page, so a page
        may be short, even empty, before the end (ServiceNow KB3047115). A full page moves the
        keyset on (``sys_id>last``, which neither skips nor repeats records edited meanwhile);
        after a short one the last sys_id the instance counted is unknown, so the next request
        keeps the keyset and moves ``sysparm_offset`` on by a page.

        (pysnc's own paging sets ``sysparm_offset`` to the number of rows *received*, which
        re-reads rows after a short page and stops at an empty one; hence our own requests.)
        """
        after: str | None = None
        offset = 0
        while True:
            rows, more = self._fetch(
                table, fields, query, after=after, offset=offset, size=size, display=display
            )
            if rows:
                yield rows
            if not more:
                return
            if len(rows) == size:
                after, offset = rows[-1]["sys_id"][0], 0
            else:
                offset += size

    def _fetch(
        self,
        table: str,
        fields: Sequence[str],
        query: str,
        *,
        after: str | None,
        offset: int,
        size: int,
        display: bool = True,
    ) -> tuple[list[Row], bool]:
        """One GET of the Table API: the rows, and whether the instance says more follow.
        ``display``: with display values (``sysparm_display_value=all``: "both sys_id and
        display value", ServiceNow community, "How to get Table Displayvalue through Rest
        APi", 2016); without (``false``), the raw values alone, each standing for both."""
        full = "^".join(filter(None, [query, f"sys_id>{after}" if after else "", "ORDERBYsys_id"]))
        names = list(dict.fromkeys(["sys_id", *fields]))
        params = {
            "sysparm_query": full,
            "sysparm_fields": ",".join(names),
            "sysparm_limit": str(size),
            "sysparm_offset": str(offset),
            "sysparm_display_value": "all" if display else "false",
            "sysparm_exclude_reference_link": "true",
        }
        url = f"{self.settings.url}{self.list_path}/{table}"

        def fetch() -> tuple[list[Row], bool]:
            try:
                response = self.session.get(url, params=params, headers=_ACCEPT)
            except RecordGone:
                # a list is never "gone": /api/now/v1/table answers an empty result with 404
                # "No Record found" where the unversioned path answers 200 (ServiceNow KB0551763)
                return [], False
            result = response.json().get("result", [])
            if not isinstance(result, list):
                raise RemoteTransientError(
                    f"ServiceNow GET {table}: the answer holds no list of records",
                    connector=self.connector,
                )
            rows = [_row_of(item, fields) for item in result if isinstance(item, dict)]
            total = response.headers.get("X-Total-Count", "")
            if not rows and offset == 0 and after is None and total.isdigit() and int(total):
                self.hidden.add(table)
            if response.links:
                return rows, "next" in response.links
            if total.isdigit():
                return rows, offset + size < int(total)
            return rows, len(rows) == size

        return self.call(fetch, what=f"GET {table}")

    def refused(self, table: str, read: Callable[[], T]) -> tuple[bool, T | None]:
        """Run a read of system table ``table``: (False, its result), or (True, None) when
        the integration user may not read it (a 403, or every row dropped by a read ACL)."""
        try:
            result = read()
        except (RemoteAuthError, RemoteRejected) as exc:
            if exc.status == 403:
                return True, None
            raise
        return table in self.hidden, result

    def may_read(self, table: str, query: str) -> bool:
        """Whether the integration user may read ``table`` (one row of ``query``)."""
        refused, _ = self.refused(
            table, lambda: self.page(table, ["sys_id"], query, after=None, size=1)
        )
        return not refused

    def patch_display_values(self, table: str, sys_id: str, values: Mapping[str, str]) -> Row:
        """PATCH ``values`` given as display values (choice *labels*), with
        ``sysparm_input_display_value=true`` ("set field values using the display value",
        Table API docs): for choice columns whose codes cannot be read from ``sys_choice``.
        The answer's rows carry (code, label), so the caller learns the codes."""
        url = f"{self.settings.url}/api/now/table/{table}/{sys_id}"
        params = {
            "sysparm_input_display_value": "true",
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
        }

        def patch() -> Row:
            response = self.session.patch(url, params=params, json=dict(values), headers=_ACCEPT)
            result = response.json().get("result", {})
            names = [k for k in result if isinstance(k, str)] if isinstance(result, dict) else []
            return _row_of(result if isinstance(result, dict) else {}, names)

        return self.guarded(patch, what=f"PATCH {table}/{sys_id}")

    def select(self, table: str, fields: Sequence[str], query: str) -> Iterator[Row]:
        """All records matching ``query``, page by page (see :meth:`pages`)."""
        for rows in self.pages(table, fields, query, size=self.page_size):
            yield from rows

    def get(self, table: str, sys_id: str, fields: Sequence[str]) -> Row:
        """One record by sys_id (retried); RecordGone when there is none."""

        def fetch() -> Row:
            gr = self._client.GlideRecord(table)
            gr.fields = list(fields)
            if not gr.get(sys_id):
                raise RecordGone(
                    f"ServiceNow record {table}/{sys_id} no longer exists",
                    connector=self.connector,
                    key=sys_id,
                    status=404,
                )
            return _current_row(gr, fields)

        return self.call(fetch, what=f"GET {table}/{sys_id}")

    def count(self, table: str, query: str | None) -> int:
        """How many records of ``table`` match ``query`` (``X-Total-Count`` of a 1-row page)."""

        def count() -> int:
            gr = self._client.GlideRecord(table, batch_size=1)
            gr.fields = ["sys_id"]
            if query:
                gr.add_encoded_query(query)
            gr.limit = 1
            gr.query()
            return int(gr.get_row_count())

        return self.call(count, what=f"GET {table}")

    # -- writing (not retried here: the caller knows whether a repeat is safe) -------------------

    def insert(self, table: str, values: Mapping[str, str]) -> Row:
        def post() -> Row:
            gr = self._client.GlideRecord(table)
            gr.initialize()
            for column, value in values.items():
                gr.set_value(column, value)
            gr.insert()
            return _current_row(gr, list(gr.fields or []))

        return self.guarded(post, what=f"POST {table}")

    def patch(self, table: str, sys_id: str, values: Mapping[str, str]) -> Row:
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

        return self.guarded(patch, what=f"PATCH {table}/{sys_id}")

    def delete(self, table: str, sys_id: str) -> None:
        def delete() -> None:
            gr = self._client.GlideRecord(table)
            gr.initialize()
            gr.set_value("sys_id", sys_id)
            with contextlib.suppress(RecordGone):  # already gone is what we wanted
                gr.delete()

        self.guarded(delete, what=f"DELETE {table}/{sys_id}")

    def insert_batch(
        self, table: str, records: Sequence[Mapping[str, str]]
    ) -> list[Row | RemoteError | None]:
        """POST ``records`` in one Batch API request (:func:`.batch.send`). Per record: its
        row; the error that refused it; or None when it may or may not have been created (a
        transient failure of the request or of that record), for the caller to look up and
        create on its own."""
        return batch.send(self, table, [batch.Call("POST", "", values) for values in records])

    def patch_batch(
        self,
        table: str,
        changes: Sequence[tuple[str, Mapping[str, str]]],
        fields: Sequence[str],
    ) -> list[Row | RemoteError | None]:
        """PATCH each (sys_id, values) in one Batch API request (:func:`.batch.send`), each
        answer the record with ``fields``. Per record: its row; the error that refused it (a
        404 is :class:`~poam_sync.errors.RecordGone`, a 403 typed by its kind, as a single
        PATCH's); or None when it may or may not have been written (a PATCH is safe to
        repeat)."""
        calls = [
            batch.Call("PATCH", f"/{sys_id}", values, key=sys_id) for sys_id, values in changes
        ]
        return batch.send(self, table, calls, fields=fields)

    def close(self) -> None:
        self.session.close()
