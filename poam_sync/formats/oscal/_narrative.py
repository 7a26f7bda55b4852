"""The words around an OSCAL poam-item that have no column of their own: its risks'
statements, its observations' text and their evidence links. Kept on import in the item's
``extra`` (so every format carries them, as columns in a workbook or CSV) and written back to
the risk and observation on export.

- ``risk statement``: the linked risks' ``statement`` (how the risk affects the system), when it
  is not the item's description;
- ``observation``: each linked observation's text, its ``title`` (when not the item's) and
  ``description`` (when not the item's description), observations apart by a blank line;
- ``observation remarks``: the observations' ``remarks``;
- ``evidence``: one line per ``relevant-evidence`` (its description, then its ``href`` in
  angle brackets) and per observation ``link`` (its text, then its ``href``).

The OSCAL model: https://pages.nist.gov/OSCAL-Reference/models/v1.1.2/plan-of-action-and-milestones/json-reference/
(``risk/statement``, ``observation/relevant-evidence``, ``observation/links``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

RISK_STATEMENT = "risk statement"
OBSERVATION = "observation"
OBSERVATION_REMARKS = "observation remarks"
EVIDENCE = "evidence"
KEYS = (RISK_STATEMENT, OBSERVATION, OBSERVATION_REMARKS, EVIDENCE)

_LINE = re.compile(r"^(?P<text>.*?)\s*<(?P<href>[^<>\s]+)>$")


def _text(value: object) -> str:
    """A text value stripped, with no more than one blank line in a row (Markdown reads more as
    one, and the XML form has no way to say more)."""
    return re.sub(r"\n\s*\n\s*\n", "\n\n", value.strip()) if isinstance(value, str) else ""


def _joined(parts: Iterable[str]) -> str | None:
    out: list[str] = []
    for part in parts:
        if part and part not in out:
            out.append(part)
    return "\n\n".join(out) or None


def _line(text: str, href: str) -> str:
    text = " ".join(text.split())
    href = href.strip()
    if not href:
        return text
    return f"{text} <{href}>" if text else f"<{href}>"


def read(
    *,
    title: str,
    description: str,
    risks: Iterable[Mapping[str, Any]],
    observations: Iterable[Mapping[str, Any]],
) -> dict[str, str]:
    """The ``extra`` entries for a poam-item whose own title and description are given."""
    observations = list(observations)
    own = description.strip()
    found: dict[str, str | None] = {
        RISK_STATEMENT: _joined(s for s in (_text(r.get("statement")) for r in risks) if s != own),
        OBSERVATION: _joined(
            _joined(
                [
                    t if (t := _text(o.get("title"))) != title.strip() else "",
                    d if (d := _text(o.get("description"))) != own else "",
                ]
            )
            or ""
            for o in observations
        ),
        OBSERVATION_REMARKS: _joined(_text(o.get("remarks")) for o in observations),
    }
    lines: list[str] = []
    for o in observations:
        for ev in o.get("relevant-evidence") or []:
            if isinstance(ev, Mapping):
                lines.append(_line(_text(ev.get("description")), _text(ev.get("href"))))
        for link in o.get("links") or []:
            if isinstance(link, Mapping):
                lines.append(_line(_text(link.get("text")), _text(link.get("href"))))
    found[EVIDENCE] = "\n".join(dict.fromkeys(x for x in lines if x)) or None
    return {k: v for k, v in found.items() if v}


def evidence(extra: Mapping[str, object]) -> list[dict[str, str]]:
    """The ``relevant-evidence`` entries an item's ``evidence`` lines stand for."""
    value = extra.get(EVIDENCE)
    out: list[dict[str, str]] = []
    for raw in value.splitlines() if isinstance(value, str) else []:
        line = raw.strip()
        if not line:
            continue
        match = _LINE.match(line)
        if match:
            href = match["href"]
            out.append({"href": href, "description": match["text"] or href})
        else:
            out.append({"description": line})
    return out


def text(extra: Mapping[str, object], key: str) -> str | None:
    value = extra.get(key)
    return value.strip() or None if isinstance(value, str) else None
