"""Rows <-> canonical values: how one ServiceNow record reads as a :class:`RemoteRecord`, and
which column values canonical changes become.

- ``sys_updated_on`` is UTC to the second (the Table API sends raw values in UTC):
  :func:`watermark_query` asks for one second before the watermark, and the connector
  de-duplicates on ``sys_id`` + ``sys_mod_count``.
- State and priority are written as the codes :mod:`.metadata` discovered and read back through
  their labels. A remote value the mapping cannot read (a state or priority label it does not
  list, an assignee without a readable e-mail) is never read as "empty": the field is left out
  of the record and reported in :attr:`RemoteRecord.problems
  <poam_sync.connectors.base.RemoteRecord.problems>` with the mapping line that would cover
  it, so the canonical value is kept and nothing is pushed to the other sides. Only a truly
  empty column (no priority, no assignee) reads as None.
- ``assigned_to`` is a reference to ``sys_user``, found by e-mail through :mod:`.directory`; an
  unknown e-mail is a :class:`~poam_sync.connectors.base.FieldProblem` and the owner is left as
  it was. A user without a readable e-mail (a service account; a field-level ACL on
  ``sys_user.email``) is one too: the canonical owner stays.
- A title or description longer than its column (``max_length``, read through inheritance) is
  written (the instance keeps the first ``max_length`` characters) and reported; the projection
  cuts it the same way, so the shortened echo is not a change and the canonical value stays
  whole.
- A canonical date is a day; a date/time column (task's ``due_date``) holds the first second of
  that day in the instance's time zone, in UTC, and is read back as its day there
  (:mod:`.dates`); a date column holds the day as is.
- Our stamp lives in ``stamp_field`` (``poam-sync:<uuid>``) and, when configured,
  ``system/poam_id`` in ``stamp_display_field``; otherwise both share ``stamp_field``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

import structlog

from poam_sync.connectors.base import (
    FieldChange,
    FieldProblem,
    MilestoneValue,
    RemoteRecord,
    Stamp,
    SyncValue,
    SyncValues,
    as_optional_text,
    as_strings,
    as_text,
)
from poam_sync.connectors.servicenow.client import Row
from poam_sync.connectors.servicenow.directory import UserDirectory
from poam_sync.connectors.servicenow.mapping import (
    ServiceNowMapping,
    join_controls,
    sort_milestones,
    split_controls,
)
from poam_sync.connectors.servicenow.metadata import Metadata
from poam_sync.connectors.servicenow.settings import ServiceNowSettings
from poam_sync.connectors.servicenow.versions import version_of
from poam_sync.model import Note, RiskLevel, Status

log = structlog.get_logger(__name__)

SN_TIME = "%Y-%m-%d %H:%M:%S"
STAMP_PREFIX = "poam-sync:"


def sn_time(value: str) -> datetime:
    """``2026-01-19 04:52:04`` (UTC, as the Table API sends raw values) -> aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def watermark_query(since: datetime) -> str:
    """``sys_updated_on>=`` one second before ``since`` (UTC, second granularity)."""
    if since.tzinfo is None:
        raise ValueError("the watermark must be timezone-aware")
    start = since.astimezone(UTC) - timedelta(seconds=1)
    return f"sys_updated_on>={start.strftime(SN_TIME)}"


class RecordCodec:
    """The columns of one table, read as canonical fields and written from them."""

    def __init__(
        self,
        settings: ServiceNowSettings,
        mapping: ServiceNowMapping,
        users: UserDirectory,
        *,
        connector: str,
    ) -> None:
        self.settings = settings
        self.mapping = mapping
        self.table = settings.table
        self._users = users
        self._connector = connector
        self._log = log.bind(connector=connector, table=settings.table)

    def columns(self) -> list[str]:
        """What a read asks for (``sysparm_fields``): the mapped columns, stamp and version."""
        s, m = self.settings, self.mapping
        names = ["sys_id", "number", "sys_updated_on", "sys_updated_by", "sys_mod_count"]
        names.append(s.stamp_field)
        if s.stamp_display_field:
            names.append(s.stamp_display_field)
        names += list(m.fields.values())
        if "owner" in m.fields:
            names.append(f"{m.fields['owner']}.email")
        return list(dict.fromkeys(names))

    # -- the stamp -------------------------------------------------------------------------------

    def stamp_values(self, stamp: Stamp) -> dict[str, str]:
        where = f"{quote(stamp.system, safe='')}/{quote(stamp.poam_id, safe='')}"
        if self.settings.stamp_display_field:
            return {
                self.settings.stamp_field: stamp.token,
                self.settings.stamp_display_field: where,
            }
        return {self.settings.stamp_field: f"{stamp.token} {where}"}

    def stamp(self, row: Row) -> Stamp | None:
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

    # -- reading -------------------------------------------------------------------------------

    def record(
        self,
        row: Row,
        meta: Metadata,
        milestones: list[MilestoneValue] | None,
        notes: Sequence[Note] = (),
        changes: Mapping[str, FieldChange] | None = None,
        *,
        tag: str | None = None,
    ) -> RemoteRecord:
        """``row`` as the engine sees it; ``milestones`` None when they are not synced;
        ``tag``: its children's, part of the version (:mod:`.versions`), when known."""
        m = self.mapping
        fields: dict[str, SyncValue] = {}
        problems: list[FieldProblem] = []
        people: dict[str, str] = {}
        sys_id = row["sys_id"][0]
        for canonical, column in m.fields.items():
            value, display = row.get(column, ("", ""))
            if canonical in ("status", "original_risk"):
                meta.learn(self.table, column, value, display)
            if canonical == "status":
                label = meta.label(self.table, column, value) or display or value
                status = m.status_from_label(label)
                if status is None:
                    problems.append(self._unknown_state(column, value, label))
                    continue
                fields["status"] = status.value
            elif canonical == "original_risk":
                if not value:
                    fields["original_risk"] = None  # no priority at all
                    continue
                label = meta.label(self.table, column, value) or display or value
                risk = m.risk_from_label(label)
                if risk is None:
                    problems.append(self._unknown_priority(column, value, label))
                    continue
                fields["original_risk"] = risk.value
            elif canonical == "owner":
                if not value:
                    fields["owner"] = None  # unassigned
                    continue
                email = row.get(f"{column}.email", ("", ""))[0].strip().lower()
                if email:
                    self._users.remember(value, email)
                else:
                    email = self._users.email(value) or ""
                if not email:
                    problems.append(self._no_email(column, value, display))
                    continue
                fields["owner"] = email
                if display and display != value:
                    people[email] = display  # the user's name, as the instance shows it
            elif canonical in ("due_date", "scheduled_completion_date"):
                fields[canonical] = meta.day(self.table, column, value)
            elif canonical == "controls":
                fields["controls"] = split_controls(value)
            else:
                fields[canonical] = value
        if milestones is not None:
            fields["milestones"] = sort_milestones(milestones)
        for p in problems:
            self._log.warning(
                "servicenow.unreadable_field", sys_id=sys_id, field=p.field, code=p.code
            )
        return RemoteRecord(
            remote_id=sys_id,
            key=row.get("number", ("", ""))[0] or sys_id,
            version=version_of(row["sys_mod_count"][0], tag),
            updated_at=sn_time(row["sys_updated_on"][0]),
            fields=fields,
            stamp=self.stamp(row),
            updated_by=row.get("sys_updated_by", ("", ""))[0] or None,
            url=f"{self.settings.url}/nav_to.do?uri={self.table}.do?sys_id={sys_id}",
            notes=tuple(notes),
            problems=tuple(problems),
            people=people,
            field_changes=dict(changes or {}),
        )

    # -- what a read could not take ------------------------------------------------------------

    @property
    def _mapping_file(self) -> str:
        return f"the ServiceNow mapping (the `mapping:` file of connector {self._connector!r})"

    def _unknown_state(self, column: str, value: str, label: str) -> FieldProblem:
        shown = f"{label!r}" if label == value else f"{label!r} (value {value!r})"
        if not value:
            shown = "empty"
        return FieldProblem(
            "status",
            "unknown_value",
            f"{self.table}.{column} is {shown}, which the mapping does not list; "
            "the canonical status is kept and nothing is pushed",
            hint=f"add `{label or '<label>'}: <status>` under state_read_back: in "
            f"{self._mapping_file}, <status> one of {', '.join(s.value for s in Status)}",
        )

    def _unknown_priority(self, column: str, value: str, label: str) -> FieldProblem:
        shown = f"{label!r}" if label == value else f"{label!r} (value {value!r})"
        return FieldProblem(
            "original_risk",
            "unknown_value",
            f"{self.table}.{column} is {shown}, which the mapping does not list; "
            "the canonical risk is kept and nothing is pushed",
            hint=f"add `{label}: <risk>` under risk_read_back: in {self._mapping_file}, "
            f"<risk> one of {', '.join(r.value for r in RiskLevel)}",
        )

    def _no_email(self, column: str, sys_id: str, display: str) -> FieldProblem:
        who = f"{display} (sys_user {sys_id})" if display and display != sys_id else sys_id
        return FieldProblem(
            "owner",
            "unknown_user",
            f"{self.table}.{column} is {who}, who has no e-mail poam-sync can read; "
            "the canonical owner is kept and nothing is pushed",
            hint="give that sys_user record an e-mail (a service account needs one too), "
            "or let the integration user read sys_user.email (a field-level ACL hides it)",
        )

    # -- writing -------------------------------------------------------------------------------

    def values(
        self, changes: SyncValues, meta: Metadata
    ) -> tuple[dict[str, str], list[FieldProblem]]:
        """Column values for canonical ``changes`` (milestones excluded), and what cannot go."""
        m = self.mapping
        out: dict[str, str] = {}
        problems: list[FieldProblem] = []
        for canonical, value in changes.items():
            if canonical not in m.fields:
                continue  # not synced (milestones are child records, never in ``fields``)
            column = m.fields[canonical]
            if canonical == "status":
                label = m.states[Status(as_text(value, canonical))]
                code = meta.code(self.table, column, label)
                if code is None and meta.choices_unreadable:
                    continue  # written by its label: see display_values()
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
                risk = as_optional_text(value, canonical)
                if risk is None:
                    out[column] = ""
                    continue
                label = m.risks[RiskLevel(risk)]
                code = meta.code(self.table, column, label)
                if code is None and meta.choices_unreadable:
                    continue  # written by its label: see display_values()
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
                email = as_optional_text(value, canonical)
                if email is None or not email.strip():
                    out[column] = ""
                    continue
                user = self._users.user_id(email)
                if user is None:
                    problems.append(
                        FieldProblem(
                            "owner",
                            "unknown_user",
                            f"no active ServiceNow user (sys_user) has the e-mail {email}; "
                            "the record keeps its current assignee",
                            hint="create an active ServiceNow user with that e-mail, "
                            "or change the item's owner",
                        )
                    )
                    continue
                out[column] = user
            elif canonical in ("due_date", "scheduled_completion_date"):
                day = as_optional_text(value, canonical)
                out[column] = meta.stored_day(self.table, column, day)
            elif canonical == "controls":
                out[column] = join_controls(as_strings(value, canonical))
            else:  # title, description
                text = as_text(value, canonical)
                limit = meta.lengths.get(column)
                if limit and len(text) > limit:
                    problems.append(self._too_long(canonical, column, len(text), limit))
                out[column] = text
        return out, problems

    def display_values(self, changes: SyncValues, meta: Metadata) -> dict[str, str]:
        """The choice columns of ``changes`` whose codes are unknown because ``sys_choice``
        cannot be read: column -> label, to be written as a display value."""
        if not meta.choices_unreadable:
            return {}
        m = self.mapping
        out: dict[str, str] = {}
        for canonical, value in changes.items():
            column = m.fields.get(canonical)
            if column is None or value is None:
                continue
            if canonical == "status":
                label = m.states[Status(as_text(value, canonical))]
            elif canonical == "original_risk":
                label = m.risks[RiskLevel(as_text(value, canonical))]
            else:
                continue
            if meta.code(self.table, column, label) is None:
                out[column] = label
        return out

    def _too_long(self, canonical: str, column: str, length: int, limit: int) -> FieldProblem:
        return FieldProblem(
            canonical,
            "too_long",
            f"the {canonical} has {length} characters and {self.table}.{column} holds "
            f"{limit}: ServiceNow keeps the first {limit}; the canonical {canonical} stays whole",
            hint=f"shorten the {canonical}, or raise the max length of {column} in "
            f"sys_dictionary (a column inherited from task is defined under name=task)",
        )
