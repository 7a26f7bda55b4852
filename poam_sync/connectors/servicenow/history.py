"""Who changed each field last, and when: from ``sys_audit`` where the user may read it.

An instance writes one ``sys_audit`` row per field an insert or update of an audited table
changed (task tables are audited): ``tablename``, ``documentkey`` (the record's sys_id),
``fieldname``, ``oldvalue``, ``newvalue`` (a reference as its sys_id, a date/time in UTC),
``user`` and ``sys_created_on`` (ServiceNow docs, "Sys Audit and Audit Relationship Change
tables"). The newest row of a field is its last change: a
:class:`~poam_sync.connectors.base.FieldChange` with source ``history``. Two rows of one field
in the same second are told apart by the one whose ``newvalue`` is the current value.

A field without a row since the pull's watermark (an unaudited table or column; the first pull),
and every field when ``sys_audit`` cannot be read (it is admin-only on a stock instance), is
left out: the engine then credits the record's ``sys_updated_by`` and says so ("last to edit
the record"); the connector logs which source it used on each pull.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from poam_sync.connectors.base import FieldChange
from poam_sync.connectors.servicenow.client import Row, TableClient, chunks
from poam_sync.connectors.servicenow.metadata import report_unreadable
from poam_sync.connectors.servicenow.records import sn_time

_FIELDS = ["documentkey", "fieldname", "newvalue", "user", "sys_created_on"]
AUDIT = "sys_audit"


class FieldHistory:
    """The last change of each mapped column of a table's records, from ``sys_audit``."""

    def __init__(self, client: TableClient, table: str, columns: Mapping[str, str]) -> None:
        self._client = client
        self.table = table
        self._canonical = {column: name for name, column in columns.items()}
        #: False once the integration user was refused sys_audit
        self.readable = True

    def _select(self, query: str) -> list[Row]:
        return list(self._client.select(AUDIT, _FIELDS, query))

    def probe(self) -> bool:
        """Whether sys_audit can be read (one small read); for ``config check``."""
        self.readable = self.readable and self._client.may_read(AUDIT, f"tablename={self.table}")
        return self.readable

    @property
    def source(self) -> str:
        """What field actors come from, for the log."""
        return "sys_audit" if self.readable else "sys_updated_by"

    def read(self, rows: Sequence[Row], since: str | None) -> dict[str, dict[str, FieldChange]]:
        """sys_id -> canonical field -> its last change at or after ``since`` (an encoded
        ``sys_created_on>=`` bound; None: nothing is read), for a page of records.

        Only changes since the pull's watermark matter (an older one is no change to take),
        and they are few: the first pull, which would read every record's whole history,
        credits the record's last updater."""
        out: dict[str, dict[str, FieldChange]] = {r["sys_id"][0]: {} for r in rows}
        if not rows or not self.readable or not self._canonical or since is None:
            return out
        current = {r["sys_id"][0]: r for r in rows}
        columns = ",".join(sorted(self._canonical))
        newest: dict[tuple[str, str], tuple[str, bool, Row]] = {}
        for chunk in chunks(list(current), 100):
            query = (
                f"tablename={self.table}^documentkeyIN{','.join(chunk)}^fieldnameIN{columns}"
                f"^{since}"
            )
            refused, audits = self._client.refused(AUDIT, partial(self._select, query))
            if refused:
                self.readable = False
                report_unreadable(self._client.connector, AUDIT)
                return {sys_id: {} for sys_id in out}
            for audit in audits or []:
                key = (audit["documentkey"][0], audit["fieldname"][0])
                record = current.get(key[0])
                if record is None:
                    continue
                now = record.get(key[1], ("", ""))[0]
                rank = (audit["sys_created_on"][0], audit["newvalue"][0] == now, audit)
                if key not in newest or rank[:2] > newest[key][:2]:
                    newest[key] = rank
        for (sys_id, column), (created, _, audit) in newest.items():
            out[sys_id][self._canonical[column]] = FieldChange(
                audit["user"][0] or None, sn_time(created) if created else None, "history"
            )
        return out
