"""Items for the store tests."""

from __future__ import annotations

from datetime import date

from poam_sync.model import Person, PoamItem, RiskLevel, Status


def make_item(poam_id: str = "V-1", **fields: object) -> PoamItem:
    values: dict[str, object] = {
        "poam_id": poam_id,
        "system": "acme",
        "title": f"Weakness {poam_id}",
        "controls": ["ac-2.1"],
        "owner": Person(name="Ann Lee", email="ann@example.gov"),
        "status": Status.OPEN,
        "original_risk": RiskLevel.HIGH,
        "detected_on": date(2026, 1, 5),
        "due_date": date(2026, 2, 4),
    }
    values.update(fields)
    return PoamItem.model_validate(values)
