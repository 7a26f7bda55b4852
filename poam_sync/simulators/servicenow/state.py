"""What one simulated instance holds (tables, rows, credentials, policies) and its JSON file.

:class:`ServiceNowState` owns every attribute of the simulator; the mixins in the sibling
modules (records, reads, the human API, auth, the Table API) add behaviour on top of it and
:class:`~poam_sync.simulators.servicenow.app.ServiceNowSimulator` puts them together.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from poam_sync.simulators._base import SimControl
from poam_sync.simulators.servicenow.model import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    Row,
)
from poam_sync.simulators.servicenow.tables import Column, TableSpec

#: the time zone a new instance usually has ("The system has a default time zone usually as
#: US/Pacific", ServiceNow community, "SOAP web service and time zones examples",
#: https://www.servicenow.com/community/united-kingdom-snug/soap-web-service-and-time-zones-examples/ba-p/2270667)
DEFAULT_TIME_ZONE = "America/Los_Angeles"


class ServiceNowState:
    """The state of one simulated instance, saved and loaded as JSON."""

    def __init__(self, *, control: SimControl | None = None) -> None:
        self.control = control or SimControl()
        self.lock = threading.RLock()
        self.tables: dict[str, TableSpec] = {}
        # table -> (its spec, its columns by name, a new row's values): built once per spec
        self._column_index: dict[str, tuple[TableSpec, dict[str, Column], Row]] = {}
        self.rows: dict[str, dict[str, Row]] = {}
        # every user signs in with its user_name and ADMIN_PASSWORD (see ServiceNowSimulator)
        self.passwords: dict[str, str] = {ADMIN_USER: ADMIN_PASSWORD}
        #: users with the admin role: the restrictions below do not apply to them
        self.admins: set[str] = {ADMIN_USER}
        #: table -> how it refuses a user without the admin role: "empty" (200 with the rows
        #: dropped after the query, as a read ACL does) or "forbidden" (403)
        self.unreadable: dict[str, str] = {}
        #: (table, column) a field-level read ACL hides from users without the admin role
        self.hidden_fields: set[tuple[str, str]] = set()
        self.oauth_clients: dict[str, tuple[str, str]] = {
            OAUTH_CLIENT_ID: (OAUTH_CLIENT_SECRET, ADMIN_USER)
        }
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (user_name, expires)
        self.counters: dict[str, int] = {}
        # (table, state value) -> fields a data policy makes mandatory for that state
        self.state_policies: dict[tuple[str, str], tuple[str, ...]] = {}
        #: how the GRC issue's own state rules refuse a write (see records.GRC_STATE_RULES):
        #: "data_policy" (the default), "business_rule", or "off"
        self.grc_state_rules = "data_policy"
        # (table, state value or "") -> (rule name, rule sys_id, message): business rules that
        # abort a write entering that state ("" = every write), see abort_by_business_rule
        self.business_rules: dict[tuple[str, str], tuple[str, str, str]] = {}
        # (table, operation) -> "record" (a table ACL) or "api" (the REST API's own ACL)
        self.acl_denied: dict[tuple[str, str], str] = {}
        # table -> predicate of the rows the integration user may read; rows failing it are
        # removed from a page *after* the page was cut (see hide_rows)
        self.row_acl: dict[str, Callable[[Row], bool]] = {}
        #: whether sys_choice holds rows in languages other than English (translate_choices)
        self.translated = False
        #: the instance's time zone (the ``glide.sys.default.tz`` property, see .reads)
        self.time_zone = DEFAULT_TIME_ZONE
        # answers to lose after the request was carried out (see lose_next_answers)
        self.lose_answers = 0
        self.lose_methods: frozenset[str] = frozenset()

    def save(self, path: Path) -> None:
        with self.lock:
            data = {"rows": self.rows, "counters": self.counters}
            text = json.dumps(data)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    def load(self, path: Path) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        with self.lock:
            for table, rows in data.get("rows", {}).items():
                if table in self.tables:
                    self.rows[table] = rows
            self.counters.update(data.get("counters", {}))
            for row in self.rows.get("sys_properties", {}).values():
                if row.get("name") == "glide.sys.default.tz" and row.get("value"):
                    self.time_zone = row["value"]  # the saved instance's zone
