"""`log export`: every row with its hash fields, in CSV or JSON Lines; an assessor recomputes
each hash from the JSON Lines file alone; filters by item and time; streamed, not loaded."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from poam_sync.audit_export import check_format, export_log
from poam_sync.errors import UsageError
from poam_sync.model import Status
from poam_sync.store import LogQuery, Store

from .factory import make_item
from .tamper import drop_append_only_guards


def _fill(store: Store) -> None:
    with store.begin() as tx:
        for i in (1, 2):
            tx.save(make_item(f"V-{i}"), source="import", actor="ann", batch_id="b1")
    with store.begin() as tx:
        tx.save(
            make_item("V-1", status=Status.REMEDIATING, title='Zürich, "quoted"\nline'),
            source="cli",
            actor='=HYPERLINK("x")',
            reason="@SUM(1)",
        )


def test_each_jsonl_line_recomputes_its_own_hash(store: Store, tmp_path: Path) -> None:
    _fill(store)
    target = tmp_path / "log.jsonl"
    count = export_log(store, LogQuery(), target, "jsonl")
    lines = target.read_text(encoding="utf-8").splitlines()
    assert count == len(lines) == len(store.log())
    prev = "0" * 64
    for seq, line in enumerate(lines, start=1):
        row = json.loads(line)
        assert row["seq"] == seq and row["prev_hash"] == prev
        claimed = row.pop("hash")
        canonical = json.dumps(
            {k: v for k, v in row.items() if k != "prev_hash"},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        assert hashlib.sha256(f"{prev}\n{canonical}".encode()).hexdigest() == claimed
        prev = claimed
    assert prev == store.log()[-1].hash
    last = json.loads(lines[-1])
    assert last["actor"] == '=HYPERLINK("x")'  # exact: JSON Lines is for recomputing
    assert not list(tmp_path.glob(".*partial"))


def test_csv_has_the_hash_fields_and_quotes_what_a_spreadsheet_would_run(
    store: Store, tmp_path: Path
) -> None:
    _fill(store)
    target = tmp_path / "log.csv"
    export_log(store, LogQuery(), target, "csv")
    with target.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    logged = store.log()
    assert [int(r["seq"]) for r in rows] == [r.seq for r in logged]
    assert [r["hash"] for r in rows] == [r.hash for r in logged]
    assert [r["prev_hash"] for r in rows] == [r.prev_hash for r in logged]
    title = next(r for r in rows if r["field"] == "title" and r["source"] == "cli")
    assert json.loads(title["new_value"]) == 'Zürich, "quoted"\nline'
    assert title["actor"] == '\'=HYPERLINK("x")' and title["reason"] == "'@SUM(1)"
    assert title["old_value"] == '"Weakness V-1"'


def test_filters_by_item_and_time(store: Store, tmp_path: Path) -> None:
    _fill(store)
    uuid = store.item("acme", "V-2").uuid
    target = tmp_path / "v2.jsonl"
    count = export_log(store, LogQuery(item_uuid=uuid), target, "jsonl")
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert count == len(rows) > 0 and {r["poam_id"] for r in rows} == {"V-2"}
    later = datetime.now(UTC) + timedelta(days=1)
    assert export_log(store, LogQuery(since=later), tmp_path / "none.csv", "csv") == 0
    assert (tmp_path / "none.csv").read_text().splitlines() == [
        "seq,at,item_uuid,system,poam_id,field,old_value,new_value,source,actor,reason,"
        "batch_id,prev_hash,hash"
    ]


def test_rows_stream_from_one_snapshot(store: Store) -> None:
    _fill(store)
    with store.read() as tx:
        rows = tx.stream_log(LogQuery())
        first = next(rows)
        assert first[0] == 1 and first[-2] == "0" * 64
        rows.close()


def test_an_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="use --format csv or jsonl"):
        check_format("xlsx")


def test_a_value_edited_into_no_json_still_gives_a_json_line(
    store: Store, raw: sa.Engine, tmp_path: Path
) -> None:
    _fill(store)
    with raw.begin() as conn:
        drop_append_only_guards(conn)
        conn.execute(sa.text("UPDATE change_log SET new_value = 'not json' WHERE seq = 2"))
    export_log(store, LogQuery(), tmp_path / "log.jsonl", "jsonl")
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[1]["new_value"] == "not json"  # shown as text; its hash no longer recomputes
