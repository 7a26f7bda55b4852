"""A stateful ServiceNow instance that speaks the Table API over HTTPS (tests, demo, benchmarks).

What it does like ServiceNow (ServiceNow docs: "Table API", "Batch API", "REST API response
codes", "Encoded query strings"; PySNC 1.2.1 as observed):

- ``GET/POST/PATCH/PUT/DELETE /api/now/table/{table}[/{sys_id}]`` (also ``/api/now/v2/table``),
  bodies wrapped in ``{"result": ...}``, every value a string, 32-hex ``sys_id``, system fields
  in UTC (``YYYY-MM-DD HH:MM:SS``), ``POST`` 201 with ``Location``, ``DELETE`` 204, errors as
  ``{"error": {"message", "detail"}, "status": "failure"}``.
- Encoded queries (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``LIKE``, ``NOT LIKE``,
  ``STARTSWITH``, ``ENDSWITH``, ``IN``, ``NOT IN``, ``ISEMPTY``, ``ISNOTEMPTY``, ``^``, ``^OR``,
  ``ORDERBY``/``ORDERBYDESC``, one level of dot-walking); invalid terms are ignored, as on an
  instance. Paging with ``sysparm_limit``/``sysparm_offset``, ``X-Total-Count`` and ``Link``;
  ``sysparm_fields`` (dot-walked too), ``sysparm_display_value`` (``true``/``false``/``all``),
  ``sysparm_exclude_reference_link``, ``sysparm_suppress_pagination_header``,
  ``sysparm_no_count``.
- Tables with dictionaries and choices: ``sn_grc_issue``, ``sn_irm_cont_auth_milestone_task``,
  ``sys_user``, ``sys_choice``, ``sys_journal_field`` (work notes and comments written by
  PATCHing ``work_notes``/``comments``), ``sys_dictionary``; more tables with ``extra_tables``.
- Basic auth and OAuth client credentials (``POST /oauth_token.do``); 401 with the instance's
  body otherwise. The Batch API (``POST /api/now/v1/batch``).
- Data policies: :meth:`ServiceNowSimulator.require_for_state` makes a state need a field, as a
  "close notes are mandatory" policy does (403 "Data Policy Exception").
- Faults, latency and call counters through :class:`~poam_sync.simulators._base.SimControl`
  and the ``/_sim/`` control API.

Display values of date-times are shown in the acting user's time zone, as on an instance; the
raw values (``sysparm_display_value=false``, or ``value`` with ``all``) are UTC.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode
from zoneinfo import ZoneInfo

import trustme

from poam_sync.simulators._base import (
    Receive,
    Scope,
    Send,
    ServerThread,
    SimControl,
    SimMiddleware,
    _read_body,
    _send_raw,
)

ADMIN_USER = "admin"
ADMIN_PASSWORD = "sim-password"
OAUTH_CLIENT_ID = "poam-sync"
OAUTH_CLIENT_SECRET = "sim-secret"
ANALYST_USER = "dave.analyst"
TOKEN_LIFETIME_S = 1800

Row = dict[str, str]
Json = Any


# -- tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of a table's dictionary (``sys_dictionary``)."""

    name: str
    type: str = "string"  # string, integer, boolean, glide_date, glide_date_time,
    # reference, journal_input, sys_id
    label: str = ""
    reference: str | None = None  # table a reference points to
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) in sequence order
    default: str = ""
    max_length: int = 255


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, its number prefix (``ISS0001001``) and its display field."""

    name: str
    label: str
    columns: tuple[Column, ...]
    number_prefix: str | None = None
    display_field: str = "number"


_SYSTEM_COLUMNS = (
    Column("sys_id", "sys_id", "Sys ID", max_length=32),
    Column("sys_created_on", "glide_date_time", "Created"),
    Column("sys_created_by", "string", "Created by"),
    Column("sys_updated_on", "glide_date_time", "Updated"),
    Column("sys_updated_by", "string", "Updated by"),
    Column("sys_mod_count", "integer", "Updates", default="0"),
)

GRC_ISSUE_STATES = (
    ("1", "New"),
    ("2", "Analyze"),
    ("3", "Respond"),
    ("4", "Review"),
    ("5", "Closed"),
)
PRIORITIES = (("1", "1 - Critical"), ("2", "2 - High"), ("3", "3 - Moderate"), ("4", "4 - Low"))
MILESTONE_STATES = (
    ("1", "Open"),
    ("2", "Work in Progress"),
    ("3", "Closed Complete"),
    ("4", "Closed Skipped"),
)


def issue_columns(
    *, with_correlation: bool = True, stamp_field: str | None = None
) -> tuple[Column, ...]:
    """The columns of a GRC issue; an office's own table reuses them (and names its stamp)."""
    cols = [
        Column("number", label="Number", max_length=40),
        Column("short_description", label="Short description", max_length=160),
        Column("description", label="Description", max_length=4000),
        Column("state", "integer", "State", choices=GRC_ISSUE_STATES, default="1"),
        Column("priority", "integer", "Priority", choices=PRIORITIES, default="4"),
        Column("assigned_to", "reference", "Assigned to", reference="sys_user"),
        Column("due_date", "glide_date", "Due date"),
        Column("u_scheduled_completion_date", "glide_date", "Scheduled completion date"),
        Column("u_controls", label="Controls", max_length=1000),
        Column("close_notes", label="Close notes", max_length=4000),
        Column("active", "boolean", "Active", default="true"),
        Column("work_notes", "journal_input", "Work notes"),
        Column("comments", "journal_input", "Additional comments"),
    ]
    if with_correlation:
        cols += [
            Column("correlation_id", label="Correlation ID", max_length=100),
            Column("correlation_display", label="Correlation display", max_length=100),
        ]
    if stamp_field:
        cols.append(Column(stamp_field, label="poam-sync stamp", max_length=200))
    return tuple(cols)


def default_tables() -> list[TableSpec]:
    return [
        TableSpec("sn_grc_issue", "Issue", issue_columns(), "ISS"),
        TableSpec(
            "sn_irm_cont_auth_milestone_task",
            "Milestone",
            (
                Column("number", label="Number", max_length=40),
                Column("short_description", label="Short description", max_length=160),
                Column("state", "integer", "State", choices=MILESTONE_STATES, default="1"),
                Column("due_date", "glide_date", "Due date"),
                Column("parent", "reference", "Parent", reference="sn_grc_issue"),
                Column("correlation_id", label="Correlation ID", max_length=100),
                Column("work_notes", "journal_input", "Work notes"),
            ),
            "CAMT",
        ),
        TableSpec(
            "sys_user",
            "User",
            (
                Column("user_name", label="User ID"),
                Column("name", label="Name"),
                Column("email", label="Email"),
                Column("time_zone", label="Time zone"),
                Column("active", "boolean", "Active", default="true"),
            ),
            None,
            "name",
        ),
        TableSpec(
            "sys_choice",
            "Choices",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("value", label="Value"),
                Column("label", label="Label"),
                Column("sequence", "integer", "Sequence"),
                Column("language", label="Language", default="en"),
                Column("inactive", "boolean", "Inactive", default="false"),
            ),
            None,
            "label",
        ),
        TableSpec(
            "sys_journal_field",
            "Journal Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("element_id", label="Element ID"),
                Column("value", label="Value", max_length=100000),
            ),
            None,
            "value",
        ),
        TableSpec(
            "sys_dictionary",
            "Dictionary Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Column name"),
                Column("column_label", label="Column label"),
                Column("internal_type", label="Type"),
                Column("reference", label="Reference"),
                Column("max_length", "integer", "Max length"),
            ),
            None,
            "element",
        ),
    ]


DEFAULT_USERS = (
    # (user_name, name, email, time zone)
    (ADMIN_USER, "System Administrator", "admin@example.com", "America/Los_Angeles"),
    ("alice", "Alice Adams", "alice@example.com", "Europe/Berlin"),
    ("bob", "Bob Brown", "bob@example.com", "America/New_York"),
    ("carol", "Carol Clark", "carol@example.com", "Asia/Tokyo"),
    (ANALYST_USER, "Dave Davis (GRC analyst)", "dave@example.com", "America/Chicago"),
)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def new_sys_id() -> str:
    return uuid.uuid4().hex


class SimError(Exception):
    """An error response in ServiceNow's shape."""

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail

    def body(self) -> dict[str, Json]:
        return {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}


# -- encoded queries ------------------------------------------------------------------------

_TERM = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)"
    r"(?P<op>ISNOTEMPTY|ISEMPTY|STARTSWITH|ENDSWITH|NOT LIKE|LIKE|NOT IN|IN|!=|>=|<=|=|>|<)"
    r"(?P<value>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class EncodedQuery:
    groups: tuple[tuple[Term, ...], ...]  # AND of OR-groups
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def parse_query(text: str) -> EncodedQuery:
    """Parse ``sysparm_query``; unknown or malformed terms are ignored like an instance does."""
    groups: list[list[Term]] = []
    order: list[tuple[str, bool]] = []
    if not text:
        return EncodedQuery((), ())
    for raw in text.split("^"):
        part = raw
        is_or = part.startswith("OR") and not part.startswith("ORDERBY")
        if is_or:
            part = part[2:]
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC") :], True))
            continue
        if part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY") :], False))
            continue
        if part in ("", "NQ", "EQ"):
            continue
        m = _TERM.match(part)
        if not m:
            continue  # an instance ignores what it cannot parse
        term = Term(m["field"], m["op"], m["value"])
        if is_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
    return EncodedQuery(tuple(tuple(g) for g in groups), tuple(order))


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(left: str, right: str, numeric: bool) -> int:
    if numeric:
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return (a > b) - (a < b)
    return (left > right) - (left < right)


def term_matches(term: Term, value: str, *, numeric: bool) -> bool:
    op, want = term.op, term.value
    if op == "ISEMPTY":
        return value == ""
    if op == "ISNOTEMPTY":
        return value != ""
    if op == "=":
        return value == want if not numeric else _compare(value, want, True) == 0
    if op == "!=":
        return value != want
    if op in (">", ">=", "<", "<="):
        if value == "":
            return False
        c = _compare(value, want, numeric)
        return {">": c > 0, ">=": c >= 0, "<": c < 0, "<=": c <= 0}[op]
    if op == "LIKE":
        return want.lower() in value.lower()
    if op == "NOT LIKE":
        return want.lower() not in value.lower()
    if op == "STARTSWITH":
        return value.lower().startswith(want.lower())
    if op == "ENDSWITH":
        return value.lower().endswith(want.lower())
    if op == "IN":
        return value in want.split(",")
    if op == "NOT IN":
        return value not in want.split(",")
    return False


# -- the instance -----------------------------------------------------------------------------


class ServiceNowSimulator:
    """State of one simulated instance, its ASGI app, and a "human" API for tests and demos."""

    def __init__(
        self,
        *,
        extra_tables: Sequence[TableSpec] = (),
        users: Iterable[tuple[str, str, str, str]] = DEFAULT_USERS,
        control: SimControl | None = None,
    ) -> None:
        self.control = control or SimControl()
        self.lock = threading.RLock()
        self.tables: dict[str, TableSpec] = {}
        self._column_index: dict[str, tuple[TableSpec, dict[str, Column]]] = {}
        self.rows: dict[str, dict[str, Row]] = {}
        self.passwords: dict[str, str] = {ADMIN_USER: ADMIN_PASSWORD}
        self.oauth_clients: dict[str, tuple[str, str]] = {
            OAUTH_CLIENT_ID: (OAUTH_CLIENT_SECRET, ADMIN_USER)
        }
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (user_name, expires)
        self.counters: dict[str, int] = {}
        # (table, state value) -> fields a data policy makes mandatory for that state
        self.state_policies: dict[tuple[str, str], tuple[str, ...]] = {}
        # answers to lose after the request was carried out (see lose_next_answers)
        self.lose_answers = 0
        self.lose_methods: frozenset[str] = frozenset()
        specs = [*default_tables(), *extra_tables]
        for spec in specs:
            self.tables[spec.name] = spec
            self.rows[spec.name] = {}
        for spec in specs:
            self._write_meta(spec)
        for user_name, name, email, tz in users:
            self._insert(
                "sys_user",
                {"user_name": user_name, "name": name, "email": email, "time_zone": tz},
                ADMIN_USER,
            )
        self.app = SimMiddleware(self._asgi, self.control, _fault_response)

    # -- tables and dictionary ------------------------------------------------------------

    def add_table(self, spec: TableSpec) -> None:
        """Add a table, its ``sys_dictionary`` entries and its ``sys_choice`` rows."""
        with self.lock:
            self.tables[spec.name] = spec
            self.rows.setdefault(spec.name, {})
            self._write_meta(spec)

    def _write_meta(self, spec: TableSpec) -> None:
        for col in (*_SYSTEM_COLUMNS, *spec.columns):
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

    # -- reads -------------------------------------------------------------------------------

    def _field_value(self, table: str, row: Row, name: str) -> str:
        if "." in name:
            head, _, rest = name.partition(".")
            col = self._column(table, head)
            if col is None or col.type != "reference" or not col.reference:
                return ""
            target = self.rows.get(col.reference, {}).get(row.get(head, ""))
            return "" if target is None else self._field_value(col.reference, target, rest)
        return row.get(name, "")

    def select(self, table: str, query: str) -> list[Row]:
        """Rows of ``table`` matching an encoded query, in its order (default: creation)."""
        parsed = parse_query(query)
        rows: Iterable[Row] = self.rows[table].values()
        if parsed.groups:
            match = self._compile(table, parsed)
            rows = [r for r in rows if match(r)]
        result = list(rows)
        for name, desc in reversed(parsed.order):
            numeric = self._is_numeric(table, name)
            get = self._getter(table, name)

            def key(
                row: Row, get: Callable[[Row], str] = get, numeric: bool = numeric
            ) -> tuple[int, float, str]:
                return _sort_key(get(row), numeric)

            result.sort(key=key, reverse=desc)
        return result

    def _is_numeric(self, table: str, name: str) -> bool:
        col = self._column(table, name)
        return col is not None and col.type == "integer"

    def _known(self, table: str, name: str) -> bool:
        head = name.partition(".")[0]
        return self._column(table, head) is not None

    def _getter(self, table: str, name: str) -> Callable[[Row], str]:
        if "." in name:
            return lambda row: self._field_value(table, row, name)
        return lambda row: row.get(name, "")

    def _compile(self, table: str, query: EncodedQuery) -> Callable[[Row], bool]:
        """The query as one predicate over rows (terms resolved once, not per row)."""
        groups: list[list[tuple[Callable[[Row], str], Callable[[str], bool]]]] = []
        for group in query.groups:
            terms = [t for t in group if self._known(table, t.field)]
            if not terms:
                continue  # terms naming unknown fields are ignored, like an instance does
            compiled: list[tuple[Callable[[Row], str], Callable[[str], bool]]] = [
                (self._getter(table, t.field), _predicate(t, self._is_numeric(table, t.field)))
                for t in terms
            ]
            groups.append(compiled)

        def match(row: Row) -> bool:
            return all(any(test(get(row)) for get, test in group) for group in groups)

        return match

    def _display(self, table: str, name: str, row: Row, viewer: str) -> str:
        value = self._field_value(table, row, name)
        col = self._column(table, name.partition(".")[0] if "." in name else name)
        if "." in name:
            return value
        if col is None or not value:
            return value
        if col.type == "reference" and col.reference:
            target = self.rows.get(col.reference, {}).get(value)
            spec = self.tables.get(col.reference)
            if target is None or spec is None:
                return value
            return target.get(spec.display_field, value)
        if col.choices:
            return dict(col.choices).get(value, value)
        if col.type == "glide_date_time":
            return self._local_time(value, viewer)
        return value

    def _local_time(self, value: str, viewer: str) -> str:
        tz = "UTC"
        for user in self.rows["sys_user"].values():
            if user.get("user_name") == viewer:
                tz = user.get("time_zone") or "UTC"
        try:
            when = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            return value
        return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")

    def render(
        self,
        table: str,
        row: Row,
        *,
        base: str,
        fields: Sequence[str] | None,
        display: str,
        exclude_links: bool,
        viewer: str,
    ) -> dict[str, Json]:
        spec = self._spec(table)
        names = list(fields) if fields else [c.name for c in (*_SYSTEM_COLUMNS, *spec.columns)]
        out: dict[str, Json] = {}
        for name in names:
            col = None if "." in name else self._column(table, name)
            if "." not in name and col is None:
                continue
            value = (
                ""
                if col is not None and col.type == "journal_input"
                else (self._field_value(table, row, name))
            )
            shown = (
                value
                if col is not None and col.type == "journal_input"
                else (self._display(table, name, row, viewer))
            )
            link = None
            if col is not None and col.type == "reference" and value and not exclude_links:
                link = f"{base}/api/now/table/{col.reference}/{value}"
            if display == "all":
                cell: dict[str, str] = {"display_value": shown, "value": value}
                if link:
                    cell["link"] = link
                out[name] = cell
            elif display == "true":
                out[name] = {"display_value": shown, "link": link} if link else shown
            else:
                out[name] = {"link": link, "value": value} if link else value
        return out

    # -- the "human" API (a GRC analyst at the instance's UI) -------------------------------------

    def human_create(
        self, table: str, values: Mapping[str, Json], *, user: str = ANALYST_USER
    ) -> dict[str, str]:
        with self.lock:
            return dict(self._insert(table, values, user))

    def human_update(
        self, table: str, sys_id: str, values: Mapping[str, Json], *, user: str = ANALYST_USER
    ) -> dict[str, str]:
        """Edit a record as ``user`` would in the form (state by value or by its label)."""
        with self.lock:
            resolved = dict(values)
            for name, raw in values.items():
                col = self._column(table, name)
                if col is not None and col.choices and raw not in dict(col.choices):
                    by_label = {label: v for v, label in col.choices}
                    resolved[name] = by_label.get(str(raw), raw)
            return dict(self._update(table, sys_id, resolved, user))

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
            if row.get("email") == email:
                return sys_id
        raise KeyError(email)

    def require_for_state(self, table: str, state_label: str, fields: Sequence[str]) -> None:
        """A data policy: records entering ``state_label`` need ``fields`` filled in."""
        col = self._column(table, "state")
        value = {label: v for v, label in (col.choices if col else ())}.get(
            state_label, state_label
        )
        self.state_policies[(table, value)] = tuple(fields)

    def lose_next_answers(
        self, count: int = 1, *, methods: Sequence[str] = ("POST", "PATCH")
    ) -> None:
        """Carry out the next ``count`` such requests, then cut the connection before the answer
        (a write that happened although the client saw a network error)."""
        with self.lock:
            self.lose_answers = count
            self.lose_methods = frozenset(m.upper() for m in methods)

    # -- persistence -------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        with self.lock:
            data = {"rows": self.rows, "counters": self.counters}
            text = json.dumps(data)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        with self.lock:
            for table, rows in data.get("rows", {}).items():
                if table in self.tables:
                    self.rows[table] = rows
            self.counters.update(data.get("counters", {}))

    # -- HTTP ----------------------------------------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode()
        host = headers.get("host", "127.0.0.1")
        base = f"{scope.get('scheme', 'https')}://{host}"
        status, out_headers, payload = self.handle(
            scope["method"], scope["path"], query, headers, body, base=base
        )
        with self.lock:
            lose = self.lose_answers > 0 and scope["method"] in self.lose_methods
            if lose:
                self.lose_answers -= 1
        if lose:
            # The request was carried out; the client only sees the connection cut.
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"content-length", str(len(payload) + 64).encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload[:10]})
            return
        await _send_raw(send, status, payload, out_headers)

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        base: str,
        user: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request, synchronously: (status, headers, body). Used by HTTP and the Batch API."""
        try:
            if path == "/oauth_token.do" and method == "POST":
                return self._oauth(body, headers)
            who = user or self._authenticate(headers)
            if path == "/api/now/v1/batch" and method == "POST":
                return self._batch(body, headers, base=base, user=who)
            m = re.fullmatch(r"/api/now(?:/v[12])?/table/([A-Za-z0-9_]+)(?:/([^/]+))?/?", path)
            if not m:
                raise SimError(400, "Requested URI does not represent any resource", path)
            table, sys_id = m.group(1), m.group(2)
            params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
            with self.lock:
                return self._table(method, table, sys_id, params, headers, body, base, who)
        except SimError as exc:
            payload = json.dumps(exc.body()).encode()
            return exc.status, {"content-type": "application/json"}, payload

    def _authenticate(self, headers: Mapping[str, str]) -> str:
        auth = headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(cred).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", ""
            if user and self.passwords.get(user) == password:
                return user
            raise SimError(401, "User Not Authenticated", "Required to provide Auth information")
        if scheme.lower() == "bearer":
            entry = self.tokens.get(cred)
            if entry and entry[1] > time.time():
                return entry[0]
            raise SimError(401, "User Not Authenticated", "Required to provide Auth information")
        raise SimError(401, "User Not Authenticated", "Required to provide Auth information")

    def _oauth(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        form = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic ") and not client_id:
            try:
                client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = ""
        known = self.oauth_clients.get(client_id)
        grant = form.get("grant_type", "")
        user: str | None = None
        if known and known[0] == secret:
            if grant == "client_credentials":
                user = known[1]
            elif grant == "password":
                name = form.get("username", "")
                if self.passwords.get(name) == form.get("password"):
                    user = name
        if user is None:
            denied = {"error_description": "access_denied", "error": "server_error"}
            return 401, {"content-type": "application/json"}, json.dumps(denied).encode()
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = (user, time.time() + TOKEN_LIFETIME_S)
        payload: dict[str, Json] = {
            "access_token": token,
            "scope": "useraccount",
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_S,
        }
        return 200, {"content-type": "application/json"}, json.dumps(payload).encode()

    def _batch(
        self, body: bytes, headers: Mapping[str, str], *, base: str, user: str
    ) -> tuple[int, dict[str, str], bytes]:
        try:
            data = json.loads(body)
            requests_ = data["rest_requests"]
            batch_id = data.get("batch_request_id", "")
        except (ValueError, KeyError, TypeError) as exc:
            raise SimError(400, "Invalid batch request", str(exc)) from exc
        serviced = []
        for req in requests_:
            url = str(req.get("url", ""))
            path, _, query = url.partition("?")
            inner_headers = {h["name"].lower(): h["value"] for h in req.get("headers", [])}
            inner_body = base64.b64decode(req["body"]) if req.get("body") else b""
            status, out_headers, payload = self.handle(
                str(req.get("method", "GET")).upper(),
                path,
                query,
                inner_headers,
                inner_body,
                base=base,
                user=user,
            )
            serviced.append(
                {
                    "id": req.get("id"),
                    "status_code": status,
                    "status_text": "OK" if status < 400 else "Error",
                    "headers": [{"name": k, "value": v} for k, v in out_headers.items()],
                    "body": base64.b64encode(payload).decode(),
                    "execution_time": 1,
                }
            )
        payload_out = {
            "batch_request_id": str(batch_id),
            "serviced_requests": serviced,
            "unserviced_requests": [],
        }
        return 200, {"content-type": "application/json"}, json.dumps(payload_out).encode()

    def _table(
        self,
        method: str,
        table: str,
        sys_id: str | None,
        params: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        base: str,
        user: str,
    ) -> tuple[int, dict[str, str], bytes]:
        self._spec(table)
        display = params.get("sysparm_display_value", "false").lower()
        if display not in ("true", "false", "all"):
            display = "false"
        exclude = params.get("sysparm_exclude_reference_link", "false").lower() == "true"
        fields = [f.strip() for f in params.get("sysparm_fields", "").split(",") if f.strip()]

        def render(row: Row) -> dict[str, Json]:
            return self.render(
                table,
                row,
                base=base,
                fields=fields or None,
                display=display,
                exclude_links=exclude,
                viewer=user,
            )

        json_headers = {"content-type": "application/json"}
        no_body = headers.get("x-no-response-body", "").lower() == "true"
        if method == "GET" and sys_id is None:
            return self._list(table, params, render, base)
        if method == "GET":
            row = self.rows[table].get(sys_id or "")
            if row is None:
                raise SimError(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return 200, json_headers, json.dumps({"result": render(row)}).encode()
        if method in ("POST", "PATCH", "PUT"):
            if headers.get("content-type", "application/json").split(";")[0].strip() not in (
                "application/json",
                "",
            ):
                raise SimError(415, "Unsupported Media Type", "Only application/json is accepted")
            try:
                values = json.loads(body) if body else {}
            except ValueError as exc:
                raise SimError(400, "Exception while reading request", "Invalid JSON body") from exc
            if not isinstance(values, dict):
                raise SimError(400, "Exception while reading request", "The body must be an object")
        if method == "POST":
            if sys_id is not None:
                raise SimError(405, "Method not Supported", "POST to a record is not allowed")
            row = self._insert(table, values, user)
            out = {**json_headers, "location": f"{base}/api/now/table/{table}/{row['sys_id']}"}
            payload = b"" if no_body else json.dumps({"result": render(row)}).encode()
            return 201, out, payload
        if method in ("PATCH", "PUT"):
            if sys_id is None:
                raise SimError(405, "Method not Supported", f"{method} needs a sys_id")
            row = self._update(table, sys_id, values, user)
            payload = b"" if no_body else json.dumps({"result": render(row)}).encode()
            return 200, json_headers, payload
        if method == "DELETE":
            if sys_id is None:
                raise SimError(405, "Method not Supported", "DELETE needs a sys_id")
            if self.rows[table].pop(sys_id, None) is None:
                raise SimError(
                    404,
                    "No Record found",
                    "Record doesn't exist or ACL restricts the record retrieval",
                )
            return 204, {}, b""
        raise SimError(405, "Method not Supported", f"{method} is not supported")

    def _list(
        self,
        table: str,
        params: dict[str, str],
        render: Any,
        base: str,
    ) -> tuple[int, dict[str, str], bytes]:
        # Plain field=value parameters filter too (Table API docs, "name-value pairs").
        extra = [
            f"{k}={v}"
            for k, v in params.items()
            if not k.startswith("sysparm_") and self._column(table, k)
        ]
        query = "^".join(filter(None, [params.get("sysparm_query", ""), *extra]))
        rows = self.select(table, query)
        try:
            limit = int(params.get("sysparm_limit", "10000"))
            offset = int(params.get("sysparm_offset", "0"))
        except ValueError as exc:
            raise SimError(400, "Invalid sysparm_limit or sysparm_offset", str(exc)) from exc
        limit = max(1, limit)
        offset = max(0, offset)
        total = len(rows)
        page = rows[offset : offset + limit]
        out = {"content-type": "application/json"}
        if params.get("sysparm_no_count", "false").lower() != "true":
            out["x-total-count"] = str(total)
        if params.get("sysparm_suppress_pagination_header", "false").lower() != "true":
            out["link"] = _link_header(base, table, params, offset, limit, total)
        payload = json.dumps({"result": [render(r) for r in page]}).encode()
        return 200, out, payload


def _predicate(term: Term, numeric: bool) -> Callable[[str], bool]:
    """``term`` as a test of one value, with its constant parts computed once."""
    if term.op in ("IN", "NOT IN"):
        wanted = frozenset(term.value.split(","))
        inside = term.op == "IN"

        def in_set(value: str) -> bool:
            return (value in wanted) == inside

        return in_set
    if term.op == "=" and not numeric:
        want = term.value

        def equal(value: str) -> bool:
            return value == want

        return equal

    def general(value: str) -> bool:
        return term_matches(term, value, numeric=numeric)

    return general


def _sort_key(value: str, numeric: bool) -> tuple[int, float, str]:
    if numeric:
        n = _number(value)
        if n is not None:
            return (1, n, "")
    return (0 if value == "" else 1, 0.0, value)


def _as_string(raw: Json) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict):  # {"value": ...} as pysnc may send with display_value=all
        return _as_string(raw.get("value", ""))
    return str(raw)


def _link_header(
    base: str, table: str, params: Mapping[str, str], offset: int, limit: int, total: int
) -> str:
    def url(at: int) -> str:
        q = {**params, "sysparm_offset": str(at), "sysparm_limit": str(limit)}
        return f"<{base}/api/now/table/{table}?{urlencode(q, quote_via=quote)}>"

    last = max(0, ((total - 1) // limit) * limit) if total else 0
    parts = [f'{url(0)};rel="first"']
    if offset > 0:
        parts.append(f'{url(max(0, offset - limit))};rel="prev"')
    if offset + limit < total:
        parts.append(f'{url(offset + limit)};rel="next"')
    parts.append(f'{url(last)};rel="last"')
    return ",".join(parts)


def _fault_response(status: int, retry_after: int | None) -> tuple[bytes, dict[str, str]]:
    """An injected error as an instance sends it (REST rate limiting docs for 429)."""
    headers: dict[str, str] = {}
    if status == 429:
        wait = retry_after if retry_after is not None else 1
        headers = {
            "Retry-After": str(wait),
            "X-RateLimit-Limit": "1000",
            "X-RateLimit-Reset": str(int(time.time()) + wait),
            "X-RateLimit-Rule": "poam-sync simulator rule",
        }
        body = {
            "error": {
                "message": "Rate limit exceeded",
                "detail": "Rate limit of 1000 requests per hour for user exceeded",
            },
            "status": "failure",
        }
    else:
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = {
            "error": {
                "message": "Service unavailable" if status == 503 else "Server error",
                "detail": f"simulated {status}",
            },
            "status": "failure",
        }
    return json.dumps(body).encode(), headers


# -- running it ---------------------------------------------------------------------------------


@dataclass
class RunningServiceNow:
    """A simulator serving HTTPS in a background thread (a context manager)."""

    sim: ServiceNowSimulator
    server: ServerThread
    url: str
    ca_path: Path
    state: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.stop()
        if self.state is not None:
            self.sim.save(self.state)

    def __enter__(self) -> RunningServiceNow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_tls(tls_dir: Path) -> tuple[Path, Path, Path]:
    """A fresh local CA and a server certificate for 127.0.0.1 and localhost: (ca, cert, key)."""
    tls_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="poam-sync simulator CA")
    cert = ca.issue_cert("127.0.0.1", "localhost", "::1")
    ca_path = tls_dir / "servicenow-ca.pem"
    cert_path = tls_dir / "servicenow-cert.pem"
    key_path = tls_dir / "servicenow-key.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(cert_path), append=True)
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def start_servicenow_simulator(
    *,
    tls_dir: Path,
    latency_ms: int = 0,
    state: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    sim: ServiceNowSimulator | None = None,
) -> RunningServiceNow:
    """Start a simulator on ``host:port`` (0: any free port) over HTTPS; stop it with ``stop()``."""
    sim = sim or ServiceNowSimulator()
    if state is not None and state.exists():
        sim.load(state)
    sim.control.set_latency(latency_ms)
    ca_path, cert_path, key_path = write_tls(tls_dir)
    server = ServerThread(
        sim.app, host=host, port=port, ssl_certfile=str(cert_path), ssl_keyfile=str(key_path)
    )
    url = server.start()
    return RunningServiceNow(sim=sim, server=server, url=url, ca_path=ca_path, state=state)


@contextmanager
def running(tls_dir: Path, **kw: Any) -> Iterator[RunningServiceNow]:
    run = start_servicenow_simulator(tls_dir=tls_dir, **kw)
    try:
        yield run
    finally:
        run.stop()


def serve(*, host: str, port: int, tls_dir: Path, state: Path | None, latency_ms: int) -> None:
    """Run the simulator until interrupted; prints its base URL and CA path when ready."""
    run = start_servicenow_simulator(
        tls_dir=tls_dir, latency_ms=latency_ms, state=state, host=host, port=port
    )
    print(f"ServiceNow simulator ready at {run.url}", flush=True)
    print(f"CA certificate: {run.ca_path}", flush=True)
    print(
        f"basic auth {ADMIN_USER} / {ADMIN_PASSWORD}; OAuth client {OAUTH_CLIENT_ID} / "
        f"{OAUTH_CLIENT_SECRET}",
        flush=True,
    )

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()
    # stop (and save the state) on SIGTERM as on Ctrl-C; signals reach the main thread only
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        while run.server.thread.is_alive():
            run.server.thread.join(timeout=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        run.stop()
