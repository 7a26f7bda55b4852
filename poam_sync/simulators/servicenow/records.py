"""Writing records: the dictionary of each table, inserts, updates, data policies, journals.

Every value is stored as a string, as on an instance; unknown fields are ignored, references
resolve by display value, and journal fields (``work_notes``, ``comments``) become
``sys_journal_field`` rows instead of values of the record.

What refuses a write, each with the body a real instance sends (all 403):

- **The GRC issue's state rules** (:data:`GRC_STATE_RULES`, on by default): ServiceNowDocs
  ``governance-risk-compliance/audit-management/issue-form.md`` (Version 12.0.1 and later):
  "When an issue transitions to the Analyze state, an entry in either the Issue manager group
  or Issue manager field is mandatory"; "when an issue transitions to the Respond state, an
  entry in the Assigned to field is mandatory", and so are Issue manager and Due date. The docs
  say *that* the fields are mandatory, not *how* the instance enforces it; the only mechanisms
  that hold for the Table API are a data policy and a business rule (UI policies run in the
  browser only), so ``grc_state_rules`` chooses which body the refusal has: ``data_policy``
  (default) or ``business_rule``, or ``off``. Only a *transition* is checked (a record already
  in Respond may be edited), as the docs word it.
- **Data policies** (:meth:`~.human.ServiceNowHuman.require_for_state`): message "Operation
  Failed", detail "Data Policy Exception: \n The following fields are mandatory: <labels>".
- **Business rules** that abort (``current.setAbortAction(true)``): message "Operation Failed",
  detail "Operation against file '<table>' was aborted by Business Rule '<name>^<sys_id>'.
  Business Rule Stack:<name>" (bodies quoted in public ServiceNow integration code and
  community threads, e.g. "Operation against file 'change_request' was aborted by Business
  Rule 'Change Model: Check State Transition'"); a rule that also adds an error message puts it
  first in the message.
- **ACLs**: a table ACL refusing a write, "Operation Failed" / "ACL Exception Update Failed due
  to security constraints" ("Insert" for a POST; quoted in Okta's support article "ServiceNow
  Provisioning Error: Record Doesn't Exist Or ACL Restricts The Record Retrieval"); the REST
  API's own ACL, "User Not Authorized" / "Failed API level ACL Validation" (ServiceNow KB2466644).
  IBM's TADDM guide, "Appendix C: Error codes" for ServiceNow: 403 "can also be caused by ACL
  failures, or business rule or data policy constraints".
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from poam_sync.simulators.servicenow.model import ADMIN_USER, Json, Row, SimError
from poam_sync.simulators.servicenow.state import ServiceNowState
from poam_sync.simulators.servicenow.tables import _SYSTEM_COLUMNS, Column, TableSpec

#: state label -> groups of fields; entering the state needs one field of each group filled
#: (issue-form.md, see the module docstring)
GRC_STATE_RULES: dict[str, tuple[tuple[str, ...], ...]] = {
    "Analyze": (("issue_manager_group", "issue_manager"),),
    "Respond": (("assigned_to",), ("issue_manager",), ("due_date",)),
}
GRC_RULE_NAME = "Validate issue state transition"
GRC_RULE_SYS_ID = "5f0c6c5e1b2230102f3a0f4e6e4bcb11"


# the text of the current second, formatted once per second (every write stamps a few rows)
_second: list[tuple[int, str]] = [(-1, "")]


def _now() -> str:
    """Now in UTC to the second, as an instance stores date/times."""
    second = int(time.time())
    cached = _second[0]
    if cached[0] != second:
        cached = (second, datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%d %H:%M:%S"))
        _second[0] = cached
    return cached[1]


# the version and variant bits of a random UUID (RFC 4122 section 4.4), as uuid.uuid4() sets them
_V4_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V4_SET = (0x8000 << 48) | (4 << 76)


# the simulator's own generator (seeded from the OS): nothing that seeds the global one, as
# property tests do, can make two records share a sys_id
_ids = random.Random()


def new_sys_id() -> str:
    """A new record's sys_id, shaped as ``uuid.uuid4().hex`` (32 hex digits of a version-4
    UUID), without a UUID object nor a system call per record."""
    return f"{_ids.getrandbits(128) & _V4_CLEAR | _V4_SET:032x}"


class ServiceNowRecords(ServiceNowState):
    """Tables, their dictionary entries, and every write to a record."""

    def add_table(self, spec: TableSpec) -> None:
        """Add a table, its ``sys_dictionary`` entries and its ``sys_choice`` rows."""
        with self.lock:
            self.tables[spec.name] = spec
            self.rows.setdefault(spec.name, {})
            self._write_meta(spec)

    def _write_meta(self, spec: TableSpec) -> None:
        """``sys_db_object``, ``sys_dictionary`` and ``sys_choice`` rows of ``spec``, each
        where an instance keeps it: an inherited column's dictionary row and choices stay
        under the parent table, the child only holds choices that differ (an override)."""
        self._insert(
            "sys_db_object",
            {"name": spec.name, "label": spec.label, "super_class": spec.extends or ""},
            ADMIN_USER,
        )
        parent = self.tables.get(spec.extends) if spec.extends else None
        inherited = {c.name: c for c in parent.columns} if parent is not None else {}
        own_system = () if parent is not None else _SYSTEM_COLUMNS
        for col in (*own_system, *spec.columns):
            base = inherited.get(col.name)
            if base is None:
                self._insert(
                    "sys_dictionary",
                    {
                        "name": spec.name,
                        "element": col.name,
                        "column_label": col.label or col.name,
                        "internal_type": col.type,
                        "reference": col.reference or "",
                        "max_length": str(col.max_length),
                    },
                    ADMIN_USER,
                )
            if base is not None and base.choices == col.choices:
                continue  # the parent's choices are the child's
            for seq, (value, label) in enumerate(col.choices, start=1):
                self._insert(
                    "sys_choice",
                    {
                        "name": spec.name,
                        "element": col.name,
                        "value": value,
                        "label": label,
                        "sequence": str(seq * 100),
                    },
                    ADMIN_USER,
                )

    def _spec(self, table: str) -> TableSpec:
        spec = self.tables.get(table)
        if spec is None:
            raise SimError(400, "Invalid table " + table, "")
        return spec

    def _column(self, table: str, name: str) -> Column | None:
        return self._columns(table).get(name)

    def _columns(self, table: str) -> dict[str, Column]:
        """The columns of ``table`` by name, system columns included (none for no table)."""
        spec = self.tables.get(table)
        if spec is None:
            return {}
        columns = self._column_index.get(table)
        if columns is None or columns[0] is not spec:
            template = {c.name: c.default for c in spec.columns if c.type != "journal_input"}
            columns = (spec, {c.name: c for c in (*_SYSTEM_COLUMNS, *spec.columns)}, template)
            self._column_index[table] = columns
        return columns[1]

    def _new_row(self, table: str) -> Row:
        """A new row of ``table``: every column of its own at its default (journals aside)."""
        self._columns(table)
        return dict(self._column_index[table][2])

    # -- writes ------------------------------------------------------------------------------

    def _insert(self, table: str, values: Mapping[str, Json], user: str) -> Row:
        spec = self._spec(table)
        now = _now()
        row = self._new_row(table)
        sys_id = str(values.get("sys_id") or new_sys_id())
        row.update(
            sys_id=sys_id,
            sys_created_on=now,
            sys_created_by=user,
            sys_updated_on=now,
            sys_updated_by=user,
            sys_mod_count="0",
        )
        if spec.number_prefix and "number" in row:
            n = self.counters.get(table, 1000) + 1
            self.counters[table] = n
            row["number"] = f"{spec.number_prefix}{n:07d}"
        journal = self._apply(table, row, values, check_policy=True)
        self._check_rules(table, "", row, "insert")
        self.rows[table][sys_id] = row
        self._journal(table, sys_id, journal, user, now)
        self._audit(spec, sys_id, {}, row, user)
        self._changed(table, row, "insert", user)
        return row

    def _update(self, table: str, sys_id: str, values: Mapping[str, Json], user: str) -> Row:
        self._spec(table)
        row = self.rows[table].get(sys_id)
        if row is None:
            raise SimError(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        candidate = dict(row)
        journal = self._apply(table, candidate, values, check_policy=True)
        self._check_rules(table, row.get("state", ""), candidate, "update")
        now = _now()
        candidate.update(
            sys_updated_on=now,
            sys_updated_by=user,
            sys_mod_count=str(int(candidate.get("sys_mod_count") or 0) + 1),
        )
        before = dict(row)
        row.clear()
        row.update(candidate)
        self._journal(table, sys_id, journal, user, now)
        self._audit(self._spec(table), sys_id, before, row, user)
        self._changed(table, row, "update", user)
        return row

    def _audit(self, spec: TableSpec, sys_id: str, before: Row, after: Row, user: str) -> None:
        """One ``sys_audit`` row per field an insert or update of an audited table changed.

        ServiceNow docs, "Sys Audit and Audit Relationship Change tables"
        (https://docs.servicenow.com/bundle/kingston-platform-administration/page/administer/security/concept/c_UnderstandingTheSysAuditTable.html):
        "tracks inserts changes to audited records"; columns Table name, Field name, Document
        key (the record's sys_id), User, Old value, New value; "Reference fields: Displays the
        unique sys_id value", "Date and time fields: ... in UTC as stored in the database".
        Task tables are audited (Mastering ServiceNow, "Auditing and versioning": "Some
        tables, such as the Task table, are audited"); system fields are not."""
        if not spec.audited:
            return
        for name, new in after.items():
            old = before.get(name, "")
            if name.startswith("sys_") or name == "number" or new == old:
                continue
            self._insert(
                "sys_audit",
                {
                    "tablename": spec.name,
                    "fieldname": name,
                    "documentkey": sys_id,
                    "user": user,
                    "oldvalue": old,
                    "newvalue": new,
                },
                user,
            )

    def _changed(self, table: str, row: Row, operation: str, user: str) -> None:
        """``row`` of ``table`` was written; the business rules of :mod:`.webhooks` call out."""

    def _apply(
        self, table: str, row: Row, values: Mapping[str, Json], *, check_policy: bool
    ) -> list[tuple[str, str]]:
        """Set ``values`` on ``row`` (unknown fields ignored); return journal entries to add."""
        journal: list[tuple[str, str]] = []
        columns = self._columns(table)
        for name, raw in values.items():
            col = columns.get(name)
            if col is None or name in ("sys_id", "sys_created_on", "sys_created_by"):
                continue  # an instance ignores fields it does not know
            value = _as_string(raw)
            if col.type == "journal_input":
                if value:
                    journal.append((name, value))
                continue
            if name.startswith("sys_"):
                continue
            if col.type == "reference" and value and col.reference:
                value = self._resolve_reference(col.reference, value)
            if col.type == "boolean":
                value = "true" if value.lower() in ("true", "1") else "false"
            if col.type == "glide_date_time" and len(value) == 10:
                value += " 00:00:00"  # a day alone is its first second (UTC, as all text input)
            row[name] = value[: col.max_length] if col.type == "string" else value
        if check_policy and "state" in row:
            needed = self.state_policies.get((table, row["state"]), ())
            missing = [f for f in needed if not row.get(f)]
            if missing:
                labels = ", ".join(
                    (self._column(table, f) or Column(f)).label or f for f in missing
                )
                raise SimError(
                    403,
                    "Operation Failed",
                    f"Data Policy Exception: \n The following fields are mandatory: {labels}",
                )
        return journal

    def _check_rules(self, table: str, before: str, row: Row, operation: str) -> None:
        """The table ACL, business rules and the GRC state rules on a write of ``row``."""
        if self.acl_denied.get((table, operation)) == "record":
            raise SimError(
                403,
                "Operation Failed",
                f"ACL Exception {operation.capitalize()} Failed due to security constraints",
            )
        state = row.get("state", "")
        entering = state != before
        for key in ((table, ""), (table, state) if entering else None):
            rule = self.business_rules.get(key) if key else None
            if rule is not None:
                raise _business_rule_abort(table, *rule)
        spec = self.tables.get(table)
        if self.grc_state_rules == "off" or table != "sn_grc_issue" or spec is None:
            return
        if not entering:
            return
        col = self._column(table, "state")
        label = dict(col.choices).get(state, state) if col else state
        groups = GRC_STATE_RULES.get(label, ())
        missing = [g for g in groups if not any(row.get(f) for f in g)]
        if not missing:
            return
        if self.grc_state_rules == "business_rule":
            names = " and ".join(
                " or ".join((self._column(table, f) or Column(f)).label for f in g) for g in missing
            )
            raise _business_rule_abort(
                table,
                GRC_RULE_NAME,
                GRC_RULE_SYS_ID,
                f"{names} must be filled in to move the issue to {label}",
            )
        # a data policy names each mandatory field; "either" fields are one policy whose
        # condition is that the other one is empty, so it names the last of the group
        labels = ", ".join((self._column(table, g[-1]) or Column(g[-1])).label for g in missing)
        raise SimError(
            403,
            "Operation Failed",
            f"Data Policy Exception: \n The following fields are mandatory: {labels}",
        )

    def _resolve_reference(self, target: str, value: str) -> str:
        rows = self.rows.get(target, {})
        if value in rows:
            return value
        spec = self.tables.get(target)
        display = spec.display_field if spec else "name"
        for sys_id, row in rows.items():
            if row.get(display) == value:
                return sys_id
        return value  # an instance keeps an unresolved reference as typed

    def _journal(
        self, table: str, sys_id: str, entries: list[tuple[str, str]], user: str, now: str
    ) -> None:
        for element, text in entries:
            self._insert(
                "sys_journal_field",
                {"name": table, "element": element, "element_id": sys_id, "value": text},
                user,
            )


def _business_rule_abort(table: str, name: str, sys_id: str, message: str) -> SimError:
    detail = (
        f"Operation against file '{table}' was aborted by Business Rule '{name}^{sys_id}'. "
        f"Business Rule Stack:{name}"
    )
    if message:  # gs.addErrorMessage() before setAbortAction(true): the message comes first
        return SimError(403, f"{message}. {detail}", "")
    return SimError(403, "Operation Failed", detail)


def _as_string(raw: Json) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict):  # {"value": ...} as pysnc may send with display_value=all
        return _as_string(raw.get("value", ""))
    return str(raw)
