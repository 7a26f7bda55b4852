"""What the instance says about its own columns: choice codes and text lengths.

State and priority codes are instance configuration, so the mapping speaks choice *labels* and
the codes behind them are read from ``sys_choice``; a label the instance lacks is a
:class:`~poam_sync.errors.ConfigError` naming the choices there are. Text columns are cut to
their ``max_length`` (``sys_dictionary``) by the instance, so the projection cuts them too.

Both are read *through inheritance*: ``sn_grc_issue`` extends ``task``, and the dictionary row
of an inherited column (``short_description``, ``priority``...) exists only under
``name=task``, as do its choices unless the child table overrides them (the GRC issue's own
states). :func:`table_hierarchy` follows ``sys_db_object.super_class`` (community answer "Get a
list of all parents of a table"; GlideTableHierarchy.getTables() gives ``incident,task``: the
table first, then its ancestors), and a column's metadata is taken from the nearest table of
that chain that has rows for it (ServiceNow docs, "Dictionary overrides": a child table may
define an inherited field differently; istanbul "Choice lists and system update sets": a
choice added for an extended table is stored for that table only).

:func:`load_metadata` is what :meth:`ServiceNowConnector.prepare
<poam_sync.connectors.servicenow.connector.ServiceNowConnector.prepare>` runs: a few paged
reads, once per connector, so that the projection the planner calls makes no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import structlog

from poam_sync.connectors.servicenow.client import TableClient
from poam_sync.connectors.servicenow.dates import DATE_TIME, day_of, stored_value
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.errors import ConfigError, RemoteError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Metadata:
    """What was discovered on the instance: choice codes and column lengths."""

    codes: dict[str, dict[str, str]]  # "table.column" -> label -> value
    labels: dict[str, dict[str, str]]  # "table.column" -> value -> label
    lengths: dict[str, int]  # ServiceNowMapping.project key -> max length
    #: "table.column" -> the table whose rows were used ("task" for an inherited column)
    sources: dict[str, str] = field(default_factory=dict)
    #: "table.column" -> sys_dictionary internal_type of the date columns
    types: dict[str, str] = field(default_factory=dict)
    #: the instance's time zone, in which date/time columns are read and written as days
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    #: where the zone came from: "settings", "glide.sys.default.tz" or "unknown (UTC)"
    zone_source: str = "settings"
    #: system tables the integration user cannot read (a least-privilege user), see
    #: :data:`WHAT_IS_LOST`
    unreadable: tuple[str, ...] = ()

    @property
    def choices_unreadable(self) -> bool:
        return "sys_choice" in self.unreadable

    def learn(self, table: str, column: str, value: str, label: str) -> None:
        """A (code, label) pair a record showed (``sysparm_display_value=all``), for a choice
        column whose ``sys_choice`` rows cannot be read."""
        key = f"{table}.{column}"
        if not value or not label or not self.choices_unreadable:
            return
        self.codes.setdefault(key, {}).setdefault(label, value)
        self.labels.setdefault(key, {}).setdefault(value, label)

    def day(self, table: str, column: str, raw: str) -> str | None:
        """The canonical day of a stored date or date/time value."""
        return day_of(raw, self.column_type(table, column), self.zone)

    def stored_day(self, table: str, column: str, day: str | None) -> str:
        """The value to write for canonical ``day``."""
        return stored_value(day, self.column_type(table, column), self.zone)

    def column_type(self, table: str, column: str) -> str:
        """The dictionary's type, else the stock one: ``due_date`` (task's) is a date/time."""
        known = self.types.get(f"{table}.{column}")
        if known:
            return known
        return DATE_TIME if column == "due_date" else "glide_date"

    def code(self, table: str, column: str, label: str) -> str | None:
        return self.codes.get(f"{table}.{column}", {}).get(label)

    def label(self, table: str, column: str, value: str) -> str | None:
        return self.labels.get(f"{table}.{column}", {}).get(value)


def load_metadata(
    client: TableClient,
    mapping: ServiceNowMapping,
    *,
    table: str,
    milestone_table: str,
    time_zone: str | None = None,
    language: str = "en",
) -> Metadata:
    """Choice codes (``sys_choice``) and column lengths (``sys_dictionary``) for ``mapping``.

    Raises the :class:`~poam_sync.errors.RemoteError` subclass of the failure (after the
    client's retries), its message saying what could not be loaded; a
    :class:`~poam_sync.errors.ConfigError` when a mapped label is no choice of the instance.
    """
    lost: list[str] = []
    try:
        chains = {t: table_hierarchy(client, t) for t in dict.fromkeys([table, milestone_table])}

        def choices(readable: bool = True) -> _Choices:
            return _choices(
                client,
                mapping,
                chains,
                table=table,
                milestone_table=milestone_table,
                readable=readable,
                language=language,
            )

        refused, read = client.refused("sys_choice", choices)
        if refused or read is None:
            lost.append("sys_choice")
            read = choices(readable=False)
        codes, labels, sources = read
        refused, dictionary = client.refused(
            "sys_dictionary",
            lambda: _dictionary(
                client, mapping, chains, table=table, milestone_table=milestone_table
            ),
        )
        if refused or dictionary is None:
            lost.append("sys_dictionary")
            dictionary = {}, {}
        lengths, types = dictionary
        zone, zone_source = _zone(client, time_zone if time_zone else None, lost)
    except RemoteError as exc:
        raise _explained(exc) from exc
    unreadable = tuple(lost)
    for t in unreadable:
        report_unreadable(client.connector, t)
    if "sys_dictionary" in unreadable:
        lengths = {k: STOCK_LENGTHS[k.rpartition(".")[2]] for k in _length_keys(mapping)}
    if "sys_choice" not in unreadable:
        _check_labels(
            codes,
            mapping,
            table=table,
            milestone_table=milestone_table,
            connector=client.connector,
            sources=sources,
        )
    return Metadata(codes, labels, lengths, sources, types, zone, zone_source, unreadable)


#: the system tables a least-privilege integration user may be refused (admin-only on a stock
#: instance), and what the connector does without each
WHAT_IS_LOST = {
    "sys_choice": "state and priority codes are learnt from the records read, and a label not "
    "seen yet is written as a display value (sysparm_input_display_value); the mapping's labels "
    "cannot be checked at start-up",
    "sys_dictionary": "column lengths and types are a stock task's (short_description 160, "
    "description 4000; due_date a date/time)",
    "sys_journal_field": "work notes are written but not read back: notes added in ServiceNow "
    "are not synced, and a note whose answer was lost may be written twice",
    "sys_audit": "each field change is credited to the record's last updater (sys_updated_by)",
    "sys_properties": "the instance's time zone (glide.sys.default.tz) is unknown: set "
    "time_zone in the connector settings",
}


def report_unreadable(connector: str, table: str) -> None:
    """Log, once per discovery, a system table the integration user may not read."""
    log.warning(
        "servicenow.cannot_read",
        connector=connector,
        system_table=table,
        consequence=WHAT_IS_LOST[table],
        hint=f"give the integration user a role that may read {table} to sync fully",
    )


_Choices = tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, str]]

#: the lengths of a stock instance's task columns, used when sys_dictionary cannot be read
STOCK_LENGTHS = {"short_description": 160, "description": 4000}


def _length_keys(mapping: ServiceNowMapping) -> list[str]:
    """The projection keys of the text columns whose stock length is known."""
    m = mapping
    keys = [m.fields[f] for f in ("title", "description") if f in m.fields]
    if m.milestones is not None:
        keys.append(f"milestone.{m.milestones.description_field}")
    return [k for k in keys if k.rpartition(".")[2] in STOCK_LENGTHS]


#: the system property holding the instance's time zone (ServiceNow docs, "Time zones":
#: "Administrators should configure their system with a default timezone glide.sys.default.tz")
ZONE_PROPERTY = "glide.sys.default.tz"


def _zone(client: TableClient, configured: str | None, lost: list[str]) -> tuple[ZoneInfo, str]:
    """The zone date/time columns are read and written in: the setting, else the instance's
    ``glide.sys.default.tz``, else UTC (logged: set ``time_zone`` in the settings). Adds
    ``sys_properties`` to ``lost`` when the user may not read it."""
    if configured:
        return ZoneInfo(configured), "settings"
    refused, rows = client.refused(
        "sys_properties",
        lambda: client.page(
            "sys_properties", ["name", "value"], f"name={ZONE_PROPERTY}", after=None, size=1
        ),
    )
    if refused:
        lost.append("sys_properties")
    name = rows[0]["value"][0].strip() if rows else ""
    try:
        return ZoneInfo(name), ZONE_PROPERTY
    except (ValueError, KeyError, OSError):  # empty, unreadable, or no zone zoneinfo knows
        log.warning(
            "servicenow.time_zone_unknown",
            connector=client.connector,
            property=ZONE_PROPERTY,
            value=name or None,
            hint="set time_zone in the connector settings; due dates are read in UTC meanwhile",
        )
        return ZoneInfo("UTC"), "unknown (UTC)"


#: deeper than any stock hierarchy (cmdb_ci_aix_server is six levels down); a guard on loops
_MAX_DEPTH = 12


def table_hierarchy(client: TableClient, table: str) -> list[str]:
    """``table`` and its ancestors, nearest first (``["sn_grc_issue", "task"]``).

    An instance whose ``sys_db_object`` has no row for ``table`` (or does not let us read it)
    gives ``[table]``: metadata is then read from the table alone, as before."""
    chain = [table]
    while len(chain) < _MAX_DEPTH:
        rows = client.page(
            "sys_db_object", ["name", "super_class.name"], f"name={chain[-1]}", after=None, size=1
        )
        parent = rows[0].get("super_class.name", ("", ""))[0] if rows else ""
        if not parent or parent in chain:
            break
        chain.append(parent)
    return chain


def _nearest(chain: list[str], found: Mapping[str, object]) -> str | None:
    """The first table of ``chain`` that ``found`` has rows for."""
    return next((t for t in chain if t in found), None)


def _explained(exc: RemoteError) -> RemoteError:
    """``exc`` again, same class and facts, its message saying what it stopped."""
    return exc.retold(
        "cannot load the instance's choice lists (sys_choice) and column lengths "
        f"(sys_dictionary), which every read and write needs: {exc.message}"
    )


def _choices(
    client: TableClient,
    mapping: ServiceNowMapping,
    chains: Mapping[str, list[str]],
    *,
    table: str,
    milestone_table: str,
    readable: bool = True,
    language: str = "en",
) -> _Choices:
    m = mapping
    wanted: list[tuple[str, str]] = []
    if "status" in m.fields:
        wanted.append((table, m.fields["status"]))
    if "original_risk" in m.fields:
        wanted.append((table, m.fields["original_risk"]))
    if m.milestones is not None:
        wanted.append((milestone_table, m.milestones.state_field))
    codes: dict[str, dict[str, str]] = {f"{t}.{c}": {} for t, c in wanted}
    labels: dict[str, dict[str, str]] = {f"{t}.{c}": {} for t, c in wanted}
    sources: dict[str, str] = {}
    if not wanted or not readable:
        return codes, labels, sources
    tables = sorted({a for t, _ in wanted for a in chains[t]})
    query = (
        f"nameIN{','.join(tables)}^elementIN{','.join(sorted({c for _, c in wanted}))}"
        "^inactive=false"
    )
    # element -> defining table -> [(value, label)] in the instance's order, in the mapping's
    # language: a multi-language instance has a row per choice and language, the same value in
    # each (ServiceNow docs, "Choices table"); rows of another language are never taken, and a
    # table with none in that language gives its rows of the first language seen, once each
    rows: dict[str, dict[str, dict[str, list[tuple[str, str]]]]] = {}
    fields = ["name", "element", "value", "label", "language"]
    for row in client.select("sys_choice", fields, query):
        per_table = rows.setdefault(row["element"][0], {}).setdefault(row["name"][0], {})
        per_table.setdefault(row["language"][0] or "en", []).append(
            (row["value"][0], row["label"][0])
        )
    found: dict[str, dict[str, list[tuple[str, str]]]] = {
        element: {
            name: by_language.get(language) or next(iter(by_language.values()))
            for name, by_language in per_table.items()
        }
        for element, per_table in rows.items()
    }
    for t, column in wanted:
        key = f"{t}.{column}"
        source = _nearest(chains[t], found.get(column, {}))
        if source is None:
            continue
        sources[key] = source
        for value, label in found[column][source]:
            codes[key].setdefault(label, value)
            labels[key].setdefault(value, label)
    return codes, labels, sources


def _dictionary(
    client: TableClient,
    mapping: ServiceNowMapping,
    chains: Mapping[str, list[str]],
    *,
    table: str,
    milestone_table: str,
) -> tuple[dict[str, int], dict[str, str]]:
    """Column lengths of the text columns (by projection key) and the types of the date
    columns (by ``table.column``), each from the nearest table of the chain defining it."""
    m = mapping
    # (table, column) -> the projection's key
    wanted = {(table, m.fields[f]): m.fields[f] for f in ("title", "description") if f in m.fields}
    dates = {
        (table, m.fields[f]) for f in ("due_date", "scheduled_completion_date") if f in m.fields
    }
    if m.milestones is not None:
        column = m.milestones.description_field
        wanted[(milestone_table, column)] = f"milestone.{column}"
        dates.add((milestone_table, m.milestones.due_date_field))
    if not wanted and not dates:
        return {}, {}
    tables = sorted({a for t, _ in (*wanted, *dates) for a in chains[t]})
    elements = sorted({c for _, c in (*wanted, *dates)})
    query = f"nameIN{','.join(tables)}^elementIN{','.join(elements)}"
    lengths_found: dict[str, dict[str, int]] = {}  # element -> defining table -> max length
    types_found: dict[str, dict[str, str]] = {}  # element -> defining table -> internal type
    fields = ["name", "element", "max_length", "internal_type"]
    for row in client.select("sys_dictionary", fields, query):
        name, element, length = row["name"][0], row["element"][0], row["max_length"][0]
        if length.isdigit():
            lengths_found.setdefault(element, {})[name] = int(length)
        if row["internal_type"][0]:
            types_found.setdefault(element, {})[name] = row["internal_type"][0]
    lengths: dict[str, int] = {}
    for (t, column), key in wanted.items():
        source = _nearest(chains[t], lengths_found.get(column, {}))
        if source is not None:
            lengths[key] = lengths_found[column][source]
    types: dict[str, str] = {}
    for t, column in dates:
        source = _nearest(chains[t], types_found.get(column, {}))
        if source is not None:
            types[f"{t}.{column}"] = types_found[column][source]
    return lengths, types


def _check_labels(
    codes: Mapping[str, Mapping[str, str]],
    mapping: ServiceNowMapping,
    *,
    table: str,
    milestone_table: str,
    connector: str,
    sources: Mapping[str, str],
) -> None:
    """Every label the mapping writes or reads back is a choice of the instance."""
    m = mapping
    checks: list[tuple[str, str, str, list[tuple[str, str]]]] = []  # section, table, column
    if "status" in m.fields:
        checks.append(
            (
                "states",
                table,
                m.fields["status"],
                [(s.value, label) for s, label in m.states.items()],
            )
        )
        checks.append(("state_read_back", table, m.fields["status"], _keys(m.state_read_back)))
    if "original_risk" in m.fields:
        column = m.fields["original_risk"]
        checks.append(("risks", table, column, [(r.value, lb) for r, lb in m.risks.items()]))
        checks.append(("risk_read_back", table, column, _keys(m.risk_read_back)))
    if m.milestones is not None:
        ms = m.milestones
        checks.append(
            (
                "milestones.states",
                milestone_table,
                ms.state_field,
                [(s.value, label) for s, label in ms.states.items()],
            )
        )
    problems = []
    for section, t, column, entries in checks:
        key = f"{t}.{column}"
        known = codes[key]
        where = f"{key}, read from sys_choice name={sources.get(key, t)}"
        for name, label in entries:
            if label not in known:
                problems.append(
                    f"{section}.{name} <- {label!r} is not a choice of {where} "
                    f"(choices: {', '.join(known) or 'none'})"
                )
    if problems:
        raise ConfigError(
            "\n".join(f"[{connector} mapping] {p}" for p in problems),
            hint="use the labels the instance shows in sys_choice, or add the choices there",
        )


def _keys(read_back: Mapping[str, object]) -> list[tuple[str, str]]:
    """A read-back section's labels as (entry name, label) pairs: the label is the key."""
    return [(label, label) for label in read_back]
