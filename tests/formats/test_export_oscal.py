"""OSCAL export as other OSCAL tools read it: parties, inventory, no dangling references."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from poam_sync import formats
from poam_sync.formats.oscal import to_document
from poam_sync.formats.oscal._native import oscal_control_id
from poam_sync.model import Person, PoamItem, RiskLevel, Status, VendorDependency
from poam_sync.samples.build import sample_items
from tests.formats import builders as b

ROOT = "plan-of-action-and-milestones"
REFERENCE_KEYS = {"actor-uuid", "subject-uuid", "observation-uuid", "risk-uuid"}
REFERENCE_LISTS = {"party-uuids", "member-of-organizations"}


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Draft7Validator:
    schema = json.loads(b.OSCAL_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


def _walk(node: object) -> Iterator[tuple[str, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _defined(doc: dict[str, Any]) -> set[str]:
    return {str(v) for k, v in _walk(doc) if k == "uuid"}


def _referenced(doc: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for key, value in _walk(doc):
        if key in REFERENCE_KEYS:
            out.add(str(value))
        elif key in REFERENCE_LISTS and isinstance(value, list):
            out.update(str(v) for v in value)
    return out


def _item(**fields: Any) -> PoamItem:
    base: dict[str, Any] = {
        "poam_id": "V-1",
        "system": "Example Cloud Service",
        "title": "Weak TLS",
        "description": "TLS 1.0 is enabled.",
        "detected_on": date(2026, 5, 4),
        "original_risk": RiskLevel.HIGH,
        "detector_source": "Network scanner",
        "source_identifier": "104743",
    }
    return PoamItem(**(base | fields))


def test_the_sample_export_is_schema_valid_with_no_dangling_reference(
    validator: jsonschema_rs.Draft7Validator,
) -> None:
    doc = to_document(sample_items())
    assert [str(e) for e in validator.iter_errors(doc)] == []
    referenced = _referenced(doc)
    assert referenced  # parties, tools, assets, observations and risks are all cited
    assert referenced - _defined(doc) == set()


def test_points_of_contact_are_parties_with_a_responsible_party_role() -> None:
    alice = Person(name="Alice Example", email="alice@example.com", org="Platform Engineering")
    doc = to_document(
        [
            _item(poam_id="V-1", owner=alice),
            _item(poam_id="V-2", owner=alice),
            _item(poam_id="V-3", owner=Person(org="testOrg")),
        ]
    )[ROOT]
    parties = {p["uuid"]: p for p in doc["metadata"]["parties"]}
    people = [p for p in parties.values() if p["type"] == "person"]
    assert [(p["name"], p["email-addresses"]) for p in people] == [
        ("Alice Example", ["alice@example.com"])
    ]
    (org_uuid,) = people[0]["member-of-organizations"]
    assert parties[org_uuid] == {
        "uuid": org_uuid,
        "type": "organization",
        "name": "Platform Engineering",
    }
    (responsible,) = doc["metadata"]["responsible-parties"]
    assert responsible["role-id"] == "point-of-contact"
    assert {r["id"] for r in doc["metadata"]["roles"]} == {"point-of-contact"}
    poc_of = {
        pi["props"][0]["value"]: pi["origins"][0]["actors"][0]["actor-uuid"]
        for pi in doc["poam-items"]
    }
    assert poc_of["V-1"] == poc_of["V-2"] == people[0]["uuid"]
    assert parties[poc_of["V-3"]] == {
        "uuid": poc_of["V-3"],
        "type": "organization",
        "name": "testOrg",
    }
    assert responsible["party-uuids"] == [poc_of["V-1"], poc_of["V-3"]]
    # nothing of the owner hides in the poam-sync `fields` prop any more
    for pi in doc["poam-items"]:
        for prop in pi["props"]:
            assert "owner" not in prop["value"] and "asset" not in prop["value"]


def test_assets_are_inventory_items_cited_as_subjects() -> None:
    doc = to_document(
        [
            _item(poam_id="V-1", asset_identifiers=("web-01 (443/TCP)", "web-02")),
            _item(poam_id="V-2", asset_identifiers=("web-02",)),
        ]
    )[ROOT]
    inventory = {i["uuid"]: i for i in doc["local-definitions"]["inventory-items"]}
    assert [i["props"] for i in inventory.values()] == [
        [{"name": "asset-id", "value": "web-01 (443/TCP)"}],
        [{"name": "asset-id", "value": "web-02"}],
    ]
    first, second = doc["observations"]
    assert [inventory[s["subject-uuid"]]["description"] for s in first["subjects"]] == [
        "web-01 (443/TCP)",
        "web-02",
    ]
    assert all(s["type"] == "inventory-item" for s in first["subjects"])
    assert second["subjects"] == [first["subjects"][1]]


def test_the_detector_is_a_tool_component_and_the_source_id_its_vulnerability_id() -> None:
    doc = to_document([_item()])[ROOT]
    (component,) = doc["local-definitions"]["components"]
    assert (component["type"], component["title"]) == ("software", "Network scanner")
    (observation,) = doc["observations"]
    assert observation["origins"] == [
        {"actors": [{"type": "tool", "actor-uuid": component["uuid"]}]}
    ]
    (risk,) = doc["risks"]
    (actor,) = risk["characterizations"][0]["origin"]["actors"]
    assert actor["actor-uuid"] == component["uuid"]
    assert actor["props"] == [
        {"name": "vulnerability-id", "ns": "https://fedramp.gov/ns/oscal", "value": "104743"}
    ]


@pytest.mark.parametrize(
    ("control", "oscal"),
    [
        ("AC-2(3)", "ac-2.3"),
        ("AC-2", "ac-2"),
        ("SI-10(12)", "si-10.12"),
        ("SA-1.4", "sa-1"),  # an eMASS assessment procedure: its control
        ("odd", "odd"),
    ],
)
def test_control_ids_are_in_oscal_form(control: str, oscal: str) -> None:
    assert oscal_control_id(control) == oscal


def test_impacted_control_ids_and_collected_from_the_detection_date() -> None:
    doc = to_document([_item(controls=("AC-2(3)", "SC-8"))])[ROOT]
    (risk,) = doc["risks"]
    assert [p["value"] for p in risk["props"] if p["name"] == "impacted-control-id"] == [
        "ac-2.3",
        "sc-8",
    ]
    assert doc["observations"][0]["collected"] == "2026-05-04T00:00:00Z"


def test_status_date_and_vendor_check_in_are_risk_log_entries() -> None:
    item = _item(
        status_date=date(2026, 6, 1),
        vendor_dependency=VendorDependency(
            dependent=True, last_check_in=date(2026, 5, 20), product="Gateway"
        ),
        status=Status.COMPLETED,
        completed_on=date(2026, 6, 2),
    )
    (risk,) = to_document([item])[ROOT]["risks"]
    entries = {e["title"]: e for e in risk["risk-log"]["entries"]}
    assert entries["Status update"]["start"] == "2026-06-01T00:00:00Z"
    assert entries["Vendor Check-in"]["start"] == "2026-05-20T00:00:00Z"
    assert entries["Vendor Check-in"]["props"][0] == {
        "name": "vendor-dependency",
        "ns": "https://fedramp.gov/ns/oscal",
        "value": "vendor-check-in",
    }
    assert entries["Risk Closed"]["status-change"] == "closed"
    assert entries["Risk Closed"]["start"] == "2026-06-02T00:00:00Z"
    assert all(e["description"] for e in entries.values())
    assert {
        "name": "vendor-dependency",
        "ns": "https://fedramp.gov/ns/oscal",
        "value": "tracking",
    } in risk["props"]


def test_native_values_come_back_on_import(
    tmp_path: Path, validator: jsonschema_rs.Draft7Validator
) -> None:
    items = [
        _item(
            poam_id="V-1",
            owner=Person(name="Alice Example", email="alice@example.com", org="Platform"),
            asset_identifiers=("web-01 (443/TCP)",),
            controls=("AC-2(3)",),
            status_date=date(2026, 6, 1),
        ),
        _item(poam_id="V-2", owner=Person(org="testOrg"), detected_on=None),
    ]
    path = tmp_path / "poam.json"
    formats.write(items, path, format="oscal-json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [str(e) for e in validator.iter_errors(doc)] == []
    back = {i.poam_id: i for i in formats.read(path).items}
    assert back["V-1"].owner == items[0].owner
    assert back["V-1"].asset_identifiers == ("web-01 (443/TCP)",)
    assert back["V-1"].controls == ("AC-2(3)",)
    assert back["V-1"].status_date == date(2026, 6, 1)
    assert back["V-1"].milestone_changes == ()
    assert back["V-2"].owner == Person(org="testOrg")
    # the stand-in `collected` of an item with no detection date is not taken for one
    assert back["V-2"].detected_on is None
