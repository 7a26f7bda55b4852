"""Work notes: written by PATCHing ``work_notes``, read back from ``sys_journal_field``.

Notes we write carry a marker line (:func:`~poam_sync.connectors.base.mark_note`), so reading
them back keeps their canonical id and never looks like a new remote comment. Work notes and
additional comments are both read. A PATCH of ``work_notes`` is not safe to repeat (each one
appends a journal entry), so before every write, the first one included, the journal is read
for the note's marker: a note whose answer was lost, or that a crashed run wrote before it could
record so, is found there and never written twice. The journal (``sys_journal_field``) is read
through the Table API, which shows an entry as soon as it is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from poam_sync.connectors.base import mark_note, parse_note
from poam_sync.connectors.servicenow.client import Row, TableClient, chunks
from poam_sync.connectors.servicenow.metadata import report_unreadable
from poam_sync.connectors.servicenow.records import sn_time
from poam_sync.model import Note

JOURNAL_ELEMENTS = ("work_notes", "comments")
JOURNAL = "sys_journal_field"


class Journal:
    """The journal entries of one table's records."""

    def __init__(self, client: TableClient, table: str) -> None:
        self._client = client
        self.table = table
        #: False when the integration user cannot read sys_journal_field: notes are written
        #: (once per attempt, unchecked) and none are read back
        self.readable = True

    def read(self, record_ids: Sequence[str]) -> dict[str, list[Note]]:
        """Each record's notes, oldest first; several records in one query per 100."""
        out: dict[str, list[Note]] = {r: [] for r in record_ids}
        if not record_ids or not self.readable:
            return out
        fields = ["sys_id", "element_id", "value", "sys_created_on", "sys_created_by"]
        entries: list[Row] = []
        for chunk in chunks(list(record_ids), 100):
            query = (
                f"name={self.table}^element_idIN{','.join(chunk)}"
                f"^elementIN{','.join(JOURNAL_ELEMENTS)}"
            )
            refused, rows = self._client.refused(JOURNAL, partial(self._select, fields, query))
            if refused:
                self.readable = False
                report_unreadable(self._client.connector, JOURNAL)
                return {r: [] for r in record_ids}
            entries += rows or []
        entries.sort(key=lambda r: (r["sys_created_on"][0], r["sys_id"][0]))
        for row in entries:
            created = row["sys_created_on"][0]
            out.setdefault(row["element_id"][0], []).append(
                parse_note(
                    row["value"][0],
                    connector=self._client.connector,
                    remote_id=row["sys_id"][0],
                    author=row["sys_created_by"][0] or None,
                    created=sn_time(created) if created else None,
                )
            )
        return out

    def _select(self, fields: list[str], query: str) -> list[Row]:
        return list(self._client.select(JOURNAL, fields, query))

    def probe(self) -> bool:
        """Whether the journal can be read (one small read); for ``config check``."""
        self.readable = self.readable and self._client.may_read(JOURNAL, f"name={self.table}")
        return self.readable

    def add(self, sys_id: str, note: Note) -> None:
        """Append ``note`` as a work note, once, whatever answers get lost on the way (and
        whatever run wrote it before)."""
        body = mark_note(note)

        def attempt() -> None:
            if any(n.id == note.id for n in self.read([sys_id])[sys_id]):
                return  # an earlier attempt, or an earlier run, went through
            self._client.patch(self.table, sys_id, {"work_notes": body})

        self._client.call(attempt, what="add work note")
