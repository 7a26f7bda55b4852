"""OSCAL import keeps the risk statement, the observations' text and their evidence links, and
the export writes them back to the risk and the observation (public fixtures: the FedRAMP
OSCAL POA&M template and NIST's IFA GoodRead example)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest

from poam_sync import formats
from poam_sync.model import diff_items
from tests.formats import builders as b

ROOT = "plan-of-action-and-milestones"


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Draft7Validator:
    schema = json.loads(b.OSCAL_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


def test_the_fedramp_template_keeps_statements_observation_text_and_evidence() -> None:
    items = {i.poam_id: i for i in formats.read(b.FEDRAMP_OSCAL).items}
    one, two = items["V-1"].extra, items["V-2"].extra
    assert one["risk statement"] == "Describe the risk"
    assert one["observation remarks"].startswith("The origin field identifies")
    assert one["evidence"] == (
        "Optional pointer to the raw scanner output that generated this POA&M entry. "
        "<./raw_scans/scanner_output.csv>"
    )
    assert two["risk statement"].startswith("This is a statement about the identified risk")
    # V-2 cites two observations: both texts, the second with its own title
    assert two["observation"] == (
        "[EXAMPLE]Scanner Output.\n\nVendor Dependency\n\nDescribe the vendor dependency here."
    )
    assert two["evidence"] == (
        "Raw scanner tool output - Infrastructure and OS Scan. "
        "<#171b44a2-9b52-4c46-b912-54bd274b2761>"
    )


@pytest.mark.parametrize("path", [b.NIST_JSON, b.NIST_XML], ids=["json", "xml"])
def test_nists_example_keeps_the_statement_and_the_observation_remarks(path: Path) -> None:
    (item,) = formats.read(path).items  # the other poam-item has a dangling reference
    assert item.extra["risk statement"].startswith(
        "An account without proper least privilege design and implementation can be used to "
        "surreptitiously add"
    )
    assert item.extra["observation"].startswith(
        "AwesomeCloud IAM Roles Test - GoodRead System Engineer Role\n\nTest AwesomeCloud"
    )
    remarks = item.extra["observation remarks"]
    assert "The `IFA-GoodRead-SystemEnginer` role" in remarks
    assert "\n\n* awesomecloud:auditlog:DeleteAccountAuditLog\n* awesomecloud:secmon:" in remarks


@pytest.mark.parametrize("fmt", ["oscal-json", "oscal-xml"])
def test_the_export_writes_them_back_to_the_risk_and_the_observation(
    tmp_path: Path, fmt: str, validator: jsonschema_rs.Draft7Validator
) -> None:
    items = formats.read(b.FEDRAMP_OSCAL).items
    path = tmp_path / ("poam.json" if fmt == "oscal-json" else "poam.xml")
    formats.write(items, path, format=fmt)
    back = {i.poam_id: i for i in formats.read(path).items}
    for item in items:
        assert diff_items(item, back[item.poam_id]) == {}
    if fmt == "oscal-xml":
        text = path.read_text(encoding="utf-8")
        assert '<relevant-evidence href="./raw_scans/scanner_output.csv">' in text
        return
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [str(e) for e in validator.iter_errors(doc)] == []
    poam = doc[ROOT]
    first = next(p for p in poam["poam-items"] if p["props"][0]["value"] == "V-1")
    risk = next(r for r in poam["risks"] if r["uuid"] == first["related-risks"][0]["risk-uuid"])
    observation = next(
        o
        for o in poam["observations"]
        if o["uuid"] == first["related-observations"][0]["observation-uuid"]
    )
    assert risk["statement"] == "Describe the risk"
    assert observation["remarks"].startswith("The origin field identifies")
    assert observation["relevant-evidence"] == [
        {
            "href": "./raw_scans/scanner_output.csv",
            "description": "Optional pointer to the raw scanner output that generated this "
            "POA&M entry.",
        }
    ]
