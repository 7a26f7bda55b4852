"""What the instance says about its own columns: choice codes and text lengths.

State and priority codes are instance configuration, so the mapping speaks choice *labels* and
the codes behind them are read from ``sys_choice``; a label the instance lacks is a
:class:`~poam_sync.errors.ConfigError` naming the choices there are. Text columns are cut to
their ``max_length`` (``sys_dictionary``) by the instance, so the projection cuts them too.

:func:`load_metadata` is what :meth:`ServiceNowConnector.prepare
<poam_sync.connectors.servicenow.connector.ServiceNowConnector.prepare>` runs: two paged reads,
once per connector, so that the projection the planner calls makes no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from poam_sync.connectors.servicenow.client import TableClient
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping
from poam_sync.errors import ConfigError, RemoteError, RemoteTransientError


@dataclass(frozen=True)
class Metadata:
    """What was discovered on the instance: choice codes and column lengths."""

    codes: dict[str, dict[str, str]]  # "table.column" -> label -> value
    labels: dict[str, dict[str, str]]  # "table.column" -> value -> label
    lengths: dict[str, int]  # ServiceNowMapping.project key -> max length

    def code(self, table: str, column: str, label: str) -> str | None:
        return self.codes.get(f"{table}.{column}", {}).get(label)

    def label(self, table: str, column: str, value: str) -> str | None:
        return self.labels.get(f"{table}.{column}", {}).get(value)


def load_metadata(
    client: TableClient, mapping: ServiceNowMapping, *, table: str, milestone_table: str
) -> Metadata:
    """Choice codes (``sys_choice``) and column lengths (``sys_dictionary``) for ``mapping``.

    Raises the :class:`~poam_sync.errors.RemoteError` subclass of the failure (after the
    client's retries), its message saying what could not be loaded; a
    :class:`~poam_sync.errors.ConfigError` when a mapped label is no choice of the instance.
    """
    try:
        codes, labels = _choices(client, mapping, table=table, milestone_table=milestone_table)
        lengths = _lengths(client, mapping, table=table, milestone_table=milestone_table)
    except RemoteError as exc:
        raise _explained(exc) from exc
    _check_labels(
        codes, mapping, table=table, milestone_table=milestone_table, connector=client.connector
    )
    return Metadata(codes, labels, lengths)


def _explained(exc: RemoteError) -> RemoteError:
    """``exc`` again, same class and facts, its message saying what it stopped."""
    message = (
        "cannot load the instance's choice lists (sys_choice) and column lengths "
        f"(sys_dictionary), which every read and write needs: {exc.message}"
    )
    if isinstance(exc, RemoteTransientError):
        return RemoteTransientError(
            message,
            retry_after=exc.retry_after,
            connector=exc.connector,
            key=exc.key,
            status=exc.status,
            hint=exc.hint,
        )
    return type(exc)(
        message, connector=exc.connector, key=exc.key, status=exc.status, hint=exc.hint
    )


def _choices(
    client: TableClient, mapping: ServiceNowMapping, *, table: str, milestone_table: str
) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
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
    if wanted:
        tables = sorted({t for t, _ in wanted})
        query = (
            f"nameIN{','.join(tables)}^elementIN{','.join(sorted({c for _, c in wanted}))}"
            "^inactive=false"
        )
        for row in client.select("sys_choice", ["name", "element", "value", "label"], query):
            key = f"{row['name'][0]}.{row['element'][0]}"
            if key in codes:
                codes[key].setdefault(row["label"][0], row["value"][0])
                labels[key].setdefault(row["value"][0], row["label"][0])
    return codes, labels


def _lengths(
    client: TableClient, mapping: ServiceNowMapping, *, table: str, milestone_table: str
) -> dict[str, int]:
    m = mapping
    lengths: dict[str, int] = {}
    text_columns = {m.fields[f]: f for f in ("title", "description") if f in m.fields}
    dict_tables = [table]
    if m.milestones is not None:
        dict_tables.append(milestone_table)
    query = f"nameIN{','.join(dict_tables)}"
    for row in client.select("sys_dictionary", ["name", "element", "max_length"], query):
        name, element, length = row["name"][0], row["element"][0], row["max_length"][0]
        if not length.isdigit():
            continue
        if name == table and element in text_columns:
            lengths[element] = int(length)
        if (
            m.milestones is not None
            and name == milestone_table
            and element == m.milestones.description_field
        ):
            lengths[f"milestone.{element}"] = int(length)
    return lengths


def _check_labels(
    codes: Mapping[str, Mapping[str, str]],
    mapping: ServiceNowMapping,
    *,
    table: str,
    milestone_table: str,
    connector: str,
) -> None:
    m = mapping
    problems = []
    if "status" in m.fields:
        known = codes[f"{table}.{m.fields['status']}"]
        for status, label in m.states.items():
            if label not in known:
                problems.append(
                    f"states.{status.value} <- {label!r} is not a choice of "
                    f"{table}.{m.fields['status']} (choices: {', '.join(known) or 'none'})"
                )
    if "original_risk" in m.fields:
        known = codes[f"{table}.{m.fields['original_risk']}"]
        for risk, label in m.risks.items():
            if label not in known:
                problems.append(
                    f"risks.{risk.value} <- {label!r} is not a choice of "
                    f"{table}.{m.fields['original_risk']} "
                    f"(choices: {', '.join(known) or 'none'})"
                )
    if m.milestones is not None:
        known = codes[f"{milestone_table}.{m.milestones.state_field}"]
        for ms, label in m.milestones.states.items():
            if label not in known:
                problems.append(
                    f"milestones.states.{ms.value} <- {label!r} is not a choice of "
                    f"{milestone_table}.{m.milestones.state_field} "
                    f"(choices: {', '.join(known) or 'none'})"
                )
    if problems:
        raise ConfigError(
            "\n".join(f"[{connector} mapping] {p}" for p in problems),
            hint="use the labels the instance shows in sys_choice, or add the choices there",
        )
