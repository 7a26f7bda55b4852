"""An outbound call on each change: what the business rule of docs/operations.md does.

ServiceNow has no built-in webhook for table changes; an instance calls out from an *after*
business rule (it runs "after the database operation is complete", ServiceNow docs "Business
rules", docs.servicenow.com, "When business rules run") that builds a ``sn_ws.RESTMessageV2``
and sends it with ``executeAsync()`` (through the ECC queue, so the user's write never waits).
The script poam-sync documents posts ``{"table", "sys_id", "parent", "operation",
"sys_updated_on"}`` and signs the raw body with the shared secret:
``X-Poam-Sync-Signature: sha256=<base64 HMAC-SHA256>`` (``GlideCertificateEncryption
.generateMac(key, "HmacSHA256", body)`` answers in base64). ``parent`` is the record's parent
reference (a milestone task's POA&M record), empty otherwise.

:meth:`ServiceNowWebhooks.send_changes_to` configures that rule on the simulated instance:
which tables, where to, the secret, and optionally a user whose own writes do not call out
(the rule's condition ``gs.getUserName() != 'poam.sync'``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass

from poam_sync.simulators._base import SimControl
from poam_sync.simulators._outbound import Outbound
from poam_sync.simulators.servicenow.model import Row
from poam_sync.simulators.servicenow.records import ServiceNowRecords

SIGNATURE_HEADER = "X-Poam-Sync-Signature"


@dataclass(frozen=True)
class BusinessRuleCall:
    """The configured rule: which tables call out, where to, signed with which secret."""

    url: str
    tables: frozenset[str]
    secret: str | None = None
    parent_field: str = "parent"
    skip_user: str | None = None


class ServiceNowWebhooks(ServiceNowRecords):
    """The outbound calls of the configured business rules."""

    def __init__(self, *, control: SimControl | None = None) -> None:
        self.rules_calling_out: list[BusinessRuleCall] = []
        self.outbound = Outbound()
        super().__init__(control=control)

    def send_changes_to(
        self,
        url: str,
        *,
        tables: tuple[str, ...] = ("sn_grc_issue", "sn_irm_cont_auth_milestone_task"),
        secret: str | None = None,
        parent_field: str = "parent",
        skip_user: str | None = None,
    ) -> None:
        """Add the documented after-insert/update business rule on ``tables``."""
        with self.lock:
            self.rules_calling_out.append(
                BusinessRuleCall(url, frozenset(tables), secret, parent_field, skip_user)
            )

    def _changed(self, table: str, row: Row, operation: str, user: str) -> None:
        for rule in self.rules_calling_out:
            if table not in rule.tables or user == rule.skip_user:
                continue
            body = json.dumps(
                {
                    "table": table,
                    "sys_id": row["sys_id"],
                    "parent": row.get(rule.parent_field, ""),
                    "operation": operation,
                    "sys_updated_on": row.get("sys_updated_on", ""),
                }
            ).encode()
            headers = {"Content-Type": "application/json"}
            if rule.secret:
                mac = hmac.new(rule.secret.encode(), body, hashlib.sha256).digest()
                headers[SIGNATURE_HEADER] = "sha256=" + base64.b64encode(mac).decode()
            self.outbound.post(rule.url, body, headers)
