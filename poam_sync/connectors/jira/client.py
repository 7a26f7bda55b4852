"""The HTTP side of the Jira connector: one ``jira.JIRA`` client, our retry policy in charge.

Everything that goes over the wire passes through :class:`JiraClient`: it builds the client
(``max_retries=0``: ``jira``'s ``ResilientSession`` would otherwise retry connects and 429/5xx
itself, up to 3 times with its own delays, jira/resilientsession.py; requests' adapter makes a
single try by default), runs each call through :meth:`JiraClient.call` (our one retry ladder and
circuit breaker, and the ``jira``/``requests`` errors translated into ours by
:func:`translate`), pages searches, and offers raw GET/PUT/POST for what the ``jira`` package has
no public call for. A refused connection, an unresolved name or a TLS failure is
:class:`~poam_sync.errors.RemoteUnreachable` at the first try, naming the URL.

Jira's search index lags behind writes (Cloud: "the API doesn't provide read-after-write
consistency by default", developer.atlassian.com/cloud/jira/platform/search-and-reconcile).
With ``search_lag_seconds`` set, the client remembers the issues it wrote within that window:
on Cloud every search names up to 50 of them in ``reconcileIssues`` (its documented limit,
JRACLOUD-96208), so they read as they are; for the rest (and on Data Center, which has no such
parameter) a search first waits until the index has caught up with them. A write whose answer
was lost (it may have landed) counts too. Reads by key never lag.

The ``jira`` package has no public way to send a request of our own (a bulk create with issue
properties, an edit that must not re-read the issue, a transition body exactly as Jira's API
documents it): its own methods use the client's private ``_session``. We reach it in exactly one
place, :func:`http_session`; ``jira`` is pinned to the tested releases in ``pyproject.toml`` and
``tests/jira/test_connector.py`` fails clearly when a release no longer has it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import requests
from jira import JIRA, JIRAError

from poam_sync.connectors._http import (
    CircuitBreaker,
    RetryPolicy,
    describe,
    once,
    origin,
    parse_retry_after,
    unreachable,
    with_retries,
)
from poam_sync.connectors._inflight import DEFAULT_IN_FLIGHT, LimitedAdapter, limiter_for
from poam_sync.connectors.jira.settings import JiraSettings
from poam_sync.errors import (
    RecordGone,
    RemoteAuthError,
    RemoteError,
    RemoteRejected,
    RemoteTransientError,
)
from poam_sync.telemetry import count_response

__all__ = [
    "BULK_SIZE",
    "JiraClient",
    "JiraJson",
    "body_text",
    "field_errors",
    "http_session",
    "parse_jira_time",
    "translate",
]

T = TypeVar("T")
JiraJson: TypeAlias = dict[str, Any]
"""A JSON object as Jira sends or takes it (an issue, its fields, an error body): Jira's own
untyped payload at the edge. :mod:`.records` and :mod:`.milestones` turn it into
:data:`~poam_sync.connectors.base.SyncValue` values; :mod:`.edits` builds it from them."""

BULK_SIZE = 50  # Jira's limit for POST /issue/bulk
RECONCILE_MAX = 50  # ids per search/jql reconcileIssues (Atlassian's OpenAPI)
_MISSING_KEY = re.compile(r"An issue with key '([^']+)' does not exist")


def http_session(client: JIRA) -> requests.Session:
    """The ``requests`` session inside ``client``: our only use of a private ``jira`` name.

    Needed for the raw requests the package offers no public call for (see the module
    docstring) and to switch off ``trust_env``. Checked against the installed release by
    ``test_the_jira_client_still_has_its_requests_session``.
    """
    session: requests.Session = client._session
    return session


class JiraClient:
    """One Jira site over the ``jira`` package: connection, retries, errors, raw requests.

    The ``jira.JIRA`` client is built on first use, so that building a connector (``config
    check``, tests) never touches the network.
    """

    def __init__(
        self,
        settings: JiraSettings,
        *,
        connector: str,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.connector = connector
        self.retry = retry
        self.breaker = CircuitBreaker(connector)  # reset by the connector's prepare()
        self.clock = clock
        self.sleep = sleep
        self._jira: JIRA | None = None
        self._written: dict[str, float] = {}  # issue key -> when we last wrote it
        self._ids: dict[str, str] = {}  # issue key -> id (reconcileIssues takes ids)
        self._blind_write: float | None = None  # a write whose answer was lost

    # -- the lagging search index ------------------------------------------------------------

    @property
    def lag(self) -> float:
        return self.settings.search_lag_seconds

    def wrote(self, key: str, issue_id: str | None = None) -> None:
        """Note a write to ``key`` (searches within the lag reconcile it or wait for it)."""
        if issue_id is not None:
            self._ids[key.upper()] = str(issue_id)
        if self.lag:
            self._written[key.upper()] = self.clock()

    def id_of(self, key: str) -> str | None:
        """The id of an issue this client has seen or written, by key."""
        return self._ids.get(key.upper())

    def keys_seen(self) -> list[str]:
        """The keys of the issues this client has seen or written."""
        return list(self._ids)

    def seen(self, raw: JiraJson) -> None:
        """Note an issue's id (from any answer naming it), for ``reconcileIssues``."""
        if "key" in raw and "id" in raw:
            self._ids[str(raw["key"]).upper()] = str(raw["id"])

    def wait_for_index(self, since: float) -> None:
        """Wait until the search index holds every write made before ``since`` (our clock)."""
        remaining = since + self.lag - self.clock()
        if self.lag and remaining > 0:
            self.sleep(remaining)

    def _consistent(self, cloud: bool) -> list[str]:
        """Before a search: the ids to reconcile, after waiting out the writes we cannot."""
        if not self.lag:
            return []
        now = self.clock()
        self._written = {k: t for k, t in self._written.items() if now - t < self.lag}
        newest = sorted(self._written.items(), key=lambda kv: kv[1], reverse=True)
        ids: list[str] = []
        unreconciled: list[float] = []
        for key, when in newest:
            if cloud and key in self._ids and len(ids) < RECONCILE_MAX:
                ids.append(self._ids[key])
            else:
                unreconciled.append(when)
        if self._blind_write is not None:
            unreconciled.append(self._blind_write)
        if unreconciled:
            self.wait_for_index(max(unreconciled))
            self._blind_write = None
        return ids

    def call(self, what: str, fn: Callable[[], T], *, key: str | None = None) -> T:
        """``fn()`` under our retry policy and breaker, its errors as ours (:func:`translate`)."""
        return with_retries(
            self._translated(what, fn, key), self.retry, what=what, breaker=self.breaker
        )

    def call_once(self, what: str, fn: Callable[[], T], *, key: str | None = None) -> T:
        """``fn()`` a single time (a write not safe to repeat blind), under the breaker."""
        return once(self._translated(what, fn, key), breaker=self.breaker)

    def _translated(self, what: str, fn: Callable[[], T], key: str | None) -> Callable[[], T]:
        s = self.settings
        ca_bundle = s.verify if isinstance(s.verify, Path) else None

        def attempt() -> T:
            try:
                return fn()
            except RemoteError:
                raise  # a nested call, translated already
            except (JIRAError, requests.RequestException, OSError) as exc:
                # OSError: requests raises a bare one for a CA bundle path that does not exist
                raise translate(
                    exc, connector=self.connector, key=key, what=what, url=s.url, ca=ca_bundle
                ) from None

        return attempt

    @property
    def jira(self) -> JIRA:
        """The ``jira.JIRA`` client, connected on first use."""
        if self._jira is None:
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

            def connect() -> JIRA:
                # max_retries=0: our RetryPolicy decides about 429/503, not the client
                return JIRA(
                    s.url,
                    options=options,
                    max_retries=0,
                    timeout=s.timeout,
                    logging=False,
                    **auth,
                )

            client = self.call("connect", connect)
            session = http_session(client)
            session.hooks["response"].append(count_response(self.connector))
            if isinstance(s.verify, Path):
                # REQUESTS_CA_BUNDLE would otherwise override the CA we were told to trust
                session.trust_env = False
            # every request holds a slot of the host's limiter, shared by the process
            limiter = limiter_for(s.url, s.max_in_flight or DEFAULT_IN_FLIGHT)
            adapter = LimitedAdapter(limiter)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            self._jira = client
        return self._jira

    def close(self) -> None:
        if self._jira is not None:
            self._jira.close()  # type: ignore[no-untyped-call]  # unannotated in jira
            self._jira = None

    # -- raw requests (API v2, plain text) -------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.settings.url}/rest/api/2/{path}"

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:  # JSON: any shape
        """GET ``/rest/api/2/<path>`` as JSON (not retried: wrap it in :meth:`call`)."""
        return http_session(self.jira).get(self._url(path), params=params).json()

    def get_issue(self, key: str, params: Mapping[str, str]) -> JiraJson:
        """One issue as Jira's JSON; raw, because ``JIRA.issue`` builds resource objects from
        the whole answer (changelog and comments included), which we would only throw away."""
        result: JiraJson = self.get(f"issue/{key}", params)
        self.seen(result)
        return result

    def issue_property(self, key: str, prop: str) -> Any:  # JSON: any shape
        """The value of issue property ``prop`` of ``key``; None when it has none (Jira: 404
        "The property with key ... does not exist"). Not retried: wrap it in :meth:`call`."""
        try:
            found = self.get(f"issue/{key}/properties/{prop}")
        except JIRAError as exc:
            if exc.status_code == 404 and "property" in _jira_message(exc).lower():
                return None
            raise
        return found.get("value") if isinstance(found, dict) else None

    def paged(
        self, what: str, key: str, path: str, items: str, *, retried: bool = True
    ) -> list[JiraJson]:
        """Every element of an issue's ``startAt``-paged list (``comments`` under
        ``/comment``, ``values`` under ``/changelog``), each page retried on its own (not
        with ``retried=False``: for a caller that runs inside :meth:`call` already).

        Pages are asked for 100 at a time, the most Cloud gives (it caps comments at 100 a
        page whatever ``maxResults`` says, pycontribs/jira#1938); the end is the API's own
        marker (``isLast``, else ``total``), never a short page."""
        out: list[JiraJson] = []
        while True:
            start = len(out)

            def page(start: int = start) -> JiraJson:
                found: JiraJson = self.get(path, {"startAt": str(start), "maxResults": "100"})
                return found

            result = self.call(what, page, key=key) if retried else page()
            values = result.get(items) or []
            out += values
            if result.get("isLast") is True or not values:
                return out
            if "isLast" not in result and len(out) >= int(result.get("total") or 0):
                return out

    def comments(self, key: str, *, retried: bool = True) -> list[JiraJson]:
        """Every comment of ``key``, oldest first (Cloud pages them by 100)."""
        path = f"issue/{key}/comment"
        return self.paged("read comments", key, path, "comments", retried=retried)

    def changelog(self, key: str) -> list[JiraJson]:
        """Every changelog history of ``key``, oldest first: Cloud's ``GET
        /issue/{key}/changelog`` (paged under ``values``), for an issue whose expanded
        changelog was cut at 100."""
        return self.paged("read changelog", key, f"issue/{key}/changelog", "values")

    def send(self, method: str, path: str, body: JiraJson) -> requests.Response:
        """PUT/POST ``body`` as JSON to ``/rest/api/2/<path>`` (not retried). A write to an
        issue is noted for the lagging search index."""
        parts = path.split("/")
        try:
            return http_session(self.jira).request(method, self._url(path), data=json.dumps(body))
        finally:
            # noted once the answer is in (or lost): the write landed before that moment
            if len(parts) >= 2 and parts[0] == "issue" and parts[1] != "bulk":
                self.wrote(parts[1])

    def bulk(self, updates: list[JiraJson]) -> JiraJson:
        """POST ``/issue/bulk``: the created issues and the per-element errors."""
        try:
            result = self._bulk(updates)
        except BaseException:
            if self.lag:
                self._blind_write = self.clock()  # some may have been created all the same
            raise
        for made in result.get("issues") or []:
            self.wrote(str(made["key"]), str(made["id"]))
        return result

    def _bulk(self, updates: list[JiraJson]) -> JiraJson:
        try:
            response = self.send("POST", "issue/bulk", {"issueUpdates": updates})
        except JIRAError as exc:
            # all of them failed: Jira answers 400 with the same per-element body
            if exc.status_code == 400 and exc.response is not None:
                body: JiraJson = exc.response.json()
                if "errors" in body and "issues" in body:
                    return body
            raise
        result: JiraJson = response.json()
        return result

    # -- search ----------------------------------------------------------------------------

    def search_keys(
        self,
        template: str,
        keys: Sequence[str],
        fields: list[str],
        *,
        cloud: bool,
        properties: str | None,
        expand: str | None = None,
        reconcile: Sequence[str] = (),
    ) -> list[JiraJson]:
        """The issues a query naming ``keys`` finds (``template`` holds ``{keys}``).

        Jira refuses the whole query when one of the keys names an issue that no longer
        exists ("An issue with key 'POAM-9' does not exist for field 'parent'.", one message
        per key); with a lagging index a deleted issue may still be in a search's results
        while its key is refused. Such keys are dropped and the query asked again."""
        todo = list(keys)
        while todo:
            jql = template.format(keys=", ".join(todo))
            try:
                return list(
                    self.search(
                        jql,
                        fields,
                        cloud=cloud,
                        properties=properties,
                        expand=expand,
                        reconcile=reconcile,
                    )
                )
            except RemoteRejected as exc:
                gone = {k.upper() for k in _MISSING_KEY.findall(str(exc))}
                left = [k for k in todo if k.upper() not in gone]
                if not gone or len(left) == len(todo):
                    raise
                todo = left
        return []

    def search(
        self,
        jql: str,
        fields: list[str],
        *,
        cloud: bool,
        properties: str | None,
        expand: str | None = None,
        reconcile: Sequence[str] = (),
        page_size: int | None = None,
    ) -> Iterator[JiraJson]:
        """All issues matching ``jql``, page by page (each page retried on its own).

        Cloud pages ``search/jql`` by ``nextPageToken`` (at most 100 a page, or ``page_size``
        for a listing of a field or two); Data Center pages ``search`` by ``startAt``.
        """
        size = self.page_size(cloud, page_size)
        wanted = list(dict.fromkeys([*reconcile, *self._consistent(cloud)]))[:RECONCILE_MAX]
        ids = [int(i) for i in wanted] if cloud else []
        if cloud:
            token: str | None = None
            while True:
                result = self.search_page(
                    jql, fields, cloud=True, properties=properties, expand=expand,
                    size=size, token=token, reconcile=ids,
                )  # fmt: skip
                yield from result.get("issues", [])
                token = result.get("nextPageToken")
                if result.get("isLast", True) or not token:
                    return
        start = 0
        while True:
            result = self.search_page(
                jql, fields, cloud=False, properties=None, expand=expand, size=size, start=start
            )
            issues = result.get("issues", [])
            yield from issues
            start += len(issues)
            if not issues or start >= int(result.get("total", 0)):
                return

    def page_size(self, cloud: bool, page_size: int | None = None) -> int:
        """Issues a search page asks for: Cloud at most 100 (or ``page_size`` for a listing
        of a field or two), Data Center the configured size."""
        if cloud:
            return page_size if page_size is not None else min(self.settings.page_size, 100)
        return self.settings.page_size

    def search_page(
        self,
        jql: str,
        fields: list[str],
        *,
        cloud: bool,
        properties: str | None,
        size: int,
        expand: str | None = None,
        token: str | None = None,
        start: int = 0,
        reconcile: Sequence[int] = (),
    ) -> JiraJson:
        """One page of a search (retried on its own), its issues noted (:meth:`seen`): Cloud's
        ``search/jql`` from ``token``, Data Center's ``search`` from ``start``."""
        if cloud:

            def page() -> JiraJson:
                found: JiraJson = self.jira.enhanced_search_issues(
                    jql,
                    nextPageToken=token,
                    maxResults=size,
                    fields=list(fields),
                    expand=expand,
                    properties=properties,
                    reconcileIssues=list(reconcile) or None,
                    json_result=True,
                )
                return found

            result = self.call("search", page)
        else:

            def dc_page() -> JiraJson:
                # no `properties`: Data Center's search does not take them (its REST reference
                # lists expand, jql, maxResults, validateQuery, fields, startAt)
                found: JiraJson = self.jira.search_issues(
                    jql,
                    startAt=start,
                    maxResults=size,
                    fields=list(fields),
                    expand=expand,
                    json_result=True,
                )
                return found

            result = self.call("search", dc_page)
        for issue in result.get("issues", []):
            self.seen(issue)
        return result


# -- Jira's answers -------------------------------------------------------------------------


def parse_jira_time(text: str) -> datetime:
    """``2025-01-01T10:00:00.000+0000`` -> aware UTC datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(UTC)


def _error_parts(body: JiraJson) -> list[str]:
    parts = [str(m) for m in body.get("errorMessages") or []]
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    return parts


def body_text(body: object) -> str:
    """An error body (``errorMessages`` + ``errors``) as one line of text."""
    if not isinstance(body, dict):
        return str(body)
    return "; ".join(_error_parts(body)) or "no details"


def field_errors(exc: JIRAError) -> dict[str, str]:
    """The per-field ``errors`` of a Jira 400 answer (empty for anything else)."""
    if exc.status_code != 400 or exc.response is None:
        return {}
    try:
        body = exc.response.json()
    except ValueError:
        return {}
    errors = body.get("errors") if isinstance(body, dict) else None
    return {str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {}


def _jira_message(exc: JIRAError) -> str:
    """Jira's own error text (errorMessages + errors), never the request headers."""
    response = exc.response
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if isinstance(body, dict) and (parts := _error_parts(body)):
        return "; ".join(parts)
    return str(exc.text or "no details")


def _retry_after(response: requests.Response | None) -> float | None:
    """How long Jira asked us to wait: ``Retry-After``, else ``X-RateLimit-Reset`` (Cloud)."""
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


def translate(
    exc: Exception,
    *,
    connector: str,
    key: str | None,
    what: str,
    url: str = "",
    ca: Path | None = None,
) -> RemoteError:
    """A ``jira``/``requests`` error as ours (transient, unreachable, auth, rejected, gone).

    ``url`` is the site's (named in network errors); ``ca`` the CA bundle ``verify`` names.
    """
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
    if url:
        dead = unreachable(
            exc, system="Jira", url=url, connector=connector, ca_bundle=ca, ca_setting="verify"
        )
        if dead is not None:
            return dead
    at = f" at {origin(url)}" if url else ""
    return RemoteTransientError(
        f"Jira{at}: network error during {what}: {type(exc).__name__}: {describe(exc)}",
        connector=connector,
        key=key,
    )
