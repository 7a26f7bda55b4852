"""Pushes of changed fields, many records to a Batch API request (``update_many``).

A mass change (an import that moves every scheduled date) is one PATCH per record; the Batch
API (:mod:`.batch`) carries 50 of them to a request, each PATCH its own call with its own
status code, so a refused record fails alone. Each PATCH asks for the record back
(``sysparm_fields``: the columns a read takes, ``sys_mod_count`` among them; "Comma-separated
list of fields to return in the response", the Table API's PATCH and PUT in ServiceNowDocs
``c_TableAPI.md``, whose answer holds "All fields (not just modified)"), so no GET follows.

What a single :meth:`~.connector.ServiceNowConnector.update` does besides one PATCH is left to
it, record by record, so that it is classified and reported exactly as before: a record whose
state the instance refused (403: a data policy, a business rule), written again without the
state; one whose choice codes cannot be read (labels written as display values); one whose
milestones change; one whose call may or may not have happened (the request or its call
failed on the way: a PATCH is safe to repeat).

The version each answer carries is worth remembering (sync/echoes.py) only if the answer shows
the record whole: the PATCH answer shows every column, but not the journal (the same doc's
example answer has ``"work_notes": ""`` and ``"comments": ""``: journal entries live in
``sys_journal_field``), and a person's work note may have come between the record's last read
and our PATCH. So the journal of the batch's
records is read once the batch has answered: a note written before our PATCH is in it (the
record is then not taken as settled), one written after moved ``sys_mod_count`` past the
answer's (the next pull reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from poam_sync.connectors.base import FieldProblem, MilestoneValue, SyncValues, WriteResult
from poam_sync.connectors.servicenow.client import Row, checked_sys_id
from poam_sync.errors import RemoteError, RemoteRejected

if TYPE_CHECKING:
    from poam_sync.connectors.servicenow.connector import ServiceNowConnector

#: PATCHes per Batch API request
PUSH_BATCH = 50


def update_many(
    connector: ServiceNowConnector, batch: Sequence[tuple[str, SyncValues]]
) -> list[WriteResult | Exception]:
    """One result or error per (sys_id, changes), in order, as ``update`` gives them."""
    results: list[WriteResult | Exception | None] = [None] * len(batch)
    for start in range(0, len(batch), PUSH_BATCH):
        _chunk(connector, batch, range(start, min(len(batch), start + PUSH_BATCH)), results)
    return [r if r is not None else RuntimeError("not written") for r in results]


def _single(
    connector: ServiceNowConnector, remote_id: str, changes: SyncValues
) -> WriteResult | Exception:
    try:
        return connector.update(remote_id, changes)
    except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
        return exc


def _chunk(
    c: ServiceNowConnector,
    batch: Sequence[tuple[str, SyncValues]],
    indexes: range,
    results: list[WriteResult | Exception | None],
) -> None:
    meta = c._metadata()
    state = c.mapping.fields.get("status")
    sent: dict[int, tuple[str, dict[str, str], list[FieldProblem]]] = {}
    alone: list[int] = []
    for i in indexes:
        remote_id, changes = batch[i]
        try:
            sys_id = checked_sys_id(remote_id, connector=c.name)
            values, problems = c.codec.values(changes, meta)
            by_label = c.codec.display_values(changes, meta)
        except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
            results[i] = exc
            continue
        milestones = "milestones" in changes and c.milestones is not None
        if not values or by_label or milestones:
            alone.append(i)  # more than one PATCH: as a single update does it
        else:
            sent[i] = (sys_id, values, problems)
    answers = c.client.patch_batch(
        c.table, [(sys_id, values) for sys_id, values, _p in sent.values()], c.codec.columns()
    )
    rows: dict[int, Row] = {}
    for (i, (_sys_id, values, _p)), answer in zip(sent.items(), answers, strict=True):
        refused = isinstance(answer, RemoteRejected) and answer.status == 403 and state in values
        if isinstance(answer, dict) and "sys_mod_count" in answer:
            rows[i] = answer
        elif isinstance(answer, RemoteError) and not refused:
            results[i] = answer
        else:  # a refused state (nothing was stored), or an answer lost on the way
            alone.append(i)
    for i in sorted(alone):
        results[i] = _single(c, *batch[i])
    if not rows:
        return
    ids = [sent[i][0] for i in rows]
    try:
        notes = c.journal.read(ids)
        # with their tag, so that the version is the one a read gives (.versions)
        children = c.milestones.read_tagged(ids, meta) if c.milestones is not None else None
    except RemoteError as exc:  # written all the same: read whole when next pulled
        c._log.info("servicenow.pushed_unread", error=str(exc), records=len(ids))
        notes, children = {}, None
    whole = c.journal.readable and bool(notes)
    for i, row in rows.items():
        sys_id, _values, problems = sent[i]
        for p in problems:
            c._log.warning("servicenow.field_problem", sys_id=sys_id, field=p.field, code=p.code)
        held: list[MilestoneValue] | None = None
        tag: str | None = None
        if children is not None:  # every parent asked has an entry, maybe empty
            held, tag = children[sys_id]
        record = c.codec.record(row, meta, held, notes.get(sys_id, []), tag=tag)
        results[i] = WriteResult(record, tuple(problems), whole=whole)
    c._log.info("servicenow.pushed", records=len(rows), alone=len(alone))
