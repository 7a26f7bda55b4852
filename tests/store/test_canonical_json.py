"""The short cuts of the hot path give byte for byte the canonical JSON docs/store.md defines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from poam_sync.store._chain import canonical_row, format_at, parse_at, row_encoder
from poam_sync.store._schema import dump_json, dump_object_fields
from tests.conftest import examples

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _reference(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@settings(max_examples=examples(60))
@given(json_values)
def test_dump_json_is_canonical_json(value: object) -> None:
    assert dump_json(value) == _reference(value)


@settings(max_examples=examples(60))
@given(
    st.text(),
    st.text(),
    st.one_of(st.none(), st.text()),
    st.one_of(st.none(), st.text()),
    json_values,
    json_values,
    st.integers(min_value=1, max_value=2**62),
)
def test_canonical_row_equals_the_sorted_json_of_the_row(
    poam_id: str,
    field: str,
    actor: str | None,
    reason: str | None,
    old: object,
    new: object,
    seq: int,
) -> None:
    row = {
        "seq": seq,
        "at": "2026-03-08T06:59:59.123456Z",
        "item_uuid": "77a49d1e-6ca9-4cac-8eaa-b6943e68789b",
        "system": 'acme \u2028 "quoted"',
        "poam_id": poam_id,
        "field": field,
        "old_value": old,
        "new_value": new,
        "source": "import",
        "actor": actor,
        "reason": reason,
        "batch_id": None,
    }
    built = canonical_row(
        seq=seq,
        at=row["at"],  # type: ignore[arg-type]
        item_uuid=row["item_uuid"],  # type: ignore[arg-type]
        system=row["system"],  # type: ignore[arg-type]
        poam_id=poam_id,
        field=field,
        old_json=dump_json(old),
        new_json=dump_json(new),
        source="import",
        actor=actor,
        reason=reason,
        batch_id=None,
    )
    assert built == _reference(row)
    shared = row_encoder(at=str(row["at"]), source="import", actor=actor, batch_id=None)
    assert (
        shared(
            seq,
            str(row["item_uuid"]),
            str(row["system"]),
            poam_id,
            field,
            dump_json(old),
            dump_json(new),
            reason,
        )
        == built
    )


def test_at_is_utc_with_microseconds_and_round_trips() -> None:
    moment = datetime(2026, 3, 8, 1, 59, 59, 5, tzinfo=timezone(timedelta(hours=-5)))
    text = format_at(moment)
    assert text == "2026-03-08T06:59:59.000005Z"
    assert parse_at(text) == moment
    assert parse_at(text).tzinfo == UTC


@settings(max_examples=examples(60))
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_an_object_assembled_from_its_fields_is_canonical_json(values: dict[str, object]) -> None:
    data, texts = dump_object_fields(values)
    assert data == _reference(values)
    assert texts == {k: _reference(v) for k, v in values.items()}
