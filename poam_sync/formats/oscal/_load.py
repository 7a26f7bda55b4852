"""Loading an OSCAL POA&M file, JSON or XML, into the JSON shape (XML through defusedxml)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from poam_sync.errors import InputError, Problem
from poam_sync.formats.oscal._vocab import ROOT

# Limits (docs/formats.md, "Limits"): NIST's POA&M examples are under 10 levels deep; XML
# deeper than MAX_DEPTH is refused (turning it into the JSON shape recurses), JSON deeper than
# Python's recursion limit (about 1,000) is refused by the parser.
MAX_BYTES = 256 * 1024 * 1024
MAX_DEPTH = 64
MAX_NUMBER_DIGITS = 30

# ---------------------------------------------------------------------------------------------
# XML -> the JSON shape

# XML element name -> JSON group name for elements that repeat (OSCAL metaschema groups).
_GROUPS = {
    "observation": "observations",
    "risk": "risks",
    "poam-item": "poam-items",
    "finding": "findings",
    "prop": "props",
    "link": "links",
    "facet": "facets",
    "characterization": "characterizations",
    "response": "remediations",
    "task": "tasks",
    "related-observation": "related-observations",
    "associated-risk": "related-risks",
    "related-risk": "related-risks",
    "entry": "entries",
    "actor": "actors",
    "origin": "origins",
    "method": "methods",
    "type": "types",
    "subject": "subjects",
    "mitigating-factor": "mitigating-factors",
    "threat-id": "threat-ids",
    "party": "parties",
    "role": "roles",
    "component": "components",
    "inventory-item": "inventory-items",
    "resource": "resources",
    "responsible-party": "responsible-parties",
    "responsible-role": "responsible-roles",
    "party-uuid": "party-uuids",
    "email-address": "email-addresses",
    "telephone-number": "telephone-numbers",
    "member-of-organization": "member-of-organizations",
    "location-uuid": "location-uuids",
    "external-id": "external-ids",
    "address": "addresses",
    "related-response": "related-responses",
    "relevant-evidence": "relevant-evidence",
    "logged-by": "logged-by",
    "location": "locations",
    "dependency": "dependencies",
    "related-task": "related-tasks",
    "associated-activity": "associated-activities",
    "required-asset": "required-assets",
    "rlink": "rlinks",
    "document-id": "document-ids",
    "revision": "revisions",
    "implemented-component": "implemented-components",
}
_MARKUP = frozenset({"description", "statement", "remarks", "text", "guidance"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# inline markup as the JSON form writes it (OSCAL markup is Markdown in JSON: NIST, "Markup
# Datatypes", https://pages.nist.gov/metaschema/specification/datatypes/#markup-data-types)
_INLINE = {"code": "`", "strong": "**", "b": "**", "em": "*", "i": "*"}


def _inline(elem: Any) -> str:
    """An element's text with ``code``, ``strong`` and ``em`` in their Markdown marks."""
    parts = [elem.text or ""]
    for child in elem:
        mark = _INLINE.get(_local(child.tag), "")
        parts.append(f"{mark}{_inline(child)}{mark}")
        parts.append(child.tail or "")
    return " ".join("".join(parts).split())


def _markup_text(elem: Any) -> str:
    """Markup (``<p>``, ``<h1>``, ``<ul>``...) as text, blocks separated by blank lines, list
    items as ``* `` lines (``1. `` in an ``<ol>``), inline code, strong and em as Markdown."""
    blocks = []
    children = list(elem)
    if not children:
        return " ".join((elem.text or "").split())
    if elem.text and elem.text.strip():
        blocks.append(" ".join(elem.text.split()))
    for child in children:
        name = _local(child.tag)
        if name in {"ul", "ol"}:
            items = [_inline(li) for li in child]
            text = "\n".join(
                f"{n}. {t}" if name == "ol" else f"* {t}"
                for n, t in enumerate((t for t in items if t), start=1)
            )
        else:
            text = _inline(child)
        if text:
            blocks.append(text)
        if child.tail and child.tail.strip():
            blocks.append(" ".join(child.tail.split()))
    return "\n\n".join(blocks)


def _xml_to_json(elem: Any) -> Any:
    out: dict[str, Any] = dict(elem.attrib)
    children = list(elem)
    if not children:
        text = (elem.text or "").strip()
        if not out:
            return text
        if text:
            out["value" if "value" not in out else "text"] = text
        return out
    for child in children:
        name = _local(child.tag)
        if name in _MARKUP:
            value: Any = _markup_text(child)
        elif name == "title":
            value = " ".join("".join(child.itertext()).split())
        else:
            value = _xml_to_json(child)
        group = _GROUPS.get(name)
        if group:
            out.setdefault(group, []).append(value)
        else:
            out[name] = value
    return out


def _xml_depth_ok(root: Any) -> bool:
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        elem, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        stack.extend((child, depth + 1) for child in elem)
    return True


def load_xml(path: Path) -> dict[str, Any]:
    _too_big(path, MAX_BYTES)
    try:
        root = SafeET.parse(str(path), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise InputError(
            Problem(
                "the XML has a DTD, entity declarations or external references, which are "
                f"refused (an XML bomb or XXE attack looks like this): {exc}",
                file=path.name,
                hint="remove the DOCTYPE / ENTITY declarations (OSCAL needs none)",
                code="xml_unsafe",
            )
        ) from exc
    except SafeET.ParseError as exc:
        line, col = getattr(exc, "position", (None, None))
        raise InputError(
            Problem(
                f"the XML is not well-formed: {exc}",
                file=path.name,
                row=line,
                column=str(col) if col is not None else None,
                hint="fix the XML (an OSCAL validator names the spot), then import again",
                code="bad_xml",
            )
        ) from exc
    name = _local(root.tag)
    if name != ROOT:
        raise _not_poam(path, name)
    if not _xml_depth_ok(root):
        raise _too_deep(path, "bad_xml")
    doc = _xml_to_json(root)
    # system-id in XML is an element whose text is the id
    sid = doc.get("system-id")
    if isinstance(sid, dict) and "value" in sid:
        sid["id"] = sid.pop("value")
    elif isinstance(sid, str):
        doc["system-id"] = {"id": sid}
    return {ROOT: doc}


def _not_poam(path: Path, found: str) -> InputError:
    return InputError(
        Problem(
            f"not an OSCAL POA&M: the root is {found!r}, not {ROOT!r}",
            file=path.name,
            hint="export the plan-of-action-and-milestones document, not an SSP/SAP/SAR",
            code="not_poam",
        )
    )


class _Refused(ValueError):
    """A JSON document refused while it is parsed (a duplicate key, a huge number)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # at C speed; the pairs are looked at only when a key repeats
    if len(out) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(
            f"the key {key!r} appears twice in one object; JSON readers disagree on "
            "which one counts, so the document is refused"
        )
    return out


def _number(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Refused(f"a number with {len(text)} digits (at most {MAX_NUMBER_DIGITS})")
    return int(text)


def _constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON number")


def _too_big(path: Path, limit: int) -> None:
    size = path.stat().st_size
    if size > limit:
        raise InputError(
            Problem(
                f"the file is {size:,} bytes; OSCAL files are read up to {limit:,} bytes",
                file=path.name,
                hint="split the POA&M into smaller documents",
                code="too_large",
            )
        )


def _too_deep(path: Path, code: str) -> InputError:
    return InputError(
        Problem(
            f"the document is nested too deeply (more than {MAX_DEPTH} levels); an OSCAL "
            "POA&M needs far fewer",
            file=path.name,
            hint="check the tool that wrote it; OSCAL documents are a few levels deep",
            code=code,
        )
    )


def load_json(path: Path) -> dict[str, Any]:
    _too_big(path, MAX_BYTES)
    try:
        doc = json.loads(
            path.read_text(encoding="utf-8-sig"),
            object_pairs_hook=_no_duplicates,
            parse_int=_number,
            parse_constant=_constant,
        )
    except _Refused as exc:
        raise InputError(
            Problem(
                f"the JSON is refused: {exc}",
                file=path.name,
                hint="fix the document (one value per key, ordinary numbers), then import again",
                code="bad_json",
            )
        ) from exc
    except RecursionError as exc:
        raise _too_deep(path, "bad_json") from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            Problem(
                f"invalid JSON: {exc.msg}",
                file=path.name,
                row=exc.lineno,
                column=str(exc.colno),
                hint="fix the JSON syntax at that line and column, then import again",
                code="bad_json",
            )
        ) from exc
    except UnicodeDecodeError as exc:
        raise InputError(
            Problem(
                f"the file is not UTF-8 text: {exc}",
                file=path.name,
                hint="save it as UTF-8 JSON",
                code="bad_json",
            )
        ) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get(ROOT), dict):
        found = next(iter(doc), "nothing") if isinstance(doc, dict) else type(doc).__name__
        raise _not_poam(path, str(found))
    return doc  # nesting: json refuses what is deeper than Python's recursion limit
