"""A stateful ServiceNow instance that speaks the Table API over HTTPS (tests, demo, benchmarks).

What it does like ServiceNow (ServiceNow docs: "Table API", "Batch API", "REST API response
codes", "Encoded query strings"; PySNC 1.2.1 as observed):

- ``GET/POST/PATCH/PUT/DELETE /api/now/table/{table}[/{sys_id}]`` (also ``/api/now/v2/table``),
  bodies wrapped in ``{"result": ...}``, every value a string, 32-hex ``sys_id``, system fields
  in UTC (``YYYY-MM-DD HH:MM:SS``), ``POST`` 201 with ``Location``, ``DELETE`` 204, errors as
  ``{"error": {"message", "detail"}, "status": "failure"}``.
- Encoded queries (``=``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``LIKE``, ``NOT LIKE``,
  ``STARTSWITH``, ``ENDSWITH``, ``IN``, ``NOT IN``, ``ISEMPTY``, ``ISNOTEMPTY``, ``^``, ``^OR``,
  ``ORDERBY``/``ORDERBYDESC``, one level of dot-walking); invalid terms are ignored, as on an
  instance. Paging with ``sysparm_limit``/``sysparm_offset``, ``X-Total-Count`` and ``Link``;
  ``sysparm_fields`` (dot-walked too), ``sysparm_display_value`` (``true``/``false``/``all``),
  ``sysparm_exclude_reference_link``, ``sysparm_suppress_pagination_header``,
  ``sysparm_no_count``.
- An outbound call on each change of a configured table, as the business rule of
  docs/operations.md makes it (:mod:`.webhooks`, :meth:`ServiceNowSimulator.send_changes_to`).
- Tables with dictionaries and choices: ``task``, ``sn_grc_issue``,
  ``sn_irm_cont_auth_milestone_task``, ``sys_user``, ``sys_choice``, ``sys_journal_field`` (work
  notes and comments written by PATCHing ``work_notes``/``comments``), ``sys_dictionary``,
  ``sys_db_object``; more tables with ``extra_tables``.
- A stock GRC instance, not our own mapping (see :mod:`.tables` for the sources):
  ``sn_grc_issue`` extends ``task`` (``sys_db_object.super_class``), so the dictionary rows of
  its inherited columns (``short_description`` 160 characters, ``priority``...) and the choices
  of ``priority`` live under ``name=task``; only the GRC states are an override under
  ``name=sn_grc_issue``: New, Analyze, Respond, Review, Closed Complete, Closed Incomplete
  (ServiceNowDocs ``audit-management/issue-form.md``), beside task's own Pending .. Closed
  Skipped. Priorities are 1 - Critical .. 5 - Planning. Not modelled: a ``task`` query does not
  return the GRC issues (on an instance it returns every record of its child tables).
- Users as a real directory has them: an e-mail in mixed case, and a service account
  (:data:`SERVICE_ACCOUNT_USER`) with no e-mail. Text queries ignore case, as an instance's do
  (ServiceNow docs, "Set case and accent sensitivity on a per-column basis").
- Every user signs in with its ``user_name`` and ``sim-password``; only ``admin`` has the admin
  role. A least-privilege instance (``least_privilege=True``, or
  :meth:`~.human.ServiceNowHuman.restrict_non_admins`) hides the system tables
  (:data:`ADMIN_ONLY_TABLES`) and ``sys_user.email`` from everyone else, e.g.
  :data:`INTEGRATION_USER`.
- ``due_date`` is a date/time, stored and sent in UTC, shown in each user's time zone or the
  instance's (``glide.sys.default.tz``, :meth:`~.human.ServiceNowHuman.set_time_zone`);
  ``sysparm_input_display_value=true`` writes choice labels and local date/times.
- Basic auth and OAuth client credentials (``POST /oauth_token.do``); 401 with the instance's
  body otherwise. The Batch API (``POST /api/now/v1/batch``).
- Data policies: :meth:`ServiceNowSimulator.require_for_state` makes a state need a field, as a
  "close notes are mandatory" policy does (403 "Data Policy Exception").
- Faults, latency and call counters through :class:`~poam_sync.simulators._base.SimControl`
  and the ``/_sim/`` control API.

Display values of date-times are shown in the acting user's time zone, as on an instance; the
raw values (``sysparm_display_value=false``, or ``value`` with ``all``) are UTC.

How the package is laid out (each module one job; :class:`ServiceNowSimulator` in :mod:`.app`
combines the mixins, each built on the ones before it):

- :mod:`.model`: credentials, users, row types and the error shape; :mod:`.tables`: tables;
- :mod:`.query`: encoded queries; :mod:`.state`: what an instance holds, saved as JSON;
- :mod:`.records`: the dictionary and every write; :mod:`.reads`: selecting and rendering;
- :mod:`.human`: the analyst's side; :mod:`.auth`: basic auth and OAuth;
- :mod:`.table_api`: the Table API; :mod:`.app`: dispatch, Batch API and faults;
- :mod:`.server`: running it over HTTPS.
"""

from poam_sync.simulators.servicenow.app import ServiceNowSimulator
from poam_sync.simulators.servicenow.model import (
    ADMIN_ONLY_TABLES,
    ADMIN_PASSWORD,
    ADMIN_USER,
    ANALYST_USER,
    DEFAULT_USERS,
    INTEGRATION_USER,
    OAUTH_CLIENT_ID,
    OAUTH_CLIENT_SECRET,
    SERVICE_ACCOUNT_USER,
    TOKEN_LIFETIME_S,
    Json,
    Row,
    SimError,
)
from poam_sync.simulators.servicenow.query import (
    EncodedQuery,
    Term,
    parse_query,
    term_matches,
)
from poam_sync.simulators.servicenow.records import new_sys_id
from poam_sync.simulators.servicenow.server import (
    RunningServiceNow,
    running,
    serve,
    start_servicenow_simulator,
    write_tls,
)
from poam_sync.simulators.servicenow.tables import (
    GRC_ISSUE_STATES,
    MILESTONE_STATES,
    PRIORITIES,
    TASK_STATES,
    Column,
    TableSpec,
    default_tables,
    issue_columns,
    task_columns,
)

__all__ = [
    "ADMIN_ONLY_TABLES",
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "ANALYST_USER",
    "DEFAULT_USERS",
    "GRC_ISSUE_STATES",
    "INTEGRATION_USER",
    "MILESTONE_STATES",
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "PRIORITIES",
    "SERVICE_ACCOUNT_USER",
    "TASK_STATES",
    "TOKEN_LIFETIME_S",
    "Column",
    "EncodedQuery",
    "Json",
    "Row",
    "RunningServiceNow",
    "ServiceNowSimulator",
    "SimError",
    "TableSpec",
    "Term",
    "default_tables",
    "issue_columns",
    "new_sys_id",
    "parse_query",
    "running",
    "serve",
    "start_servicenow_simulator",
    "task_columns",
    "term_matches",
    "write_tls",
]
