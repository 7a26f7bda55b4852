"""The "human" Python API: a GRC analyst at the instance's UI, for tests and the demo.

People change records without the Table API (states by their label, work notes), an admin
adds data policies, and a test may make the instance lose its next answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from zoneinfo import ZoneInfo

from poam_sync.simulators.servicenow.model import (
    ADMIN_ONLY_TABLES,
    ADMIN_USER,
    ANALYST_USER,
    Json,
    Row,
)
from poam_sync.simulators.servicenow.reads import ServiceNowReads
from poam_sync.simulators.servicenow.state import DEFAULT_TIME_ZONE

#: choice labels of a German instance (the language plugin's words for the stock choices)
TRANSLATIONS: dict[str, dict[str, str]] = {
    "de": {
        "New": "Neu",
        "Analyze": "Analysieren",
        "Respond": "Reagieren",
        "Review": "Überprüfen",
        "Closed Complete": "Abgeschlossen - vollständig",
        "Closed Incomplete": "Abgeschlossen - unvollständig",
        "Closed Skipped": "Abgeschlossen - übersprungen",
        "Pending": "Ausstehend",
        "Open": "Offen",
        "Work in Progress": "In Bearbeitung",
        "1 - Critical": "1 - Kritisch",
        "2 - High": "2 - Hoch",
        "3 - Moderate": "3 - Mittel",
        "4 - Low": "4 - Niedrig",
        "5 - Planning": "5 - Planung",
    }
}


class ServiceNowHuman(ServiceNowReads):
    """What an analyst or an admin does by hand."""

    def human_create(
        self, table: str, values: Mapping[str, Json], *, user: str = ANALYST_USER
    ) -> dict[str, str]:
        with self.lock:
            return dict(self._insert(table, values, user))

    def human_update(
        self, table: str, sys_id: str, values: Mapping[str, Json], *, user: str = ANALYST_USER
    ) -> dict[str, str]:
        """Edit a record as ``user`` would in the form: a state by value or by its label, a
        date/time as the form shows it, in ``user``'s time zone (stored as UTC).

        A date/time given as a day alone (``2027-02-15``) is taken as 12:00 of that day in the
        user's zone: a convenience of this API (the form's picker would fill some time in),
        chosen so that the day is the same in every zone within eleven hours of the user's."""
        with self.lock:
            days = {
                name: f"{raw} 12:00:00"
                for name, raw in values.items()
                if isinstance(raw, str) and len(raw) == 10 and self._is_date_time(table, name)
            }
            resolved = self.from_display(table, {**values, **days}, user)
            return dict(self._update(table, sys_id, resolved, user))

    def set_time_zone(self, time_zone: str) -> None:
        """The instance's time zone (``glide.sys.default.tz``), e.g. ``America/New_York``."""
        ZoneInfo(time_zone)  # an unknown zone fails here, not at the first display
        with self.lock:
            self.time_zone = time_zone
            name = "glide.sys.default.tz"
            for row in self.rows["sys_properties"].values():
                if row.get("name") == name:
                    row["value"] = time_zone
                    return
            self._insert("sys_properties", {"name": name, "value": time_zone}, ADMIN_USER)

    def human_work_note(
        self,
        table: str,
        sys_id: str,
        text: str,
        *,
        user: str = ANALYST_USER,
        element: str = "work_notes",
    ) -> None:
        with self.lock:
            self._update(table, sys_id, {element: text}, user)

    def delete(self, table: str, sys_id: str) -> None:
        with self.lock:
            self.rows[table].pop(sys_id, None)

    def record(self, table: str, sys_id: str) -> dict[str, str]:
        """A copy of the raw stored values (``KeyError`` when missing)."""
        with self.lock:
            return dict(self.rows[table][sys_id])

    def records(self, table: str, query: str = "") -> list[dict[str, str]]:
        with self.lock:
            return [dict(r) for r in self.select(table, query)]

    def journal(self, table: str, sys_id: str) -> list[dict[str, str]]:
        return self.records("sys_journal_field", f"name={table}^element_id={sys_id}")

    def user_id(self, email: str) -> str:
        for sys_id, row in self.rows["sys_user"].items():
            if row.get("email", "").lower() == email.lower():
                return sys_id
        raise KeyError(email)

    def require_for_state(self, table: str, state_label: str, fields: Sequence[str]) -> None:
        """A data policy: records entering ``state_label`` need ``fields`` filled in."""
        col = self._column(table, "state")
        value = {label: v for v, label in (col.choices if col else ())}.get(
            state_label, state_label
        )
        self.state_policies[(table, value)] = tuple(fields)

    def _state_value(self, table: str, state_label: str) -> str:
        col = self._column(table, "state")
        return {label: v for v, label in (col.choices if col else ())}.get(state_label, state_label)

    def abort_by_business_rule(
        self,
        table: str,
        name: str,
        *,
        state_label: str | None = None,
        message: str = "",
        sys_id: str = "0b1e2d3c4a5f60718293a4b5c6d7e8f9",
    ) -> None:
        """A before business rule that aborts writes to ``table`` (entering ``state_label``
        only, when given), optionally after adding an error ``message``."""
        key = (table, self._state_value(table, state_label) if state_label else "")
        self.business_rules[key] = (name, sys_id, message)

    def deny(self, table: str, operation: str, *, kind: str = "record") -> None:
        """An ACL: ``kind="record"`` refuses ``operation`` ("insert"/"update") on ``table``;
        ``kind="api"`` (operation "api") refuses the table to the REST API altogether."""
        self.acl_denied[(table, operation)] = kind

    def hide_rows(self, table: str, readable: Callable[[Row], bool]) -> None:
        """A read ACL: rows for which ``readable`` is false are dropped after paging."""
        self.row_acl[table] = readable

    def translate_choices(self, language: str) -> None:
        """A row in ``language`` for every English ``sys_choice`` row: same table, element and
        value, the label translated (ServiceNow docs, "Choices table": "Language: The BCP 47
        code of the language for the translated choice. Value: A key that is the same for the
        choice in each language"). German labels are real words; other languages get the
        English label with a ``[xx]`` prefix."""
        words = TRANSLATIONS.get(language, {})
        with self.lock:
            self.translated = True
            english = [r for r in self.rows["sys_choice"].values() if r["language"] == "en"]
            for row in english:
                label = words.get(row["label"], f"[{language}] {row['label']}")
                self._insert(
                    "sys_choice",
                    {
                        **{k: row[k] for k in ("name", "element", "value", "sequence")},
                        "label": label,
                        "language": language,
                    },
                    ADMIN_USER,
                )

    def restrict_non_admins(
        self,
        tables: Sequence[str] = ADMIN_ONLY_TABLES,
        *,
        mode: str = "empty",
        hide: Sequence[tuple[str, str]] = (("sys_user", "email"),),
    ) -> None:
        """A least-privilege instance: users without the admin role cannot read ``tables``
        and do not see the ``hide`` columns (a field-level ACL: the field comes back empty).

        ``mode="empty"``: a list answers 200 with the rows dropped after the query (ServiceNow
        KB3047115, "Table API response returns HTTP 200 OK with an empty result array, but the
        records demonstrably exist"; a record reads as 404); ``"forbidden"``: 403 (KB2971488:
        "API response returns empty fields or HTTP 403", table-level blocks as 403)."""
        if mode not in ("empty", "forbidden"):
            raise ValueError(f"mode {mode!r}: use 'empty' or 'forbidden'")
        with self.lock:
            for table in tables:
                self.unreadable[table] = mode
            self.hidden_fields.update(hide)

    def reset_rules(self) -> None:
        """Back to a stock instance: no extra policies, rules or ACLs; GRC state rules on."""
        with self.lock:
            self.state_policies.clear()
            self.business_rules.clear()
            self.acl_denied.clear()
            self.row_acl.clear()
            self.unreadable.clear()
            self.hidden_fields.clear()
            self.grc_state_rules = "data_policy"
        self.set_time_zone(DEFAULT_TIME_ZONE)

    def lose_next_answers(
        self, count: int = 1, *, methods: Sequence[str] = ("POST", "PATCH")
    ) -> None:
        """Carry out the next ``count`` such requests, then cut the connection before the answer
        (a write that happened although the client saw a network error)."""
        with self.lock:
            self.lose_answers = count
            self.lose_methods = frozenset(m.upper() for m in methods)
