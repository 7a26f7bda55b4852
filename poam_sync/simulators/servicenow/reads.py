"""Reading records: selecting by encoded query, dot-walking, and display values.

Date/time columns (``glide_date_time``: ``sys_updated_on``, and ``due_date``, which a GRC issue
inherits from task) hold UTC: "All times are stored in Coordinated Universal Time (UTC). They
are displayed globally based on the system time zone, but are displayed to users in their local
time zone according to user preferences" (ServiceNow docs, "Time zones",
https://docs.servicenow.com/bundle/geneva-servicenow-platform/page/administer/time/reference/r_TimeZones.html).
So a raw value (``sysparm_display_value=false``, or ``value`` with ``all``) is UTC, and a value
written as text through the Table API is taken as UTC ("If you pass the information as TEXT ...
it's considered as UTC"; "The WS date/time responses come back in UTC as well", ServiceNow
community, "SOAP web service and time zones examples"); a display value is in the acting user's
time zone, or the system time zone (``glide.sys.default.tz`` in ``sys_properties``;
:attr:`~.state.ServiceNowState.time_zone`) for a user who has none. Date columns
(``glide_date``) are plain days. ``sysparm_display_value`` (``true``/``false``/``all``) and
reference links shape each rendered field.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from poam_sync.simulators.servicenow.model import Json, Row
from poam_sync.simulators.servicenow.query import EncodedQuery, _predicate, _sort_key, parse_query
from poam_sync.simulators.servicenow.tables import _SYSTEM_COLUMNS
from poam_sync.simulators.servicenow.webhooks import ServiceNowWebhooks


class ServiceNowReads(ServiceNowWebhooks):
    """Selecting and rendering records as the Table API shows them."""

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
        rows: Iterable[Row] = self._by_document(table, parsed) or self.rows[table].values()
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

    def _by_document(self, table: str, parsed: EncodedQuery) -> list[Row] | None:
        """The ``sys_audit`` rows a ``documentkey=`` / ``documentkeyIN`` term can match, from an
        index; None: no such term. The whole query is still applied to them, so every answer is
        what a scan gives (a test checks it): this only keeps the simulator's own CPU from
        growing with every audit row ever written. It models no speed of a real instance, whose
        audit table is among its largest and slow to query ("Never directly report on or even
        query the Audit table", Mastering ServiceNow, "Using auditing responsibly"; "Audit
        tables are taking a long time to load", ServiceNow KB0832516): the connector reads it
        only for records that changed, in chunks."""
        if table != "sys_audit":
            return None
        term = next(
            (
                g[0]
                for g in parsed.groups
                if len(g) == 1 and g[0].field == "documentkey" and g[0].op in ("=", "IN")
            ),
            None,
        )
        if term is None:
            return None
        index = self._audit_index()
        keys = {term.value.lower()} if term.op == "=" else set(term.value.lower().split(","))
        found = sorted((hit for k in keys for hit in index.get(k, ())), key=lambda h: h[0])
        return [row for _, row in found]

    def _audit_index(self) -> dict[str, list[tuple[int, Row]]]:
        """document key -> its audit rows with their place in creation order; brought up to
        date with the rows written since (the audit table only grows)."""
        rows = self.rows["sys_audit"]
        index: dict[str, list[tuple[int, Row]]] = self.__dict__.setdefault("_audit_by_doc", {})
        seen: int = self.__dict__.get("_audit_seen", 0)
        if len(rows) < seen or self.__dict__.get("_audit_rows") is not rows:  # a new state
            index.clear()
            seen = 0
            self.__dict__["_audit_rows"] = rows
        if len(rows) > seen:
            for n, row in enumerate(itertools.islice(rows.values(), seen, None), start=seen):
                index.setdefault(str(row.get("documentkey", "")).lower(), []).append((n, row))
            self.__dict__["_audit_seen"] = len(rows)
        return index

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
            translated = self._translated(table, name, value, viewer)
            return translated or dict(col.choices).get(value, value)
        if col.type == "glide_date_time":
            return self._local_time(value, viewer)
        return value

    def user_time_zone(self, user_name: str) -> str:
        """The user's own time zone, else the instance's (a profile's default)."""
        for user in self.rows["sys_user"].values():
            if user.get("user_name") == user_name and user.get("time_zone"):
                return user["time_zone"]
        return self.time_zone

    def _translated(self, table: str, name: str, value: str, viewer: str) -> str | None:
        """A choice's label in the viewer's language (``sys_user.preferred_language``), as an
        instance renders display values in the session's language; None for English."""
        if not self.translated:
            return None
        language = next(
            (
                u.get("preferred_language", "")
                for u in self.rows["sys_user"].values()
                if u.get("user_name") == viewer
            ),
            "",
        )
        if not language or language == "en":
            return None
        found: dict[str, str] = {}  # table -> label: the table's own row wins over its parent's
        for row in self.rows["sys_choice"].values():
            if row["language"] == language and row["element"] == name and row["value"] == value:
                found[row["name"]] = row["label"]
        return found.get(table) or found.get(self.tables[table].extends or "")

    def _hidden(self, table: str, name: str, viewer: str) -> bool:
        """Whether a field-level ACL hides ``name`` (dot-walked too) from ``viewer``."""
        if not self.hidden_fields or viewer in self.admins:
            return False
        head, _, rest = name.partition(".")
        if not rest:
            return (table, name) in self.hidden_fields
        col = self._column(table, head)
        target = col.reference if col is not None else None
        return target is not None and self._hidden(target, rest, viewer)

    def _is_date_time(self, table: str, name: str) -> bool:
        col = self._column(table, name)
        return col is not None and col.type == "glide_date_time"

    def from_display(self, table: str, values: Mapping[str, Json], user: str) -> dict[str, Json]:
        """Values given as display values (``sysparm_input_display_value=true``, or a person
        at the form): a choice by its label, a date/time in ``user``'s time zone. References
        resolve by display value on every write anyway (see .records)."""
        out = dict(values)
        for name, raw in values.items():
            col = self._column(table, name)
            if col is None or raw is None:
                continue
            if col.choices and raw not in dict(col.choices):
                out[name] = {label: v for v, label in col.choices}.get(str(raw), raw)
            if col.type == "glide_date_time" and raw:
                out[name] = self._utc_of_local(str(raw), user)
        return out

    def _utc_of_local(self, shown: str, user: str) -> str:
        try:
            local = datetime.strptime(shown, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return shown  # kept as typed, as any other value the instance cannot parse
        zone = ZoneInfo(self.user_time_zone(user))
        return local.replace(tzinfo=zone).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    def _local_time(self, value: str, viewer: str) -> str:
        return _local_time(value, self.user_time_zone(viewer))

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
            if self._hidden(table, name, viewer):
                # a field-level read ACL: the field comes back empty (ServiceNow KB2971488,
                # "API response returns empty fields"; the record itself is readable)
                out[name] = {"display_value": "", "value": ""} if display == "all" else ""
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


@functools.lru_cache(maxsize=4096)
def _local_time(value: str, tz: str) -> str:
    """A stored UTC date/time shown in zone ``tz`` (text that does not parse, as it is); the
    same few seconds' stamps are shown over and over, so each is converted once."""
    try:
        when = datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return value
    return when.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S")
