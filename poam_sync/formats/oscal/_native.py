"""Where OSCAL itself keeps a POA&M item's people and assets, for the reader and the writer.

Following the FedRAMP OSCAL POA&M guide (GSA fedramp-automation,
docs/content/guides/poam/4-poam-template-to-oscal-mapping.md):

- a point of contact is a ``party`` in the metadata (a person, with ``member-of-organizations``
  pointing at an organization party, or an organization alone), listed under
  ``responsible-parties`` for the role ``point-of-contact``, and named by the poam-item's and
  the planned remediation's ``origins`` (section 4.3: the planned response's origin is "the
  individual overseeing the activities");
- an asset is an ``inventory-item`` in ``local-definitions`` (its ``asset-id`` prop holds the
  identifier), cited by the observation as a ``subject`` of type ``inventory-item`` (4.2.3);
- the weakness detector is a ``component`` in ``local-definitions``, cited as a ``tool`` actor by
  the observation and the risk characterization (4.2.2, 4.2.4);
- control ids are OSCAL's: ``ac-2.3`` for AC-2(3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from poam_sync.formats._common import CellError, parse_date
from poam_sync.model import Person, PoamItem

POC_ROLE = "point-of-contact"
# risk-log entry types (poam-sync namespace) that carry item fields, not milestone changes
STATUS_DATE_ENTRY = "status-date"
VENDOR_CHECK_IN_ENTRY = "vendor-check-in"
ITEM_FIELD_ENTRIES = frozenset({STATUS_DATE_ENTRY, VENDOR_CHECK_IN_ENTRY})
ASSET_PROPS = ("asset-id", "fqdn", "ipv4-address", "ipv6-address", "uri")

_CONTROL = re.compile(r"^([A-Za-z]{2})-(\d+)(?:\((\d+)\)|(\.\d+))?$")


def oscal_control_id(control: str) -> str:
    """``AC-2(3)`` -> ``ac-2.3``, ``AC-2`` -> ``ac-2``; an eMASS assessment procedure
    (``SA-1.4``) names its control (``sa-1``: OSCAL has no ids for procedures); anything else
    lower case."""
    m = _CONTROL.match(control.strip())
    if not m:
        return control.strip().lower()
    family, number, enhancement, _procedure = m.groups()
    out = f"{family.lower()}-{number}"
    return f"{out}.{enhancement}" if enhancement else out


def _by_uuid(objs: object) -> dict[str, dict[str, Any]]:
    if not isinstance(objs, list):
        return {}
    return {str(o.get("uuid", "")).lower(): o for o in objs if isinstance(o, dict)}


def _refs(obj: dict[str, Any], group: str, key: str, known: dict[str, Any]) -> list[str]:
    refs = obj.get(group)
    if not isinstance(refs, list):
        return []
    out = [str(r.get(key, "")).lower() for r in refs if isinstance(r, dict)]
    return [u for u in out if u in known]


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _date(value: object) -> date | None:
    try:
        return parse_date(value)
    except CellError:
        return None


def _values(obj: dict[str, Any], name: str) -> list[str]:
    return [
        str(p["value"])
        for p in obj.get("props") or []
        if isinstance(p, dict) and p.get("name") == name and p.get("value") is not None
    ]


@dataclass
class Index:
    """The document's parties and inventory items by uuid."""

    parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    inventory: dict[str, dict[str, Any]] = field(default_factory=dict)
    risks: dict[str, dict[str, Any]] = field(default_factory=dict)
    observations: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Index:
        metadata = _obj(doc.get("metadata"))
        local = _obj(doc.get("local-definitions"))
        return cls(
            parties=_by_uuid(metadata.get("parties")),
            inventory=_by_uuid(local.get("inventory-items")),
            risks=_by_uuid(doc.get("risks")),
            observations=_by_uuid(doc.get("observations")),
        )

    def complete(self, item: PoamItem, poam_item: dict[str, Any]) -> PoamItem:
        """``item`` as read, with what OSCAL holds natively where the reader left it empty: the
        point of contact, the assets, the status date; the risk-log entries that carry those
        fields are not milestone changes; a ``collected`` marked as a stand-in is no detection
        date."""
        risks = [self.risks[u] for u in _refs(poam_item, "related-risks", "risk-uuid", self.risks)]
        observations = [
            self.observations[u]
            for u in _refs(poam_item, "related-observations", "observation-uuid", self.observations)
        ]
        update: dict[str, Any] = {}
        if item.owner is None:
            owner = self.owner(poam_item, risks[0] if risks else {})
            if owner is not None:
                update["owner"] = owner
        if not item.asset_identifiers:
            assets = self.assets(observations)
            if assets:
                update["asset_identifiers"] = assets
        entries = [
            e
            for r in risks[:1]
            for e in (r.get("risk-log") or {}).get("entries") or []
            if isinstance(e, dict)
        ]
        if item.status_date is None:
            for entry in entries:
                if STATUS_DATE_ENTRY in _values(entry, "type"):
                    update["status_date"] = _date(entry.get("start"))
        if any(c.kind in ITEM_FIELD_ENTRIES for c in item.milestone_changes):
            update["milestone_changes"] = tuple(
                c for c in item.milestone_changes if c.kind not in ITEM_FIELD_ENTRIES
            )
        if observations and all("unknown" in _values(o, "detection-date") for o in observations):
            update["detected_on"] = None
        return item.model_copy(update=update) if update else item

    def person(self, party_uuid: str) -> Person | None:
        party = self.parties.get(party_uuid.lower())
        if party is None:
            return None
        name = party.get("name")
        emails = party.get("email-addresses") or []
        if party.get("type") == "organization":
            return Person(name=None, email=emails[0] if emails else None, org=name)
        org = None
        for org_uuid in party.get("member-of-organizations") or []:
            found = self.parties.get(str(org_uuid).lower())
            if found and found.get("name"):
                org = str(found["name"])
                break
        return Person(name=name, email=emails[0] if emails else None, org=org)

    def owner(self, poam_item: dict[str, Any], risk: dict[str, Any]) -> Person | None:
        """The point of contact: a party actor of the poam-item's origins (the one with the
        point-of-contact role first), else of the planned remediation's origins."""
        holders = [poam_item] + [
            r for r in risk.get("remediations") or [] if r.get("lifecycle") == "planned"
        ]
        for holder in holders:
            actors = [
                a
                for origin in holder.get("origins") or []
                for a in origin.get("actors") or []
                if isinstance(a, dict) and a.get("type") == "party"
            ]
            actors.sort(key=lambda a: a.get("role-id") != POC_ROLE)
            for actor in actors:
                person = self.person(str(actor.get("actor-uuid", "")))
                if person is not None:
                    return person
        return None

    def assets(self, observations: list[dict[str, Any]]) -> tuple[str, ...]:
        """Identifiers of the inventory items the observations cite, in order, once each."""
        out: list[str] = []
        for obs in observations:
            for subject in obs.get("subjects") or []:
                if not isinstance(subject, dict) or subject.get("type") != "inventory-item":
                    continue
                inv = self.inventory.get(str(subject.get("subject-uuid", "")).lower())
                if inv is None:
                    continue
                ident = next((v for n in ASSET_PROPS for v in _values(inv, n)), None)
                if ident and ident not in out:
                    out.append(ident)
        return tuple(out)
