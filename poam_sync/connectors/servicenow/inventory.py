"""The sys_ids of every record in the connector's scope, and nothing else: the engine's
periodic reconcile compares them with its links to find records deleted in ServiceNow (an
incremental pull never shows a deletion).

A Table API read of the configured table with ``sysparm_fields=sys_id`` and the scope query the
pull uses (``settings.query``), paged as every read of this connector is: by keyset on
``sys_id`` (``ORDERBYsys_id``, ``sys_id>`` the last one seen), ending at the first short page
(ServiceNow docs, "Table API": ``GET /now/table/{tableName}``, parameters ``sysparm_fields``,
``sysparm_query``, ``sysparm_limit``). The engine asks again by id for any linked record the
listing lacks, so a record that only left the scope is never taken for deleted.
"""

from __future__ import annotations

from poam_sync.connectors.servicenow.client import TableClient

__all__ = ["list_sys_ids"]


def list_sys_ids(client: TableClient, table: str, scope: str | None) -> list[str]:
    """Every sys_id of ``table`` matching ``scope``, each once."""
    ids = {str(row["sys_id"][0]) for row in client.select(table, ["sys_id"], scope or "")}
    ids.discard("")
    return sorted(ids)
