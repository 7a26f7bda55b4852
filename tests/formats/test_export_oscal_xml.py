"""OSCAL POA&M XML export: the JSON export's document in XML form, in the metaschema's element
order, re-imported with no loss."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from poam_sync import formats
from poam_sync.formats.oscal import to_document
from poam_sync.formats.oscal._xml import _FIELD_VALUE, _LINE, _MULTI, _SPEC, _TEXT, OSCAL_XML_NS
from poam_sync.model import PoamItem, Status, diff_items
from poam_sync.samples.build import sample_items
from tests.formats import builders as b
from tests.formats.test_export_cli import _export

ROOT = "plan-of-action-and-milestones"
NS = f"{{{OSCAL_XML_NS}}}"


def _local(tag: str) -> str:
    return tag.removeprefix(NS)


def _back(elem: ET.Element, kind: str) -> dict[str, Any]:
    """The JSON shape of an element by the same mapping, read the other way: what a
    metaschema-driven converter gives for our XML."""
    flags, children = _SPEC[kind]
    out: dict[str, Any] = {f: elem.attrib[f] for f in flags if f in elem.attrib}
    assert set(elem.attrib) <= set(flags) | {"xmlns"}
    by_name = {name: (key, child) for key, name, child in children}
    order = [name for _, name, _ in children]
    seen = [_local(c.tag) for c in elem]
    assert seen == sorted(seen, key=order.index), f"{kind}: {seen} out of the model's order"
    for c in elem:
        key, child = by_name[_local(c.tag)]
        if child == _MULTI:
            value: Any = "\n\n".join(p.text or "" for p in c)
        elif child in (_TEXT, _LINE):
            value = c.text or ""
        elif child in _FIELD_VALUE:
            flag, text_key = _FIELD_VALUE[child]
            value = {flag: c.attrib[flag], text_key: c.text}
        else:
            value = _back(c, child)
        # a group: JSON names it apart from its members (but for relevant-evidence)
        if key != _local(c.tag) or key == "relevant-evidence":
            out.setdefault(key, []).append(value)
        else:
            out[key] = value
    return out


def _paragraphs(node: Any) -> Any:
    """The JSON document with markup text as its paragraphs (how XML carries it)."""
    if isinstance(node, dict):
        return {
            k: (
                "\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", v.strip()))
                if k in {"description", "statement", "remarks"} and isinstance(v, str)
                else _paragraphs(v)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_paragraphs(v) for v in node]
    return node


@pytest.fixture(scope="module")
def validator() -> jsonschema_rs.Draft7Validator:
    schema = json.loads(b.OSCAL_SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, validate_formats=True)


def test_the_xml_is_the_json_document_in_model_order(
    tmp_path: Path, validator: jsonschema_rs.Draft7Validator
) -> None:
    items = sample_items()
    path = tmp_path / "poam.xml"
    formats.write(items, path, format="oscal-xml")
    root = ET.parse(path).getroot()
    assert root.tag == f"{NS}{ROOT}"
    back = {ROOT: _back(root, ROOT)}
    assert [str(e) for e in validator.iter_errors(back)] == []
    doc = to_document(items)
    # the same document but for the stamp of the moment each was written
    for d in (doc, back):
        meta = d[ROOT]["metadata"]
        meta.pop("last-modified")
        meta.pop("version")
    assert back == _paragraphs(doc)


def test_our_element_order_agrees_with_nists_own_xml_example() -> None:
    """NIST's example POA&M in XML, checked against the order tables wherever an element of
    the example is one the writer emits."""
    kinds = {name: child for _, (_, cs) in _SPEC.items() for _, name, child in cs}
    kinds[ROOT] = ROOT
    checked = 0
    for elem in ET.parse(
        b.POAM / "nist_oscal-content_ifa_plan-of-action-and-milestones.xml"
    ).iter():
        kind = kinds.get(_local(elem.tag))
        if kind not in _SPEC or _local(elem.tag) == "status":
            continue
        order = [name for _, name, _ in _SPEC[kind][1]]
        seen = [_local(c.tag) for c in elem if _local(c.tag) in order]
        assert seen == sorted(seen, key=order.index), (kind, seen)
        checked += 1
    assert checked > 20


def test_the_xml_export_re_imports_with_no_loss(tmp_path: Path) -> None:
    items = sample_items()
    xml_path, json_path = tmp_path / "poam.xml", tmp_path / "poam.json"
    formats.write(items, xml_path, format="oscal-xml")
    formats.write(items, json_path, format="oscal-json")
    back = formats.read(xml_path)
    assert back.format == "oscal" and back.problems == ()
    assert back.system == "Example Cloud Service"
    by_id = {i.poam_id: i for i in back.items}
    from_json = {i.poam_id: i for i in formats.read(json_path).items}
    assert sorted(by_id) == sorted(i.poam_id for i in items)
    for item in items:
        assert diff_items(item, by_id[item.poam_id]) == {}
        same = {"provenance": from_json[item.poam_id].provenance}
        assert by_id[item.poam_id].model_copy(update=same) == from_json[item.poam_id]


def test_text_xml_cannot_hold_is_left_out_and_markup_is_escaped(tmp_path: Path) -> None:
    odd = PoamItem(
        poam_id="V-1",
        system="sys",
        title='a < b & "c"',
        description="first <p> paragraph\n\nsecond\x07 one",
        status=Status.OPEN,
    )
    path = tmp_path / "odd.xml"
    formats.write([odd], path, format="oscal-xml")
    (back,) = formats.read(path).items
    assert back.title == 'a < b & "c"'
    assert back.description == "first <p> paragraph\n\nsecond one"


def test_export_format_oscal_xml_from_the_cli_re_imports_unchanged(tmp_path: Path) -> None:
    from tests.test_cli import run

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    from poam_sync.samples import SAMPLE_FEDRAMP_XLSX

    assert run("--db", db, "import", str(SAMPLE_FEDRAMP_XLSX), cwd=tmp_path).returncode == 0
    out = tmp_path / "poam.xml"
    done = _export(db, tmp_path, "oscal-xml", out)
    assert done.returncode == 0, done.stderr
    assert "wrote 8 item(s)" in done.stderr
    assert out.read_bytes().startswith(b"<?xml")
    again = run("--db", db, "import", str(out), "--system", "Example Cloud Service", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 created" in again.stderr + again.stdout
