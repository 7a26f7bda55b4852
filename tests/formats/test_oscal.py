"""OSCAL POA&M JSON and XML: NIST's and FedRAMP's public examples, and our export."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema_rs
import pytest

from poam_sync import formats
from poam_sync.model import (
    DeviationStatus,
    MilestoneStatus,
    PoamItem,
    RiskLevel,
    Status,
    diff_items,
)
from poam_sync.samples.build import sample_items
from tests.formats import builders as b


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Draft7Validator:
    schema = json.loads(b.OSCAL_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


@pytest.mark.parametrize("path", [b.NIST_JSON, b.NIST_XML])
def test_nist_example_values_and_its_dangling_reference(path: Path) -> None:
    result = formats.read(path)
    assert result.format == "oscal"
    assert result.system == "8101e04d-8305-4e73-bb95-6b59f645b143"  # system-id
    (item,) = result.items
    assert item.poam_id == "48c8368d-43ff-4736-9b28-64b1b1284c03"  # no POAM-ID prop: the uuid
    assert item.title == (
        "GoodRead System Engineers Have Over-Privileged Access to Cloud Infrastructure Account"
    )
    assert item.description.startswith("Budget and technical staff allocation are available")
    assert item.status is Status.OPEN
    assert item.detected_on == date(2023, 6, 2)  # the observation's collected date, as written
    assert item.scheduled_completion_date == date(2023, 6, 23)  # risk deadline
    assert [(m.description, m.due_date) for m in item.milestones] == [
        ("Completion of GoodRead Sprint Ending June 23, 2023", date(2024, 6, 23))
    ]
    assert item.extra["risk likelihood"] == "low" and item.extra["risk impact"] == "high"
    assert item.provenance is not None
    assert item.provenance.format == ("oscal-xml" if path.suffix == ".xml" else "oscal-json")
    assert item.provenance.file == path.name and item.provenance.row == 2
    # poam-item e174dfb9 points its related risk at a mitigating factor: reported, left out
    (p,) = result.problems
    assert p.code == "dangling_reference"
    assert p.file == path.name and p.row == 1
    assert p.column == "poam-items[0].related-risks[0].risk-uuid"
    assert "401c15c9-ad6b-4d4a-a591-7d53a3abb3b6" in p.message


def test_nist_json_and_xml_give_the_same_items() -> None:
    from_json = formats.read(b.NIST_JSON).items[0]
    from_xml = formats.read(b.NIST_XML).items[0]
    assert diff_items(from_json, from_xml) == {}


def test_fedramp_template_props_facets_and_risk_log() -> None:
    result = formats.read(b.FEDRAMP_OSCAL)
    assert result.problems == ()
    assert result.system == "F00000000"
    items = {i.poam_id: i for i in result.items}
    assert sorted(items) == ["V-1", "V-2"]  # POAM-ID prop
    v1 = items["V-1"]
    assert v1.title == "[EXAMPLE]POA&M Item"
    assert v1.controls == ("AC-2",)
    assert v1.original_risk is RiskLevel.HIGH
    assert v1.scheduled_completion_date == date(2023, 7, 30)
    assert [(m.description, m.due_date) for m in v1.milestones] == [
        ("[Example]Milestone 1", date(2023, 7, 2)),
        ("[Example]Milestone 2", date(2023, 7, 7)),
    ]
    assert v1.detected_on == date(2020, 10, 10)
    v2 = items["V-2"]
    assert v2.original_risk is RiskLevel.HIGH and v2.adjusted_risk is RiskLevel.MODERATE
    assert v2.deviation is not None
    assert v2.deviation.risk_adjustment is DeviationStatus.APPROVED
    assert v2.deviation.operational_requirement is DeviationStatus.APPROVED
    assert v2.deviation.false_positive is DeviationStatus.WITHDRAWN
    assert v2.vendor_dependency is not None and v2.vendor_dependency.dependent is True
    assert v2.cves == ("CVE-2020-00000",)
    assert v2.source_identifier == "VulID-001"
    # the risk is still "open" although its log has a closing entry: the status is kept
    assert v2.status is Status.OPEN
    assert v2.completed_on is None


def test_lowercase_poam_id_prop_is_matched(tmp_path: Path) -> None:
    doc = json.loads(b.FEDRAMP_OSCAL.read_text(encoding="utf-8"))
    for pi in doc["plan-of-action-and-milestones"]["poam-items"]:
        for prop in pi["props"]:
            prop["name"] = "poam-id"
    path = tmp_path / "lower.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert sorted(i.poam_id for i in formats.read(path).items) == ["V-1", "V-2"]


def test_awesomecloud_duplicate_uuid_is_reported_not_merged() -> None:
    result = formats.read(b.AWESOME_XML)
    assert result.system == "AwesomeCloud Plan of Actions and Milestones"  # metadata title
    titles = [i.title for i in result.items]
    assert len(titles) == 7
    assert titles[0] == "Asset Inventory Out of Date"
    assert result.items[0].description == "AwesomeCloud asset inventory is out of date."
    assert result.items[0].detected_on == date(2023, 1, 13)
    (p,) = result.problems
    assert p.code == "duplicate_uuid"
    assert p.row == 6 and p.column == "poam-items[5].uuid"
    assert "fc16a330-a930-4dc5-a473-089a1da2e81c" in p.message and "poam-item 5" in p.message


@pytest.mark.parametrize(
    ("risk_status", "expected"),
    [
        ("investigating", Status.INVESTIGATING),
        ("remediating", Status.REMEDIATING),
        ("deviation-requested", Status.DEVIATION_REQUESTED),
        ("deviation-approved", Status.RISK_ACCEPTED),
        ("closed", Status.COMPLETED),
    ],
)
def test_risk_status_crosswalk(tmp_path: Path, risk_status: str, expected: Status) -> None:
    doc = json.loads(b.FEDRAMP_OSCAL.read_text(encoding="utf-8"))
    for risk in doc["plan-of-action-and-milestones"]["risks"]:
        risk["status"] = risk_status
    path = tmp_path / "status.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    items = {i.poam_id: i for i in formats.read(path).items}
    assert items["V-1"].status is expected


def test_closed_risk_with_approved_false_positive(tmp_path: Path) -> None:
    doc = json.loads(b.FEDRAMP_OSCAL.read_text(encoding="utf-8"))
    risk = doc["plan-of-action-and-milestones"]["risks"][1]
    risk["status"] = "closed"
    for prop in risk["props"]:
        if prop["name"] == "false-positive":
            prop["value"] = "approved"
    path = tmp_path / "fp.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    items = {i.poam_id: i for i in formats.read(path).items}
    assert items["V-2"].status is Status.FALSE_POSITIVE


def test_public_examples_validate_against_the_schema(
    validator: jsonschema_rs.Draft7Validator,
) -> None:
    for path in (b.NIST_JSON, b.FEDRAMP_OSCAL):
        assert list(validator.iter_errors(json.loads(path.read_text(encoding="utf-8")))) == []


def test_export_validates_and_round_trips(
    tmp_path: Path, validator: jsonschema_rs.Draft7Validator
) -> None:
    items = sample_items()
    path = tmp_path / "poam.json"
    formats.write(items, path, format="oscal-json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [str(e) for e in validator.iter_errors(doc)] == []
    assert doc["plan-of-action-and-milestones"]["metadata"]["oscal-version"] == "1.1.2"
    back = formats.read(path)
    assert back.problems == ()
    assert back.system == "Example Cloud Service"
    by_id = {i.poam_id: i for i in back.items}
    for item in items:
        assert diff_items(item, by_id[item.poam_id]) == {}


def test_export_of_odd_values_still_validates(
    tmp_path: Path, validator: jsonschema_rs.Draft7Validator
) -> None:
    odd = PoamItem(
        poam_id=" V 1 ",
        title="",
        description="  line one\n\n  line two  ",
        controls=["ac-2.1"],
        status=Status.NOT_APPLICABLE,
        extra={"Weird Header ": "  spaced  ", "n": 3},
        milestones=[{"id": "m one", "description": " ", "status": MilestoneStatus.ARCHIVED}],
        milestone_changes=[{"kind": "note", "text": ""}],
    )
    path = tmp_path / "odd.json"
    formats.write([odd], path, format="oscal-json", system_name="sys with spaces")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [str(e) for e in validator.iter_errors(doc)] == []
    (back,) = formats.read(path).items
    assert back.status is Status.NOT_APPLICABLE
    assert back.extra == {"Weird Header ": "  spaced  ", "n": 3}
