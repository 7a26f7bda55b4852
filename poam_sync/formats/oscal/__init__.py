"""OSCAL plan-of-action-and-milestones (NIST 1.0.4 and 1.1.x), JSON and XML in, JSON and XML out.

XML is parsed with defusedxml (no entities, no external references: a "billion laughs" file
is refused) and turned into the JSON shape, so one reader serves both; the writer builds the
JSON document and serializes it as JSON or, by the metaschema's mapping rules, as XML.
Cross-references (poam-item -> risks / observations) are checked here because the JSON Schema
cannot: a dangling reference or a duplicated uuid is a :class:`Problem` and that poam-item is
left out.
"""

from __future__ import annotations

from poam_sync.formats.oscal._read import read
from poam_sync.formats.oscal._vocab import FEDRAMP_NS, OSCAL_VERSION, POAM_SYNC_NS, ROOT
from poam_sync.formats.oscal._write import to_document, write

__all__ = ["FEDRAMP_NS", "OSCAL_VERSION", "POAM_SYNC_NS", "ROOT", "read", "to_document", "write"]
