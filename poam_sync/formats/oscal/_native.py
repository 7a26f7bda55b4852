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
from typing import Any

from poam_sync.model import Person

POC_ROLE = "point-of-contact"
ASSET_PROPS = ("asset-id", "fqdn", "ipv4-address", "ipv6-address", "uri")

_CONTROL = re.compile(r"^([A-Za-z]{2})-(\d+)(?:\((\d+)\))?$")


def oscal_control_id(control: str) -> str:
    """``AC-2(3)`` -> ``ac-2.3``, ``AC-2`` -> ``ac-2``; anything else lower case."""
    m = _CONTROL.match(control.strip())
    if not m:
        return control.strip().lower()
    family, number, enhancement = m.groups()
    out = f"{family.lower()}-{number}"
    return f"{out}.{enhancement}" if enhancement else out


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

    @classmethod
    def of(cls, doc: dict[str, Any]) -> Index:
        metadata = doc.get("metadata") or {}
        local = doc.get("local-definitions") or {}
        return cls(
            parties={
                str(p.get("uuid", "")).lower(): p
                for p in metadata.get("parties") or []
                if isinstance(p, dict)
            },
            inventory={
                str(i.get("uuid", "")).lower(): i
                for i in local.get("inventory-items") or []
                if isinstance(i, dict)
            },
        )

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
