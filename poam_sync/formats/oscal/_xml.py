"""OSCAL POA&M XML from the JSON document :func:`~poam_sync.formats.oscal._write.to_document`
builds: one model, two serializations.

OSCAL's XML and JSON forms are generated from one metaschema, so a JSON document maps onto
XML by rules (NIST, "OSCAL XML and JSON", https://pages.nist.gov/OSCAL/concepts/layer/):

- a flag (``uuid``, ``name``, ``value``...) is an attribute; a field or an assembly is an
  element, in the order the metaschema's model gives (XML Schema checks the order; JSON has
  none);
- a group (``props``, ``observations``...) is its members side by side, each under the
  singular name (``prop``, ``observation``); ``remediations`` members are ``response`` and a
  poam-item's ``related-risks`` members are ``associated-risk``;
- markup-multiline (``description``, ``statement``, ``remarks``) is a wrapper element of
  ``<p>`` blocks (a blank line in the JSON text separates paragraphs; a line break inside a
  paragraph is a soft break, as in Markdown, and becomes a space);
- a field with flags (``system-id``) keeps its value as the element's text.

The element order below is taken from the OSCAL 1.1.2 metaschema modules
(usnistgov/OSCAL, tag v1.1.2, ``src/metaschema/oscal_poam_metaschema.xml``,
``oscal_assessment-common_metaschema.xml``, ``oscal_implementation-common_metaschema.xml``,
``oscal_metadata_metaschema.xml``), for every assembly the POA&M writer emits.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # writing only: nothing is parsed with it
from pathlib import Path
from typing import Any

from poam_sync.formats.oscal._vocab import ROOT

OSCAL_XML_NS = "http://csrc.nist.gov/ns/oscal/1.0"

# child kinds: an assembly's definition name, or one of these
_TEXT = "text"  # a field whose value is the element's text
_LINE = "markup-line"  # inline markup: the text itself
_MULTI = "markup-multiline"  # a wrapper of <p> blocks

_Child = tuple[str, str, str]  # JSON key, XML element name, kind
_SPEC: dict[str, tuple[tuple[str, ...], tuple[_Child, ...]]] = {
    ROOT: (
        ("uuid",),
        (
            ("metadata", "metadata", "metadata"),
            ("import-ssp", "import-ssp", "import-ssp"),
            ("system-id", "system-id", "system-id"),
            ("local-definitions", "local-definitions", "local-definitions"),
            ("observations", "observation", "observation"),
            ("risks", "risk", "risk"),
            ("poam-items", "poam-item", "poam-item"),
        ),
    ),
    "metadata": (
        (),
        (
            ("title", "title", _LINE),
            ("published", "published", _TEXT),
            ("last-modified", "last-modified", _TEXT),
            ("version", "version", _TEXT),
            ("oscal-version", "oscal-version", _TEXT),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("roles", "role", "role"),
            ("parties", "party", "party"),
            ("responsible-parties", "responsible-party", "responsible-party"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "import-ssp": (("href",), (("remarks", "remarks", _MULTI),)),
    "role": (
        ("id",),
        (
            ("title", "title", _LINE),
            ("short-name", "short-name", _TEXT),
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "party": (
        ("uuid", "type"),
        (
            ("name", "name", _TEXT),
            ("short-name", "short-name", _TEXT),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("email-addresses", "email-address", _TEXT),
            ("telephone-numbers", "telephone-number", _TEXT),
            ("location-uuids", "location-uuid", _TEXT),
            ("member-of-organizations", "member-of-organization", _TEXT),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "responsible-party": (
        ("role-id",),
        (
            ("party-uuids", "party-uuid", _TEXT),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "local-definitions": (
        (),
        (
            ("components", "component", "component"),
            ("inventory-items", "inventory-item", "inventory-item"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "component": (
        ("uuid", "type"),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("purpose", "purpose", _LINE),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("status", "status", "component-status"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "component-status": (("state",), (("remarks", "remarks", _MULTI),)),
    "inventory-item": (
        ("uuid",),
        (
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("responsible-parties", "responsible-party", "responsible-party"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "observation": (
        ("uuid",),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("methods", "method", _TEXT),
            ("types", "type", _TEXT),
            ("origins", "origin", "origin"),
            ("subjects", "subject", "subject"),
            ("relevant-evidence", "relevant-evidence", "relevant-evidence"),
            ("collected", "collected", _TEXT),
            ("expires", "expires", _TEXT),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "relevant-evidence": (
        ("href",),
        (
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "origin": ((), (("actors", "actor", "actor"),)),
    "actor": (
        ("type", "actor-uuid", "role-id"),
        (("props", "prop", "prop"), ("links", "link", "link")),
    ),
    "subject": (
        ("subject-uuid", "type"),
        (
            ("title", "title", _LINE),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "risk": (
        ("uuid",),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("statement", "statement", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("status", "status", _TEXT),
            ("origins", "origin", "origin"),
            ("characterizations", "characterization", "characterization"),
            ("deadline", "deadline", _TEXT),
            ("remediations", "response", "response"),
            ("risk-log", "risk-log", "risk-log"),
            ("related-observations", "related-observation", "related-observation"),
        ),
    ),
    "characterization": (
        (),
        (
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("origin", "origin", "origin"),
            ("facets", "facet", "facet"),
        ),
    ),
    "facet": (
        ("name", "system", "value"),
        (("props", "prop", "prop"), ("links", "link", "link"), ("remarks", "remarks", _MULTI)),
    ),
    "response": (
        ("uuid", "lifecycle"),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("origins", "origin", "origin"),
            ("tasks", "task", "task"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "task": (
        ("uuid", "type"),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("timing", "timing", "timing"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "timing": ((), (("on-date", "on-date", "on-date"),)),
    "on-date": (("date",), ()),
    "risk-log": ((), (("entries", "entry", "entry"),)),
    "entry": (
        ("uuid",),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("start", "start", _TEXT),
            ("end", "end", _TEXT),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("status-change", "status-change", _TEXT),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "related-observation": (("observation-uuid",), ()),
    "associated-risk": (("risk-uuid",), ()),
    "poam-item": (
        ("uuid",),
        (
            ("title", "title", _LINE),
            ("description", "description", _MULTI),
            ("props", "prop", "prop"),
            ("links", "link", "link"),
            ("origins", "origin", "origin"),
            ("related-observations", "related-observation", "related-observation"),
            ("related-risks", "associated-risk", "associated-risk"),
            ("remarks", "remarks", _MULTI),
        ),
    ),
    "prop": (("name", "uuid", "ns", "value", "class", "group"), (("remarks", "remarks", _MULTI),)),
    "link": (("href", "rel", "resource-fragment", "media-type"), (("text", "text", _LINE),)),
}
# fields with flags: the JSON key that holds the element's text
_FIELD_VALUE = {"system-id": ("identifier-type", "id")}

# characters XML 1.0 cannot hold (https://www.w3.org/TR/xml/#charsets)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("", str(value))


def _q(name: str) -> str:
    # names stay unqualified: the root declares OSCAL's namespace as the default (ElementTree's
    # default_namespace option refuses unqualified attributes)
    return name


_BULLET = re.compile(r"^\* (.*)$")
_NUMBERED = re.compile(r"^\d+\. (.*)$")


def _markup(parent: ET.Element, name: str, text: str) -> None:
    """Blocks apart by a blank line: a block of ``* `` (or ``1. ``) lines is a list, any other
    block a paragraph (the reader turns lists back into those lines)."""
    wrapper = ET.SubElement(parent, _q(name))
    blocks = [b.strip() for b in re.split(r"\n\s*\n", _text(text))]
    for block in [b for b in blocks if b] or [""]:
        lines = block.splitlines()
        for pattern, tag in ((_BULLET, "ul"), (_NUMBERED, "ol")):
            found = [pattern.match(line.strip()) for line in lines]
            if lines and all(found):
                listing = ET.SubElement(wrapper, _q(tag))
                for match in found:
                    assert match is not None
                    ET.SubElement(listing, _q("li")).text = " ".join(match[1].split())
                break
        else:
            ET.SubElement(wrapper, _q("p")).text = " ".join(block.split())


def _fill(elem: ET.Element, kind: str, value: dict[str, Any]) -> None:
    flags, children = _SPEC[kind]
    known = set(flags) | {key for key, _, _ in children}
    unknown = sorted(set(value) - known)
    if unknown:  # a writer change the XML mapping does not know yet: fail, never drop data
        raise ValueError(f"no OSCAL XML mapping for {unknown} in {kind}")
    for flag in flags:
        if value.get(flag) is not None:
            elem.set(flag, _text(value[flag]))
    for key, name, child_kind in children:
        if key not in value:
            continue
        member = value[key]
        members = member if isinstance(member, list) else [member]
        for one in members:
            _child(elem, name, child_kind, one)


def _child(parent: ET.Element, name: str, kind: str, value: Any) -> None:
    if kind == _MULTI:
        _markup(parent, name, value)
    elif kind in (_TEXT, _LINE):
        ET.SubElement(parent, _q(name)).text = _text(value)
    elif kind in _FIELD_VALUE:
        flag, text_key = _FIELD_VALUE[kind]
        elem = ET.SubElement(parent, _q(name))
        if value.get(flag) is not None:
            elem.set(flag, _text(value[flag]))
        elem.text = _text(value[text_key])
    else:
        _fill(ET.SubElement(parent, _q(name)), kind, value)


def to_xml(doc: dict[str, Any], *, indent: bool = True) -> bytes:
    """The XML serialization of an OSCAL POA&M JSON document (``{ROOT: {...}}``)."""
    root = ET.Element(_q(ROOT), {"xmlns": OSCAL_XML_NS})
    _fill(root, ROOT, doc[ROOT])
    if indent:
        ET.indent(root, space="  ")
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_xml(doc: dict[str, Any], path: Path, *, indent: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(to_xml(doc, indent=indent))
