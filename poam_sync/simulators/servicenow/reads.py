"""Reading records: selecting by encoded query, dot-walking, and display values.

Display values of date-times are shown in the acting user's time zone, as on an instance;
raw values are UTC. ``sysparm_display_value`` (``true``/``false``/``all``) and reference links
shape each rendered field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
