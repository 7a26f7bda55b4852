"""Writing records: the dictionary of each table, inserts, updates, data policies, journals.

Every value is stored as a string, as on an instance; unknown fields are ignored, references
resolve by display value, and journal fields (``work_notes``, ``comments``) become
``sys_journal_field`` rows instead of values of the record.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from poam_sync.simulators.servicenow.model import ADMIN_USER, Json, Row, SimError
from poam_sync.simulators.servicenow.state import ServiceNowState
from poam_sync.simulators.servicenow.tables import _SYSTEM_COLUMNS, Column, TableSpec


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def new_sys_id() -> str:
    return uuid.uuid4().hex


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
        spec = self.tables.get(table)
        if spec is None:
            return None
        columns = self._column_index.get(table)
        if columns is None or columns[0] is not spec:
            columns = (spec, {c.name: c for c in (*_SYSTEM_COLUMNS, *spec.columns)})
            self._column_index[table] = columns
        return columns[1].get(name)

    # -- writes ------------------------------------------------------------------------------

    def _insert(self, table: str, values: Mapping[str, Json], user: str) -> Row:
        spec = self._spec(table)
        now = _now()
        row: Row = {c.name: c.default for c in spec.columns if c.type != "journal_input"}
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
        self.rows[table][sys_id] = row
        self._journal(table, sys_id, journal, user, now)
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
        now = _now()
        candidate.update(
            sys_updated_on=now,
            sys_updated_by=user,
            sys_mod_count=str(int(candidate.get("sys_mod_count") or 0) + 1),
        )
        row.clear()
        row.update(candidate)
        self._journal(table, sys_id, journal, user, now)
        return row

    def _apply(
        self, table: str, row: Row, values: Mapping[str, Json], *, check_policy: bool
    ) -> list[tuple[str, str]]:
        """Set ``values`` on ``row`` (unknown fields ignored); return journal entries to add."""
        journal: list[tuple[str, str]] = []
        for name, raw in values.items():
            col = self._column(table, name)
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


def _as_string(raw: Json) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict):  # {"value": ...} as pysnc may send with display_value=all
        return _as_string(raw.get("value", ""))
    return str(raw)
