"""The canonical items: reading them, saving one, importing a file's worth.

Every write logs its changed tracked fields through :class:`ChangeLogTx` in the same
transaction, so an item and its change-log rows commit together or not at all.
"""

from __future__ import annotations

import json
import uuid as uuid_module
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TypeAlias

import sqlalchemy as sa
import structlog

from poam_sync.errors import DuplicateItem
from poam_sync.model import TRACKED_FIELDS, JsonValue, PoamItem
from poam_sync.store._browse import facet_row, write_facets
from poam_sync.store._changelog import ChangeLogTx, _Entry
from poam_sync.store._import_merge import baseline_of, merge, source_key
from poam_sync.store._rows import ChangeRow, ImportClash, ImportOutcome
from poam_sync.store._schema import baselines as baselines_t
from poam_sync.store._schema import dump_object_fields
from poam_sync.store._schema import items as items_t

log = structlog.get_logger(__name__)

_CHUNK = 500  # ids per IN (...) query
_EMPTY: tuple[JsonValue, ...] = (None, "", [], {})

_ItemRow: TypeAlias = dict[str, str | date | datetime | None]
"""The parameters of one ``items`` row."""


def _tracked_diff(
    old: Mapping[str, JsonValue] | None, new: Mapping[str, JsonValue]
) -> dict[str, tuple[JsonValue, JsonValue]]:
    """:func:`poam_sync.model.diff_items` on already dumped items (one dump per item, not two)."""
    if old is None:
        return {k: (None, new[k]) for k in TRACKED_FIELDS if new[k] not in _EMPTY}
    return {k: (old[k], new[k]) for k in TRACKED_FIELDS if old[k] != new[k]}


def _stored_values(data: str) -> dict[str, JsonValue]:
    """A stored item's canonical JSON; re-validated if it predates a field of the model."""
    values: dict[str, JsonValue] = json.loads(data)
    if any(name not in values for name in TRACKED_FIELDS):
        values = PoamItem.model_validate(values).model_dump(mode="json")
    return values


def _json_row(
    values: Mapping[str, JsonValue], data: str, now: datetime, *, uuid: str, system: str
) -> _ItemRow:
    """:func:`_item_row` from an item's JSON (a merged import, no model built)."""
    owner = values.get("owner")
    email = owner.get("email") if isinstance(owner, dict) else None
    due = values.get("due_date")
    return {
        "uuid": uuid,
        "system": system,
        "poam_id": str(values["poam_id"]),
        "status": str(values["status"]),
        "due_date": date.fromisoformat(due) if isinstance(due, str) else None,
        "owner_email": email if isinstance(email, str) else None,
        "updated_at": now,
        "data": data,
    }


def _item_row(item: PoamItem, data: str, now: datetime, *, uuid: str, system: str) -> _ItemRow:
    return {
        "uuid": uuid,
        "system": system,
        "poam_id": item.poam_id,
        "status": item.status.value,
        "due_date": item.due_date,
        "owner_email": item.owner.email if item.owner else None,
        "updated_at": now,
        "data": data,
    }


class ItemsTx(ChangeLogTx):
    """The canonical-items part of a store transaction."""

    # ----------------------------------------------------------------- items
    def get(self, system: str, poam_id: str) -> PoamItem | None:
        data = self._conn.execute(
            sa.select(items_t.c.data).where(
                items_t.c.system == system, items_t.c.poam_id == poam_id
            )
        ).scalar_one_or_none()
        return None if data is None else PoamItem.model_validate_json(data)

    def get_by_uuid(self, uuid: str) -> PoamItem | None:
        data = self._conn.execute(
            sa.select(items_t.c.data).where(items_t.c.uuid == uuid)
        ).scalar_one_or_none()
        return None if data is None else PoamItem.model_validate_json(data)

    def items(self, system: str | None = None) -> list[PoamItem]:
        """Items ordered by (system, poam_id); of one system when given."""
        query = sa.select(items_t.c.data).order_by(items_t.c.system, items_t.c.poam_id)
        if system is not None:
            query = query.where(items_t.c.system == system)
        return [PoamItem.model_validate_json(d) for d in self._conn.execute(query).scalars()]

    def all_items(self) -> list[PoamItem]:
        return self.items()

    def find(self, poam_id: str) -> list[PoamItem]:
        """Items with this POA&M ID in any system, ordered by system."""
        query = (
            sa.select(items_t.c.data).where(items_t.c.poam_id == poam_id).order_by(items_t.c.system)
        )
        return [PoamItem.model_validate_json(d) for d in self._conn.execute(query).scalars()]

    def save(
        self,
        item: PoamItem,
        *,
        source: str,
        actor: str | None,
        reason: str | None = None,
        batch_id: str | None = None,
    ) -> list[ChangeRow]:
        """Insert or update ``item``; one change-log row per changed tracked field.

        An item already stored under the same (system, poam_id) keeps its stored uuid. Nothing
        changed (provenance aside) means nothing written and ``[]``.
        """
        self._lock_chain()
        now = self._clock()
        existing = self._conn.execute(
            sa.select(items_t.c.uuid, items_t.c.data).where(
                items_t.c.system == item.system, items_t.c.poam_id == item.poam_id
            )
        ).one_or_none()
        if existing is None:
            if self._uuid_taken(item.uuid):
                fresh = str(uuid_module.uuid4())
                log.warning(
                    "store.uuid_taken", poam_id=item.poam_id, system=item.system, new_uuid=fresh
                )
                item = item.model_copy(update={"uuid": fresh})
            dumped = item.model_dump(mode="json")
            changes = _tracked_diff(None, dumped)
            data, texts = dump_object_fields(dumped)
            self._conn.execute(
                sa.insert(items_t), [_item_row(item, data, now, uuid=item.uuid, system=item.system)]
            )
            write_facets(self._conn, new=[facet_row(item, item.uuid, item.system, now)])
        else:
            if item.uuid != existing.uuid:
                item = item.model_copy(update={"uuid": existing.uuid})
            dumped = item.model_dump(mode="json")
            changes = _tracked_diff(_stored_values(existing.data), dumped)
            if not changes:
                return []
            data, texts = dump_object_fields(dumped)
            row = _item_row(item, data, now, uuid=item.uuid, system=item.system)
            del row["uuid"]
            self._conn.execute(sa.update(items_t).where(items_t.c.uuid == item.uuid).values(**row))
            write_facets(self._conn, changed=[facet_row(item, item.uuid, item.system, now)])
        return self._append(
            self._entries(item.uuid, item.system, item.poam_id, changes, texts),
            source=source,
            actor=actor,
            reason=reason,
            batch_id=batch_id,
            now=now,
        )

    def import_items(
        self,
        items: Sequence[PoamItem],
        *,
        system: str,
        actor: str | None,
        batch_id: str,
        dry_run: bool = False,
        reason: str | None = None,
        source: str | None = None,
    ) -> ImportOutcome:
        """Import a file's items into ``system`` (source ``import``); see docs/store.md.

        Items are matched by POA&M ID within ``system`` (their own ``system`` is replaced). Items
        of the system absent from ``items`` are reported as ``missing`` and never deleted.
        ``reason`` defaults to "imported from <file>" when the item's provenance names a file.
        A known item takes from the file only what the file may change (``_import_merge``):
        never its notes or due date, and with a ``source`` (the file's lineage) only the fields
        the file changed since that source's last import; a field changed on both sides is kept
        and listed in ``clashes``.
        """
        seen: dict[str, int] = {}
        for item in items:
            seen[item.poam_id] = seen.get(item.poam_id, 0) + 1
        duplicates = sorted(pid for pid, n in seen.items() if n > 1)
        if duplicates:
            raise DuplicateItem(
                f"the import into system {system!r} holds POA&M ID(s) more than once: "
                f"{', '.join(duplicates[:20])}" + (" ..." if len(duplicates) > 20 else ""),
                hint="give each item its own POA&M ID; nothing was imported",
            )
        self._lock_chain()
        now = self._clock()
        stored = {
            row.poam_id: (row.uuid, row.data)
            for row in self._conn.execute(
                sa.select(items_t.c.poam_id, items_t.c.uuid, items_t.c.data).where(
                    items_t.c.system == system
                )
            )
        }
        fresh_uuids = [item.uuid for item in items if item.poam_id not in stored]
        taken = self._uuids_taken(fresh_uuids)
        key = source_key(source) if source is not None else None
        file_baselines = self._import_baselines(key) if key is not None else {}
        new_baselines: dict[str, dict[str, JsonValue]] = {}
        clashes: list[ImportClash] = []
        kept = 0

        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        inserts: list[_ItemRow] = []
        updates: list[_ItemRow] = []
        new_facets: list[_ItemRow] = []
        changed_facets: list[_ItemRow] = []
        entries: list[_Entry] = []
        reasons: list[str | None] = []
        for item in items:
            # the item's own system and uuid are replaced in its JSON (no model copies: this
            # loop runs once per imported item)
            poam_id = item.poam_id
            dumped = item.model_dump(mode="json")
            dumped["system"] = system
            known = stored.get(poam_id)
            if known is None:
                uuid = item.uuid
                if uuid in taken:
                    uuid = str(uuid_module.uuid4())
                taken.add(uuid)
                dumped["uuid"] = uuid
                changes = _tracked_diff(None, dumped)
                data, texts = dump_object_fields(dumped)
                inserts.append(_item_row(item, data, now, uuid=uuid, system=system))
                new_facets.append(facet_row(item, uuid, system, now))
                created.append(poam_id)
                if key is not None:
                    new_baselines[uuid] = baseline_of(dumped)
            else:
                uuid, stored_data = known
                dumped["uuid"] = uuid
                current = _stored_values(stored_data)
                if key is not None:
                    new_baselines[uuid] = baseline_of(dumped)
                merged = merge(current, dumped, file_baselines.get(uuid))
                kept += len(merged.kept)
                clashes.extend(
                    ImportClash(poam_id, uuid, c.field, c.baseline, c.canonical, c.file)
                    for c in merged.clashes
                )
                # the file's item as it is stored: a model again only when the merge changed it
                final = item if merged.values == dumped else PoamItem.model_validate(merged.values)
                dumped = merged.values
                changes = _tracked_diff(current, dumped)
                if not changes:
                    unchanged.append(poam_id)
                    continue
                data, texts = dump_object_fields(dumped)
                row = _json_row(dumped, data, now, uuid=uuid, system=system)
                updates.append({f"b_{k}": v for k, v in row.items()})
                changed_facets.append(facet_row(final, uuid, system, now))
                updated.append(poam_id)
            why = reason
            if why is None and item.provenance is not None and item.provenance.file:
                why = f"imported from {item.provenance.file}"
            new_entries = self._entries(uuid, system, poam_id, changes, texts)
            entries.extend(new_entries)
            reasons.extend([why] * len(new_entries))
        outcome = ImportOutcome(
            created=created,
            updated=updated,
            unchanged=unchanged,
            missing=sorted(pid for pid in stored if pid not in seen),
            changes=len(entries),
            dry_run=dry_run,
            source=source,
            clashes=clashes,
            kept=kept,
        )
        if not dry_run:
            if inserts:
                self._conn.execute(sa.insert(items_t), inserts)
            if updates:
                self._conn.execute(
                    sa.update(items_t)
                    .where(items_t.c.uuid == sa.bindparam("b_uuid"))
                    .values(
                        {
                            col: sa.bindparam(f"b_{col}")
                            for col in (
                                "status",
                                "due_date",
                                "owner_email",
                                "updated_at",
                                "data",
                            )
                        }
                    ),
                    updates,
                )
            if key is not None and new_baselines:
                self._set_import_baselines(key, new_baselines)
            write_facets(self._conn, new=new_facets, changed=changed_facets)
            if entries:
                self._append(
                    entries,
                    source="import",
                    actor=actor,
                    reason=reasons,
                    batch_id=batch_id,
                    now=now,
                    collect=False,
                )
        log.info(
            "store.import",
            system=system,
            batch_id=batch_id,
            dry_run=dry_run,
            created=len(outcome.created),
            updated=len(outcome.updated),
            unchanged=len(outcome.unchanged),
            missing=len(outcome.missing),
            changes=outcome.changes,
        )
        return outcome

    # --------------------------------------------------------------- internal
    def _import_baselines(self, key: str) -> dict[str, dict[str, JsonValue]]:
        """An import source's baselines: ``{item_uuid: {field: value}}``."""
        query = sa.select(baselines_t.c.item_uuid, baselines_t.c.field, baselines_t.c.value).where(
            baselines_t.c.connector == key
        )
        out: dict[str, dict[str, JsonValue]] = {}
        for item_uuid, name, value in self._conn.execute(query):
            out.setdefault(item_uuid, {})[name] = value
        return out

    def _set_import_baselines(
        self, key: str, values: Mapping[str, Mapping[str, JsonValue]]
    ) -> None:
        uuids = list(values)
        for start in range(0, len(uuids), _CHUNK):
            self._conn.execute(
                sa.delete(baselines_t).where(
                    baselines_t.c.connector == key,
                    baselines_t.c.item_uuid.in_(uuids[start : start + _CHUNK]),
                )
            )
        rows = [
            {"item_uuid": u, "connector": key, "field": f, "value": v}
            for u, fields in values.items()
            for f, v in fields.items()
        ]
        if rows:
            self._conn.execute(sa.insert(baselines_t), rows)

    def _uuids_taken(self, uuids: Sequence[str]) -> set[str]:
        taken: set[str] = set()
        for start in range(0, len(uuids), _CHUNK):
            chunk = list(uuids[start : start + _CHUNK])
            taken.update(
                self._conn.execute(
                    sa.select(items_t.c.uuid).where(items_t.c.uuid.in_(chunk))
                ).scalars()
            )
        return taken
