"""The Jira connector (Cloud and Data Center): the engine's contract, composed from small parts.

:class:`JiraConnector` implements :class:`~poam_sync.connectors.base.Connector` (pull, get, find
by stamp, create, update, notes) and leaves each Jira specific to the module that owns it:

- :mod:`~poam_sync.connectors.jira.client`: the ``jira.JIRA`` client, retries, errors, searches
  (Cloud ``search/jql`` with ``nextPageToken``, Data Center ``search`` with ``startAt``);
- :mod:`~poam_sync.connectors.jira.site`: deployment, project and field ids, loaded once;
- :mod:`~poam_sync.connectors.jira.records`: issue JSON -> canonical records;
- :mod:`~poam_sync.connectors.jira.edits`: canonical values -> edits, refused fields reported;
- :mod:`~poam_sync.connectors.jira.workflow`: status changes through planned transitions;
- :mod:`~poam_sync.connectors.jira.milestones`: milestones as sub-tasks;
- :mod:`~poam_sync.connectors.jira.directory`: owners' e-mails <-> Jira users;
- :mod:`~poam_sync.connectors.jira.coverage`: the site's values the mapping does not cover.

JQL dates have minute granularity in the sync user's time zone, so pulls apply an overlap and
de-duplicate.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta

import structlog

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors._inflight import DEFAULT_IN_FLIGHT
from poam_sync.connectors.base import (
    Connector,
    FieldProblem,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
    Uncovered,
    WriteResult,
    as_text,
    mark_note,
)
from poam_sync.connectors.jira.client import (
    BULK_SIZE,
    RECONCILE_MAX,
    JiraClient,
    JiraJson,
    body_text,
    parse_jira_time,
)
from poam_sync.connectors.jira.coverage import uncovered
from poam_sync.connectors.jira.directory import JiraDirectory
from poam_sync.connectors.jira.edits import JiraEditor
from poam_sync.connectors.jira.inventory import list_issue_ids
from poam_sync.connectors.jira.listing import list_versions
from poam_sync.connectors.jira.mapping import JiraMapping, single_line
from poam_sync.connectors.jira.milestones import JiraMilestones
from poam_sync.connectors.jira.records import STAMP_LABEL_PREFIX, JiraReader
from poam_sync.connectors.jira.settings import JiraSettings
from poam_sync.connectors.jira.site import JiraSite
from poam_sync.connectors.jira.workflow import JiraWorkflow
from poam_sync.errors import RecordGone, RemoteError, RemoteRejected
from poam_sync.model import Note, Status

__all__ = ["JiraConnector"]

log = structlog.get_logger(__name__)

# pulled issues per batch (per sub-task lookup)
_FETCH_SIZE = 100


class JiraConnector(Connector):
    """The Jira side of poam-sync (see the module docstring)."""

    skips_echoes = True  # pull(since, known) leaves out records still at their version
    wants_keys = True  # a big window is listed in key ranges bounded by the links' keys

    def __init__(
        self,
        settings: JiraSettings,
        mapping: JiraMapping,
        *,
        name: str = "jira",
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.name = name
        self.settings = settings
        self.mapping = mapping
        self.synced_fields = mapping.synced_fields
        self.max_in_flight = settings.max_in_flight or DEFAULT_IN_FLIGHT
        self.log = log.bind(connector=name, url=settings.url, project=settings.project_key)
        retry = retry or RetryPolicy(
            attempts=settings.max_attempts, max_retry_after=settings.max_retry_after_seconds
        )
        self.client = JiraClient(settings, connector=name, retry=retry, clock=clock, sleep=sleep)
        # every write of an earlier process was made before this moment; this connector's own
        # writes are tracked by the client (reconciled, or waited for)
        self._started = clock()
        self._caught_up = False
        #: reads issue id -> key of the linked issues (hold_keys), when a listing needs them
        self._keys: Callable[[], Mapping[str, str]] = dict
        self.site = JiraSite(self.client, mapping, self.synced_fields, self.log)
        self.directory = JiraDirectory(self.client, self.site, mapping)
        self.editor = JiraEditor(self.client, self.site, mapping, self.directory)
        self.workflow = JiraWorkflow(self.client, self.site, mapping, self.log)
        self.milestones = JiraMilestones(
            self.client, self.site, mapping, self.editor, self.workflow
        )
        self.reader = JiraReader(
            self.site, mapping, self.directory, self.milestones, connector=name, url=settings.url
        )

    # -- life cycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the site's ids and field ids now, so a cycle's first write does not pay for
        them. :meth:`project` needs nothing from Jira: the mapping alone says what survives.

        Called once per cycle by the engine: a site skipped in the last cycle (its circuit
        breaker open) is tried again now."""
        self.client.breaker.reset()
        self.site.load()

    def check(self) -> dict[str, str]:
        info = self.client.call("serverInfo", lambda: self.client.jira.server_info())
        meta, ids = self.site.meta, self.site.ids
        return {
            "url": self.settings.url,
            "deployment": str(info.get("deploymentType")),
            "version": str(info.get("version")),
            "project": self.settings.project_key,
            "time_zone": str(meta.time_zone),
            "fields": ", ".join(f"{c}={f}" for c, f in sorted(ids.by_canonical.items())),
        }

    def close(self) -> None:
        self.client.close()

    def uncovered(self) -> Sequence[Uncovered]:
        """The project's statuses (of the mapped issue types) and the site's priorities that
        the mapping does not cover (:mod:`.coverage`), for ``config check``."""
        return uncovered(self.client, self.mapping, self.synced_fields)

    def list_remote_ids(self) -> list[str]:
        """Every issue id of the project, ids only (:mod:`.inventory`), for the reconcile."""
        return list_issue_ids(self.client, self.site, self.settings.project_key)

    def project(self, field: str, value: SyncValue) -> SyncValue:
        """Pure: the mapping's projection (owners compare as lower-case e-mails)."""
        if field == "owner" and isinstance(value, str):
            return value.lower()
        return self.mapping.project(field, value)

    # -- reading ---------------------------------------------------------------------------

    def _search(
        self, jql: str, *, expand: str | None = "changelog", reconcile: Sequence[str] = ()
    ) -> Iterator[JiraJson]:
        return self.client.search(
            jql,
            self.reader.fields(),
            cloud=self.site.meta.cloud,
            properties=self.mapping.stamp.property,
            expand=expand,
            reconcile=reconcile,
        )

    def _records(self, raws: Sequence[JiraJson]) -> list[RemoteRecord]:
        gone = self._read_stamps(raws)
        raws = [r for r in raws if str(r["key"]) not in gone]
        self._complete_changelogs(raws)
        subs = self.milestones.subtasks_of(raws)
        return [self.reader.record(r, subs.get(str(r["id"]), [])) for r in raws]

    def _complete_changelogs(self, raws: Sequence[JiraJson]) -> None:
        """Cloud expands only an issue's newest 100 changelog histories: for a busier issue,
        read the whole history (paged), so that each field's own last change is known."""
        for raw in raws:
            changelog = raw.get("changelog")
            if not self.site.meta.cloud or not isinstance(changelog, dict):
                continue
            if int(changelog.get("total") or 0) > len(changelog.get("histories") or []):
                key = str(raw["key"])
                changelog["histories"] = self.client.changelog(key)

    def _read_stamps(self, raws: Sequence[JiraJson]) -> set[str]:
        """Data Center's search returns no issue properties: read the stamp property of each
        issue that carries a stamp label through the issue-property API. Returns the keys of
        issues that turned out deleted (a lagging index still lists them)."""
        gone: set[str] = set()
        prop = self.mapping.stamp.property
        for raw in raws:
            if prop in (raw.get("properties") or {}):
                continue
            labels = raw["fields"].get("labels") or []
            if self.site.meta.cloud or not any(
                str(lb).startswith(STAMP_LABEL_PREFIX) for lb in labels
            ):
                continue
            key = str(raw["key"])
            try:
                value = self.client.call(
                    "read stamp", functools.partial(self.client.issue_property, key, prop), key=key
                )
            except RecordGone:
                gone.add(key)
                continue
            if value is not None:
                raw["properties"] = {**(raw.get("properties") or {}), prop: value}
        return gone

    def _read_whole(self, keys: list[str], *, reconcile: Sequence[str] = ()) -> list[RemoteRecord]:
        """These issues read whole (every synced field, the changelog, our stamp), by key;
        ``reconcile``: their ids, for Cloud's read-after-write (``reconcileIssues``)."""
        raws = self.client.search_keys(
            "issuekey in ({keys}) ORDER BY key ASC",
            keys,
            self.reader.fields(),
            cloud=self.site.meta.cloud,
            properties=self.mapping.stamp.property,
            expand="changelog",
            reconcile=reconcile,
        )
        return self._records(raws)

    def _fetch(self, keys: Sequence[str]) -> list[RemoteRecord]:
        """What we just wrote, read back so that a lagging search cannot hide it: Cloud names
        the issues in ``reconcileIssues``; an issue the search still misses is read by key."""
        found: list[RemoteRecord] = []
        for n in range(0, len(keys), RECONCILE_MAX):
            chunk = list(keys[n : n + RECONCILE_MAX])
            ids = [i for k in chunk if (i := self.client.id_of(k)) is not None]
            found += self._read_whole(chunk, reconcile=ids)
        missing = [k for k in keys if k not in {r.key for r in found}]
        for key in missing:
            try:
                found.append(self.get(key))
            except RecordGone:
                continue  # gone by key too: really gone
        return found

    def pull(
        self, since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        """Issues in scope updated since ``since`` less the overlap and the search lag (a
        change the index showed late is still inside the next pull's window).

        With ``known`` (issue id -> the ``updated`` we hold), the window is listed with
        ``fields=updated`` first and only issues whose ``updated`` moved are read whole
        (:meth:`_pull_moved`)."""
        self._catch_up()
        s = self.settings
        jql = f'project = "{s.project_key}" AND issuetype = "{self.mapping.issue_type}"'
        if s.jql:
            jql += f" AND ({s.jql})"
        if since is not None:
            bound = since.astimezone(self.site.meta.time_zone) - timedelta(
                minutes=s.overlap_minutes, seconds=s.search_lag_seconds
            )
            jql += f' AND updated >= "{bound.strftime("%Y/%m/%d %H:%M")}"'  # floors to the minute
        if known:
            yield from self._pull_moved(jql, known)
            return
        jql += " ORDER BY key ASC"
        seen: set[tuple[str, str]] = set()
        batch: list[JiraJson] = []
        for raw in self._search(jql):
            ident = (str(raw["id"]), str(raw["fields"]["updated"]))
            if ident in seen:
                continue
            seen.add(ident)
            batch.append(raw)
            if len(batch) >= _FETCH_SIZE:
                yield from self._records(batch)
                batch = []
        if batch:
            yield from self._records(batch)

    def _pull_moved(self, where: str, known: Mapping[str, str]) -> Iterator[RemoteRecord]:
        """The issues ``where`` finds whose ``updated`` is not the one in ``known``, listed
        with ``fields=updated`` (:mod:`.listing`: a big window in key ranges at once).

        ``updated`` carries milliseconds, so a person's edit right after ours is a new
        version; an ``updated`` older than the one we hold is a lagging index (we read our
        write back from the issue itself) and is left out too: the change that follows ours
        is in a later window."""
        moved: list[str] = []
        listed = 0
        listing = list_versions(
            self.client,
            where,
            cloud=self.site.meta.cloud,
            project=self.settings.project_key,
            keys=lambda: {*self._keys().values(), *self.client.keys_seen()},
            shards=self.max_in_flight,
        )
        for raw in listing:
            listed += 1
            issue_id, updated = str(raw["id"]), str(raw["fields"]["updated"])
            held = known.get(issue_id)
            if held is not None and (held == updated or _older(updated, held)):
                continue  # an echo of what we hold
            moved.append(str(raw["key"]))
        for n in range(0, len(moved), _FETCH_SIZE):
            chunk = moved[n : n + _FETCH_SIZE]
            yield from self._read_whole(chunk)
        self.log.info("jira.pulled", listed=listed, read=len(moved))

    def hold_keys(self, keys: Callable[[], Mapping[str, str]]) -> None:
        self._keys = keys

    def get(self, remote_id: str) -> RemoteRecord:
        raw, subs = self._get_full(remote_id)
        return self.reader.record(raw, subs)

    def _get_full(self, remote_id: str) -> tuple[JiraJson, list[JiraJson]]:
        params = {
            "fields": ",".join(self.reader.fields()),
            "expand": "changelog",
            "properties": self.mapping.stamp.property,
        }
        raw = self.client.call(
            "get issue", lambda: self.client.get_issue(remote_id, params), key=remote_id
        )
        self._complete_changelogs([raw])
        return raw, self.milestones.subtasks_of([raw]).get(str(raw["id"]), [])

    def _catch_up(self) -> None:
        """Before the first search that must see everything (a pull, a stamp lookup): wait
        until ``search_lag_seconds`` have passed since this connector was built, so that the
        index holds every write of an earlier process (one that crashed right after a create
        included). Once per connector: its own writes are tracked by the client."""
        if not self._caught_up:
            self.client.wait_for_index(self._started)
            self._caught_up = True

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        """The issue carrying ``stamp``, found by a search that cannot miss it for lagging
        (:meth:`_catch_up`; a create of this connector whose answer was lost is waited for by
        the client). On Data Center the candidates' stamp properties are read one by one (its
        search returns none)."""
        self._catch_up()
        jql = f'project = "{self.settings.project_key}"'
        if self.mapping.stamp.label:
            jql += f' AND labels = "{stamp.token}"'
        else:
            jql += f' AND "{self.mapping.stamp.field}" ~ "{_jql_escape(stamp.poam_id)}"'
        for record in self._records(list(self._search(jql))):
            if record.stamp == stamp:
                return record
        return None

    # -- creating --------------------------------------------------------------------------

    def create(self, stamp: Stamp, fields: SyncValues) -> WriteResult:
        result = self.create_many([(stamp, fields)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def create_many(
        self, batch: Sequence[tuple[Stamp, SyncValues]]
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
        self, stamp: Stamp, values: SyncValues, problems: list[FieldProblem]
    ) -> JiraJson:
        meta, ids, ms = self.site.meta, self.site.ids, self.mapping.stamp
        fields: JiraJson = {
            "project": {"id": meta.project_id},
            "issuetype": {"id": meta.issue_type_id},
            "summary": single_line(as_text(values.get("title"), "title") or stamp.poam_id)
            or stamp.poam_id,
        }
        plain = {k: v for k, v in values.items() if k in ids.by_canonical and k != "title"}
        fields |= self.editor.edit_values(plain, problems)
        if "title" in ids.by_canonical and ids.by_canonical["title"] != "summary":
            fields |= self.editor.edit_values({"title": values.get("title")}, problems)
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
        self, chunk: Sequence[tuple[Stamp, SyncValues]]
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
                    found = self.find_by_stamp(chunk[i][0])
                    if found:
                        keys[i] = found.key
                todo = [i for i, k in enumerate(keys) if not isinstance(k, str)]
            for _round in range(2):
                if not todo:
                    return
                response = self.client.bulk([bodies[i] for i in todo])
                created = iter(response.get("issues", []))
                failed = {e["failedElementNumber"]: e for e in response.get("errors", [])}
                again = []
                for pos, i in enumerate(todo):
                    if pos not in failed:
                        keys[i] = next(created)["key"]
                        continue
                    body = failed[pos].get("elementErrors", {})
                    if _round == 0 and self.editor.strip_refused(bodies[i], body, problems[i]):
                        again.append(i)  # the rest of the item is fine: create it without
                        continue
                    keys[i] = RemoteRejected(
                        f"Jira refused to create {chunk[i][0].poam_id}: {body_text(body)}",
                        connector=self.name,
                        status=failed[pos].get("status"),
                    )
                todo = again

        self.client.call("create issues", attempt)
        made = [(i, k) for i, k in enumerate(keys) if isinstance(k, str)]
        if "milestones" in self.synced_fields:
            # every new issue's sub-tasks in bulk calls of their own, 50 at a time
            parents = [
                (k, chunk[i][1]["milestones"]) for i, k in made if chunk[i][1].get("milestones")
            ]
            children = self.milestones.create_fresh(parents) if parents else {}
            for i, key in made:
                problems[i] += children.get(key, [])
        for i, key in made:
            values = chunk[i][1]
            wanted = values.get("status")
            if "status" in self.synced_fields and wanted and wanted != Status.OPEN.value:
                problem = self.workflow.move_to(
                    key, self.mapping.statuses[Status(as_text(wanted, "status"))]
                )
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

    # -- updating --------------------------------------------------------------------------

    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        changes = {k: v for k, v in changes.items() if k in self.synced_fields}
        problems: list[FieldProblem] = []
        raw, subs = self._get_full(remote_id)
        current = self.reader.record(raw, subs)
        edit = self.editor.edit_values(
            {
                k: v
                for k, v in changes.items()
                if k in self.site.ids.by_canonical and self.project(k, v) != current.fields.get(k)
            },
            problems,
        )
        if "labels" in edit:  # a field mapped to the labels must not wash our stamp away
            stamps = [
                lb for lb in raw["fields"].get("labels") or [] if lb.startswith(STAMP_LABEL_PREFIX)
            ]
            edit["labels"] = [*edit["labels"], *stamps]
        if edit:
            problems += self.editor.put_fields(current.key, edit)
        if "milestones" in changes:
            problems += self.milestones.sync(current.key, changes["milestones"], subs)
        wanted = changes.get("status")
        if wanted is not None and current.fields.get("status") != self.project("status", wanted):
            problem = self.workflow.move_to(
                current.key, self.mapping.statuses[Status(as_text(wanted, "status"))]
            )
            if problem:
                problems.append(problem)
        # Read after the last write (a transition after the edit moves `updated` again), with
        # the comments: the version names this whole state. (The edit's own answer with
        # returnIssue=true holds "the issue with fields edited in this request", Atlassian's
        # OpenAPI for PUT /rest/api/3/issue/{issueIdOrKey}: not the comments, and not what a
        # transition did after it; docs/jira.md.)
        record = self.get(remote_id)
        self.log.info(
            "jira.updated", key=record.key, fields=sorted(changes), problems=len(problems)
        )
        return WriteResult(record, tuple(problems), whole=True)

    # -- notes -----------------------------------------------------------------------------

    def add_note(self, remote_id: str, note: Note) -> None:
        body = mark_note(note)
        marker = body.partition("\n")[0]

        def post() -> None:
            # idempotent: a retry (or a re-run after a crash) never posts the note twice; every
            # page is read (Cloud gives 100 comments a page at most)
            comments = self.client.comments(remote_id, retried=False)
            if any(str(c.get("body", "")).startswith(marker) for c in comments):
                return
            self.client.jira.add_comment(remote_id, body)

        self.client.call("add comment", post, key=remote_id)


def _older(updated: str, held: str) -> bool:
    """Whether Jira time ``updated`` is before ``held`` (False when either does not parse)."""
    try:
        return parse_jira_time(updated) < parse_jira_time(held)
    except ValueError:
        return False


def _jql_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
