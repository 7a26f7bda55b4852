"""The ServiceNow connector: POA&M items as records of a table, through the Table API with pysnc.

Why pysnc: it is ServiceNow's own maintained client, pages with ``sysparm_offset`` and
``X-Total-Count``, and ``GlideRecord.update()`` PATCHes only the fields that changed. pysnow is
unmaintained since 2021, pins old dependencies, does not page, and overwrites whole records with
PUT. pysnc only accepts ``https://`` instances.

This module is the :class:`~poam_sync.connectors.base.Connector` API and the order of calls; the
parts live beside it (ServiceNow docs "Table API", "REST API rate limiting"; PySNC 1.2.1 source):

- :mod:`.settings`: the connector's configuration entry;
- :mod:`.client`: the session, typed errors, retries and paged table calls;
- :mod:`.metadata`: choice codes and column lengths, loaded by :meth:`ServiceNowConnector.prepare`
  so that :meth:`ServiceNowConnector.project` is pure;
- :mod:`.records`: rows <-> canonical values, the stamp, the watermark query;
- :mod:`.directory`, :mod:`.milestones`, :mod:`.notes`: users, milestone child records and work
  notes; :mod:`.history`: who changed each field last (``sys_audit``); :mod:`.dates`: days in
  date/time columns; :mod:`.versions`: a record's version (with its children's) and the
  listings that leave our own writes out of a pull.

A create is repeated only after :meth:`ServiceNowConnector.find_by_stamp` shows that it did not
happen, a work note only after the journal shows it is not there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime

import structlog

from poam_sync.connectors._http import RetryPolicy, with_retries
from poam_sync.connectors._inflight import DEFAULT_IN_FLIGHT
from poam_sync.connectors.base import (
    Connector,
    FieldProblem,
    MilestoneValue,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
    Uncovered,
    WriteResult,
)
from poam_sync.connectors.servicenow.answers import (
    business_rule_name,
    mandatory_labels,
    refusal_kind,
)
from poam_sync.connectors.servicenow.client import Row, TableClient, checked_sys_id, chunks
from poam_sync.connectors.servicenow.directory import UserDirectory
from poam_sync.connectors.servicenow.history import FieldHistory
from poam_sync.connectors.servicenow.inventory import list_sys_ids
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.connectors.servicenow.metadata import Metadata, load_metadata
from poam_sync.connectors.servicenow.milestones import Milestones, Written
from poam_sync.connectors.servicenow.notes import Journal
from poam_sync.connectors.servicenow.pushes import PUSH_BATCH, update_many
from poam_sync.connectors.servicenow.records import RecordCodec, watermark_query
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.connectors.servicenow.versions import moved, moved_parents
from poam_sync.errors import RemoteAuthError, RemoteError, RemoteRejected
from poam_sync.model import Note

log = structlog.get_logger(__name__)

BATCH_CHUNK = 50

#: what a stock GRC issue needs to enter a state (ServiceNowDocs issue-form.md, Version 12.0.1:
#: Analyze needs the Issue manager group or the Issue manager; Respond needs Assigned to, Issue
#: manager and Due date): groups of (column, label), one of each group filled
GRC_STATE_NEEDS: dict[str, tuple[tuple[tuple[str, str], ...], ...]] = {
    "Analyze": (
        (("issue_manager_group", "Issue manager group"), ("issue_manager", "Issue manager")),
    ),
    "Respond": (
        (("assigned_to", "Assigned to"),),
        (("issue_manager", "Issue manager"),),
        (("due_date", "Due date"),),
    ),
}


#: choices the shipped mapping leaves out on purpose, and why
LEFT_OUT_ON_PURPOSE = {
    ("priority", "5 - Planning"): "the Original Risk Rating is audited, so only you can say "
    "which risk a planning priority means",
}


class NotPreparedError(RuntimeError):
    """:meth:`ServiceNowConnector.project` was called before :meth:`~ServiceNowConnector.prepare`.

    A programming error, not a remote one: the planner must never cause I/O, so the projection
    does not load what it lacks.
    """


class ServiceNowConnector(Connector):
    """POA&M items as records of one ServiceNow table (default ``sn_grc_issue``)."""

    skips_echoes = True  # pull(since, known) leaves out records still at their version

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
        self.retry = retry or RetryPolicy(
            attempts=settings.max_attempts, max_retry_after=settings.max_retry_after_seconds
        )
        self.table = settings.table
        self.max_in_flight = settings.max_in_flight or DEFAULT_IN_FLIGHT
        self.update_batch = PUSH_BATCH  # the executor hands update_many this many pushes
        self.milestone_table = (
            mapping.milestones.table if mapping.milestones and mapping.milestones.table
            else settings.milestone_table
        )  # fmt: skip
        self._log = log.bind(connector=name, table=settings.table)
        self.client = TableClient(settings, connector=name, retry=self.retry)
        self.users = UserDirectory(self.client)
        self.codec = RecordCodec(settings, mapping, self.users, connector=name)
        self.journal = Journal(self.client, self.table)
        self.history = FieldHistory(self.client, self.table, mapping.fields)
        self.milestones = (
            Milestones(self.client, mapping, self.milestone_table) if mapping.milestones else None
        )
        self._meta: Metadata | None = None

    # -- metadata and projection -------------------------------------------------------------

    def prepare(self) -> None:
        """Load choice codes and column lengths once; later calls do nothing (``check`` reloads).

        Raises the :class:`~poam_sync.errors.RemoteError` subclass of the failure, or a
        :class:`~poam_sync.errors.ConfigError` when a mapped label is no choice of the instance.
        """
        self.client.breaker.reset()  # once per cycle: an instance skipped last cycle is tried again
        self._load_once()

    def _load_once(self) -> None:
        if self._meta is None:
            self._meta = self._load_metadata()

    def _load_metadata(self) -> Metadata:
        return load_metadata(
            self.client,
            self.mapping,
            table=self.table,
            milestone_table=self.milestone_table,
            time_zone=self.settings.time_zone,
            language=self.settings.language,
        )

    def _metadata(self) -> Metadata:
        """The metadata for reads and writes, prepared on first need (outside planning)."""
        self._load_once()
        assert self._meta is not None
        return self._meta

    def project(self, field: str, value: SyncValue) -> SyncValue:
        """Pure: the planner calls it. Text is cut to the column lengths :meth:`prepare` read."""
        if self._meta is None:
            raise NotPreparedError(
                f"connector {self.name!r}: project() needs prepare() first "
                "(it loads the choice lists and column lengths the projection uses)"
            )
        return self.mapping.project(field, value, self._meta.lengths)

    # -- reading -------------------------------------------------------------------------------

    def check(self) -> dict[str, str]:
        # Reload: ``config check`` shows what the instance says now.
        meta = self._meta = self._load_metadata()
        total = self.client.count(self.table, self.settings.query)
        states = meta.codes.get(f"{self.table}.{self.mapping.fields.get('status', 'state')}", {})
        return {
            "url": self.settings.url,
            "auth": self.settings.auth_description,
            "table": self.table,
            "records_in_scope": str(total),
            "state_choices": ", ".join(f"{label}={code}" for label, code in states.items()),
            "milestone_table": self.milestone_table if self.mapping.milestones else "(not synced)",
            "time_zone": f"{meta.zone.key} ({meta.zone_source})",
            "cannot_read": ", ".join(self._unreadable(meta))
            or "(none: every system table is readable)",
        }

    def _unreadable(self, meta: Metadata) -> list[str]:
        """The system tables the integration user may not read (journal and audit probed)."""
        lost = list(meta.unreadable)
        if not self.journal.probe():
            lost.append("sys_journal_field")
        if not self.history.probe():
            lost.append("sys_audit")
        return lost

    def uncovered(self) -> list[Uncovered]:
        """The state and priority choices of the instance (read again, through inheritance)
        that the mapping reads as no status or risk, each with the line that would cover it.
        ``5 - Planning`` is reported as left out on purpose: the shipped mapping leaves it
        unmapped because the Original Risk Rating is audited (see :data:`LEFT_OUT_ON_PURPOSE`).
        Raises :class:`~poam_sync.errors.RemoteAuthError` when ``sys_choice`` cannot be read
        (a least-privilege user): there is nothing to compare."""
        meta = self._meta = self._load_metadata()
        if meta.choices_unreadable:
            raise RemoteAuthError(
                "the integration user may not read sys_choice, so the instance's states and "
                "priorities cannot be listed",
                connector=self.name,
                status=403,
                hint="give the integration user a role that may read sys_choice (values the "
                "mapping does not list are still reported on the records that hold them)",
            )
        m, out = self.mapping, []
        where = f"the ServiceNow mapping of connector {self.name!r}"
        if "status" in m.fields:
            for label in meta.codes.get(f"{self.table}.{m.fields['status']}", {}):
                if m.status_from_label(label) is None:
                    out.append(
                        Uncovered(
                            "state",
                            label,
                            f"add `{label}: <status>` under state_read_back: in {where}",
                        )
                    )
        if "original_risk" in m.fields:
            for label in meta.codes.get(f"{self.table}.{m.fields['original_risk']}", {}):
                if m.risk_from_label(label) is None:
                    why = LEFT_OUT_ON_PURPOSE.get(("priority", label))
                    hint = f"add `{label}: <risk>` under risk_read_back: in {where}"
                    out.append(
                        Uncovered(
                            "priority",
                            label,
                            f"{why}; to cover it, {hint}" if why else hint,
                            deliberate=why is not None,
                        )
                    )
        return out

    def _records(self, rows: Sequence[Row], since: str | None = None) -> list[RemoteRecord]:
        """Records for a page of rows: milestones, notes and (with ``since``, a pull's
        ``sys_created_on>=`` bound) field histories fetched for the page at once."""
        meta = self._metadata()
        ids = [r["sys_id"][0] for r in rows]
        children = self.milestones.read_tagged(ids, meta) if self.milestones else None
        notes = self.journal.read(ids)
        history = self.history.read(rows, since)
        out: list[RemoteRecord] = []
        for row in rows:
            sys_id = row["sys_id"][0]
            milestones: list[MilestoneValue] | None = None
            tag: str | None = None
            if children is not None:  # every parent asked has an entry, maybe empty
                milestones, tag = children[sys_id]
            out.append(
                self.codec.record(
                    row, meta, milestones, notes.get(sys_id, []), history.get(sys_id), tag=tag
                )
            )
        return out

    def pull(
        self, since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        """Records in scope updated since ``since``, and the parents of milestones changed
        since. With ``known`` (sys_id -> the version we hold) the window is listed with
        ``sysparm_fields=sys_id,sys_mod_count`` first, its changed milestones with their
        parent, sys_id and count, and only records whose version moved (or whose children's
        did) are read whole (:mod:`.versions`)."""
        self._load_once()  # before the first page: planning after the pull projects, without I/O
        scope = self.settings.query or ""
        changed = watermark_query(since) if since is not None else ""
        query = "^".join(filter(None, [scope, changed]))
        seen: set[tuple[str, str]] = set()
        fields = self.codec.columns()
        size = self.settings.page_size

        audits = changed.replace("sys_updated_on", "sys_created_on", 1) if changed else None

        def fresh(rows: Sequence[Row]) -> Iterator[RemoteRecord]:
            for record in self._records(rows, audits):
                if (record.remote_id, record.version) not in seen:
                    seen.add((record.remote_id, record.version))
                    yield record

        if known:
            listed = moved(self.client, self.table, query, known)
            self._log.info("servicenow.listed", moved=len(listed))
            for chunk in chunks(listed, size):
                in_scope = "^".join(filter(None, [scope, f"sys_idIN{','.join(chunk)}"]))
                yield from fresh(list(self.client.select(self.table, fields, in_scope)))
        else:
            for rows in self.client.pages(self.table, fields, query, size=size):
                yield from fresh(rows)
        # A milestone edited in ServiceNow does not touch its parent's sys_updated_on: pull
        # the parents of milestones changed since the watermark too.
        if since is not None and self.milestones is not None:
            parents = moved_parents(
                self.client,
                self.milestone_table,
                self.milestones.ms.parent_field,
                changed,
                known,
            )
            parents -= {sys_id for sys_id, _ in seen}
            parents.discard("")
            for chunk in chunks(sorted(parents), size):
                in_scope = "^".join(filter(None, [scope, f"sys_idIN{','.join(chunk)}"]))
                yield from fresh(list(self.client.select(self.table, fields, in_scope)))
        self._log.info(
            "servicenow.pulled",
            since=since.isoformat() if since else None,
            records=len(seen),
            field_actors=self.history.source,  # sys_audit, or the record's sys_updated_by
        )

    def get(self, remote_id: str) -> RemoteRecord:
        remote_id = checked_sys_id(remote_id, connector=self.name)
        row = self.client.get(self.table, remote_id, self.codec.columns())
        return self._records([row])[0]

    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        column = self.settings.stamp_field
        if self.settings.stamp_display_field:
            query = f"{column}={stamp.token}"
        else:
            query = f"{column}STARTSWITH{stamp.token} "
        # An instance ignores a query term naming an unknown column and returns everything:
        # keep only rows that really carry the stamp.
        page = self.client.page(self.table, self.codec.columns(), query, after=None, size=10)
        rows = [r for r in page if self.codec.stamp(r) == stamp]
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

    # -- creating ------------------------------------------------------------------------------

    def create(self, stamp: Stamp, fields: SyncValues) -> WriteResult:
        return self._create(stamp, fields, checked=False)

    def _create(
        self,
        stamp: Stamp,
        fields: SyncValues,
        *,
        checked: bool,
        refused: RemoteRejected | None = None,
    ) -> WriteResult:
        """POST once; before any repeat, look the stamp up (the POST may have gone through)."""
        must_check = checked

        def attempt() -> WriteResult:
            nonlocal must_check
            if must_check:
                found = self.find_by_stamp(stamp)
                if found is not None:
                    self._log.info("servicenow.create_found", sys_id=found.remote_id)
                    if self.milestones is not None:
                        self._write_milestones(found.remote_id, fields)
                    return WriteResult(self.get(found.remote_id))
            must_check = True
            return self.client.guarded(
                lambda: self._create_once(stamp, fields, refused), what="create"
            )

        return with_retries(attempt, self.retry, what="create", breaker=self.client.breaker)

    def _create_once(
        self, stamp: Stamp, fields: SyncValues, refused: RemoteRejected | None = None
    ) -> WriteResult:
        """One insert; ``refused``: the instance already refused this record's state (a
        batched insert answered 403, which stored nothing), so it is not sent again."""
        values, problems = self.codec.values(fields, self._metadata())
        stamped = {**values, **self.codec.stamp_values(stamp)}
        state = self.mapping.fields.get("status")
        try:
            if refused is not None:
                raise refused
            row = self.client.insert(self.table, stamped)
        except RemoteRejected as exc:
            if exc.status != 403 or state not in values:
                raise
            # Created in its default state, the refused one reported (nothing was stored:
            # the instance refuses the whole insert).
            problems.append(self._blocked_state(exc, fields, values, None))
            row = self.client.insert(self.table, {k: v for k, v in stamped.items() if k != state})
        result = self._after_create(row, fields, problems)
        self._log.info("servicenow.created", sys_id=row["sys_id"][0], count=1)
        return result

    def _blocked_state(
        self,
        exc: RemoteRejected,
        changes: SyncValues,
        values: Mapping[str, str],
        remote_id: str | None,
    ) -> FieldProblem:
        """The ``transition_blocked`` problem of a refused state: which state, refused by
        what, and the fields it needs that the record lacks."""
        state_column = self.mapping.fields["status"]
        meta = self._metadata()
        code = values[state_column]
        label = meta.label(self.table, state_column, code) or code
        status = changes.get("status")
        missing = self._missing_for_state(exc.message, label, values, remote_id)
        kind = refusal_kind(exc.message)
        by = {
            "data_policy": "a data policy",
            "business_rule": f"business rule {business_rule_name(exc.message) or '(unnamed)'!r}",
        }.get(kind, "the instance")
        needs = f"; it needs {', '.join(missing)}, which the record lacks" if missing else ""
        return FieldProblem(
            "status",
            "transition_blocked",
            f"ServiceNow refused state {label!r} (status {status}) on {self.table}: {by} "
            f"refused it{needs}; the other fields were written ({exc.message})",
            hint=(
                f"fill {', '.join(missing)} on the record in ServiceNow"
                if missing
                else "see what the instance requires for this state"
            )
            + "; poam-sync does not sync those fields and writes the state again when the "
            "item's status changes",
        )

    def _missing_for_state(
        self, text: str, label: str, values: Mapping[str, str], remote_id: str | None
    ) -> list[str]:
        """The fields a refused state needs: as a data policy names them, else the GRC issue's
        documented rules (issue-form.md) checked against the record."""
        named = mandatory_labels(text)
        if named:
            return named
        groups = GRC_STATE_NEEDS.get(label, ()) if self.table == "sn_grc_issue" else ()
        if not groups:
            return []
        columns = sorted({c for g in groups for c, _ in g})
        current: dict[str, str] = dict.fromkeys(columns, "")
        if remote_id is not None:
            try:
                row = self.client.get(self.table, remote_id, columns)
                current.update({c: row.get(c, ("", ""))[0] for c in columns})
            except RemoteError:
                return []  # the refusal's own text says enough
        current.update({c: v for c, v in values.items() if c in current})
        return [
            " or ".join(name for _, name in g) for g in groups if not any(current[c] for c, _ in g)
        ]

    def _write_labels(
        self, sys_id: str, changes: SyncValues, problems: list[FieldProblem]
    ) -> Row | None:
        """The choice columns whose codes cannot be read (``sys_choice`` unreadable), written
        by their labels; their codes are learnt from the answer. A refused state is reported
        as on any write. Returns the record as the answer showed it, or None."""
        meta = self._metadata()
        labels = self.codec.display_values(changes, meta)
        if not labels:
            return None
        row = self._patch_or_without_state(
            self.client.patch_display_values, sys_id, labels, changes, problems
        )
        if row is None:
            return None
        for column in labels:
            code, shown = row.get(column, ("", ""))
            meta.learn(self.table, column, code, shown)
        return row

    def _patch_or_without_state(
        self,
        patch: Callable[[str, str, Mapping[str, str]], Row],
        sys_id: str,
        values: Mapping[str, str],
        changes: SyncValues,
        problems: list[FieldProblem],
    ) -> Row | None:
        """PATCH ``values``; when the state is refused (a data policy, a business rule), write
        the rest and report the state with what it lacks. None when nothing else was left."""
        try:
            return patch(self.table, sys_id, values)
        except RemoteRejected as exc:
            state = self.mapping.fields.get("status")
            if exc.status != 403 or state not in values:
                raise
            problems.append(self._blocked_state(exc, changes, values, sys_id))
            rest = {k: v for k, v in values.items() if k != state}
            return patch(self.table, sys_id, rest) if rest else None

    def _after_create(
        self,
        row: Row,
        fields: SyncValues,
        problems: list[FieldProblem],
        milestones: list[MilestoneValue] | None = None,
        tag: str | None = None,
    ) -> WriteResult:
        """What follows a create: choice labels, then the milestones (unless ``milestones``
        says they were written already; ``tag``: then their tag, part of the version)."""
        sys_id = row["sys_id"][0]
        shown = self._write_labels(sys_id, fields, problems)
        if shown is not None:
            row = {**row, **{k: v for k, v in shown.items() if k in row}}
        if self.milestones is not None and milestones is None:
            # A record just created has no children: no need to read them, on the first try.
            milestones = self._write_milestones(sys_id, fields, fresh=True)
        # one line a record at debug; a batch says how many at info, as Jira's does
        self._log.debug("servicenow.created", sys_id=sys_id, number=row.get("number", ("", ""))[0])
        record = self.codec.record(row, self._metadata(), milestones, tag=tag)
        return WriteResult(record, tuple(problems))

    def _write_milestones(
        self, sys_id: str, fields: SyncValues, *, fresh: bool = False
    ) -> list[MilestoneValue]:
        """Write the milestones of ``fields`` under the retry policy (it is idempotent)."""
        assert self.milestones is not None
        ms, wanted, first = self.milestones, fields.get("milestones") or [], [fresh]

        def write() -> list[MilestoneValue]:
            fresh_now, first[0] = first[0], False  # a repeat reads what the first try left
            return ms.write(sys_id, wanted, self._metadata(), fresh=fresh_now)[0]

        return self.client.call(write, what="milestones")

    def create_many(
        self, batch: Sequence[tuple[Stamp, SyncValues]]
    ) -> list[WriteResult | Exception]:
        """Creates through the Batch API, 50 per request; per-item errors in place."""
        results: list[WriteResult | Exception | None] = [None] * len(batch)
        for start in range(0, len(batch), BATCH_CHUNK):
            self._create_chunk(batch, range(start, min(len(batch), start + BATCH_CHUNK)), results)
        return [r if r is not None else RuntimeError("not created") for r in results]

    def _create_chunk(
        self,
        batch: Sequence[tuple[Stamp, SyncValues]],
        indexes: range,
        results: list[WriteResult | Exception | None],
    ) -> None:
        prepared: dict[int, tuple[dict[str, str], list[FieldProblem]]] = {}
        for i in indexes:
            stamp, fields = batch[i]
            try:
                values, problems = self.codec.values(fields, self._metadata())
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results[i] = exc
                continue
            prepared[i] = ({**values, **self.codec.stamp_values(stamp)}, problems)
        answers = self.client.insert_batch(self.table, [v for v, _ in prepared.values()])
        children = self._children_of_new(batch, prepared, answers)
        for (i, (_, problems)), answer in zip(prepared.items(), answers, strict=True):
            stamp, fields = batch[i]
            state = self.mapping.fields.get("status")
            refused = (
                answer
                if isinstance(answer, RemoteRejected)
                and answer.status == 403
                and state in prepared[i][0]
                else None
            )
            if isinstance(answer, RemoteError) and refused is None:
                results[i] = answer
                continue
            try:
                if refused is not None:  # nothing stored: created alone, without the state
                    results[i] = self._create(stamp, fields, checked=False, refused=refused)
                elif isinstance(answer, dict):
                    sys_id = answer["sys_id"][0]
                    written = children.get(sys_id)
                    if written is not None:
                        results[i] = self._after_create(answer, fields, problems, *written)
                        continue
                    ms = None
                    if sys_id in children:  # not known: read, then write
                        ms = self._write_milestones(sys_id, fields)
                    results[i] = self._after_create(answer, fields, problems, ms)
                else:  # may or may not exist: looked up by stamp, then created
                    results[i] = self._create(stamp, fields, checked=True)
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results[i] = exc
        made = sum(isinstance(results[i], WriteResult) for i in indexes)
        self._log.info("servicenow.created", count=made, failed=len(indexes) - made)

    def _children_of_new(
        self,
        batch: Sequence[tuple[Stamp, SyncValues]],
        prepared: Mapping[int, object],
        answers: Sequence[Row | RemoteError | None],
    ) -> dict[str, Written | None]:
        """The milestone records of the records a batch just created, in Batch API requests of
        their own (:meth:`.Milestones.insert_fresh`); by parent sys_id, what was written and
        its tag, or None where a parent's children are to be written again."""
        if self.milestones is None:
            return {}
        parents = [
            (answer["sys_id"][0], batch[i][1].get("milestones") or [])
            for i, answer in zip(prepared, answers, strict=True)
            if isinstance(answer, dict)
        ]
        if not parents:
            return {}
        return self.milestones.insert_fresh(parents, self._metadata(), size=BATCH_CHUNK)

    # -- updating ------------------------------------------------------------------------------

    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        remote_id = checked_sys_id(remote_id, connector=self.name)
        # PATCHing field values and upserting milestones are idempotent: safe to repeat.
        return self.client.call(lambda: self._update_once(remote_id, changes), what="update")

    def _update_once(self, remote_id: str, changes: SyncValues) -> WriteResult:
        meta = self._metadata()
        values, problems = self.codec.values(changes, meta)
        row: Row | None = None
        if values:
            row = self._patch_or_without_state(
                self.client.patch, remote_id, values, changes, problems
            )
        shown = self._write_labels(remote_id, changes, problems)
        if shown is not None:
            row = shown if row is None else {**row, **{k: v for k, v in shown.items() if k in row}}
        milestones: list[MilestoneValue] | None = None
        if "milestones" in changes and self.milestones is not None:
            milestones, found = self.milestones.write(
                remote_id, changes.get("milestones") or [], meta
            )
            problems += found  # duplicates: reported, never deleted
        for p in problems:
            self._log.warning(
                "servicenow.field_problem", sys_id=remote_id, field=p.field, code=p.code
            )
        if row is None or "sys_mod_count" not in row:
            # read after every write, its journal after its row: whole (when the journal
            # can be read), so the version may be remembered (sync/echoes.py)
            return WriteResult(self.get(remote_id), tuple(problems), whole=self.journal.readable)
        if milestones is None and self.milestones is not None:
            milestones = self.milestones.read([remote_id], meta)[remote_id]
        return WriteResult(self.codec.record(row, meta, milestones), tuple(problems))

    def update_many(self, batch: Sequence[tuple[str, SyncValues]]) -> list[WriteResult | Exception]:
        """Pushes through the Batch API, 50 PATCHes a request (:mod:`.pushes`)."""
        return update_many(self, batch)

    def add_note(self, remote_id: str, note: Note) -> None:
        self.journal.add(checked_sys_id(remote_id, connector=self.name), note)

    def list_remote_ids(self) -> list[str]:
        """Every sys_id in scope, ``sysparm_fields=sys_id`` (:mod:`.inventory`), for the
        reconcile."""
        return list_sys_ids(self.client, self.table, self.settings.query)

    def close(self) -> None:
        self.client.close()
