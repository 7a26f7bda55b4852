"""A stateful Jira simulator that speaks the real REST API (Cloud and Data Center flavours).

It holds one project (``POAM``: issue types Task and Sub-task, a "POA&M ID" custom field), a few
users, a POA&M workflow and the issues in memory (optionally saved to a JSON file), and answers
the calls the ``jira`` package (pycontribs) and poam-sync make, as Jira does:

- ``serverInfo`` (``deploymentType`` Cloud / Server), ``myself`` (with ``timeZone``), ``field``,
  ``status``, ``resolution``, ``priority``, ``project/{key}`` (``expand=issueTypes``),
  ``user/search`` (``query=`` on Cloud, ``username=`` on Data Center);
- issues: create (single and ``issue/bulk``), get (``fields``, ``expand=changelog``,
  ``properties``), edit (PUT, 204), delete, ``assignee`` (also under ``/rest/api/latest``),
  comments, remote links (idempotent by ``globalId``), issue properties (JSON up to 32,768 chars);
- search: Cloud serves ``search/jql`` (``nextPageToken``, ``isLast``, no ``total``; default
  fields ``id`` only) and answers 410 on the removed ``search``; Data Center serves ``search``
  (``startAt``/``maxResults``/``total``). A JQL subset (see :mod:`.jql` and :mod:`.search`:
  ``resolution = Unresolved``, ``statusCategory``, word search with a trailing ``*``,
  ``component``, users by account id / e-mail / username, ``WAS``), dates in the searching
  user's time zone at minute granularity; a value the site does not hold, and anything the
  simulator cannot run, answers 400 with Jira's error body (never a 500);
- history and comments page as Jira's do: ``GET /issue/{key}/changelog`` on Cloud (100 a
  page under ``values``; Atlassian's OpenAPI ``PageBeanChangelog``), ``expand=changelog``
  capped at the newest 100 histories on Cloud (every one on Data Center), comments 100 a
  page on Cloud whatever ``maxResults`` asks (pycontribs/jira#1938), all on Data Center;
- workflows: status changes only through ``transitions``; some transitions need a resolution
  on their screen, some statuses are several hops away. Status in an edit and fields that are
  not on a screen are refused with Jira's own 400 bodies;
- every write moves ``updated`` and records a changelog history (author, field, from, to).
- admin webhooks (:mod:`.webhooks`): registered at ``/rest/webhooks/1.0/webhook`` (or
  :meth:`JiraSimulator.register_webhook`), sent after each write, signed with
  ``X-Hub-Signature`` when the registration has a secret.

A real site's data, on by default, because a simulator that holds only our default mapping's
values hides every way real data breaks a sync:

- the Task workflow also has statuses no default mapping lists, reachable by transitions:
  Backlog (new), Blocked and On Hold (in progress) and Closed (done category, its transition
  needs a resolution), so some paths between mapped statuses pass through a done status
  (admins add their own statuses: "Things Developers Believe About Jira",
  community.atlassian.com);
- the priority scheme has Lowest; in Data Center mode also the pre-7.x names Blocker,
  Critical, Major, Minor and Trivial (community.atlassian.com, "According to Jira, What is
  Blocker, Critical, Major, Minor and Trival Bugs?");
- ``parent`` is left out of top-level issues, not sent as null (as bugwarrior relies on);
- a summary with ``\\n`` or ``\\r`` is refused: "The summary is invalid because it contains
  newline characters." (DefectDojo/django-DefectDojo#4954, release-engineering/Sync2Jira#383);
  a label over 255 characters (prometheus-community/jiralert#146) and a text over 32,767
  (mozilla/jira-bugzilla-integration#180) are refused with Jira's messages;
- admins can remove a transition, add a validator that refuses it, or require a field on its
  screen (:meth:`JiraSimulator.remove_transition`, ``add_validator``, ``require_field``).
- people: everyone signs in with their own account (e-mail, or username on Data Center, and
  the token ``sim-token``), so changes over HTTP are made by whoever signed in; Cloud users
  may hide their e-mail (carol does); a Data Center site shows, hides or masks every e-mail
  (``email_visibility``, ``jira.option.emailvisible``: "bob at example dot com"), see
  :mod:`.users`;
- custom-field names repeat, as Jira allows: two "Remediation Plan" fields of other
  projects, and :meth:`JiraSimulator.duplicate_field` for more;
- the project's components (``component`` in JQL) and ``GET /project/{key}/statuses``.

v2 rich text is a plain string; v3 (Cloud only) uses the Atlassian Document Format. Faults,
latency and call counters come from :mod:`poam_sync.simulators._base` (``/_sim/`` control
API). A "human" Python API (:meth:`JiraSimulator.human_transition` and friends) plays the
engineer's side in tests.

Facts used here are gathered in the project's design notes (API facts) from Atlassian's OpenAPI
file, developer changelog notices CHANGE-2046 (search removal) and the ``jira`` client source.

How the package is laid out (each module one job; :class:`JiraSimulator` in :mod:`.app`
combines the mixins, each built on the ones before it):

- :mod:`.model`: the project, users, statuses, fields, workflows and Jira's error texts;
- :mod:`.adf`: the Atlassian Document Format (v3 rich text);
- :mod:`.state`: what a site holds, saved and loaded as JSON;
- :mod:`.users`, :mod:`.render`: users and resources as Cloud or Data Center shows them;
- :mod:`.issues`: finding and writing issues with Jira's checks and changelog;
- :mod:`.workflow`: transitions; :mod:`.jql` and :mod:`.search`: JQL;
- :mod:`.human`: the engineer's side; :mod:`.routes`: the REST handlers;
- :mod:`.app`: authentication, routing and faults; :mod:`.server`: running it.
"""

from poam_sync.simulators.jira.adf import from_adf, to_adf
from poam_sync.simulators.jira.app import JiraSimulator
from poam_sync.simulators.jira.model import (
    CLOUD_NOT_AUTHENTICATED,
    DC_PRIORITIES,
    DEFAULT_EMAIL,
    DEFAULT_PAT,
    DEFAULT_TOKEN,
    DEFAULT_USERS,
    FIELD_BY_ID,
    FIELDS,
    ISSUE_MISSING,
    ISSUE_TYPES,
    MAX_BULK,
    MAX_PROPERTY_CHARS,
    MODES,
    NOT_AUTHENTICATED,
    NOT_ON_SCREEN,
    PRIORITIES,
    PROJECT_ID,
    PROJECT_KEY,
    RESOLUTIONS,
    SEARCH_REMOVED,
    SITE_STATUSES,
    STATUSES,
    SUMMARY_NEWLINE,
    ApiError,
    FieldDef,
    JsonDict,
    SimUser,
    Transition,
    default_workflows,
    jira_time,
)
from poam_sync.simulators.jira.server import RunningJira, save_state, serve, start_jira_simulator

__all__ = [
    "CLOUD_NOT_AUTHENTICATED",
    "DC_PRIORITIES",
    "DEFAULT_EMAIL",
    "DEFAULT_PAT",
    "DEFAULT_TOKEN",
    "DEFAULT_USERS",
    "FIELDS",
    "FIELD_BY_ID",
    "ISSUE_MISSING",
    "ISSUE_TYPES",
    "MAX_BULK",
    "MAX_PROPERTY_CHARS",
    "MODES",
    "NOT_AUTHENTICATED",
    "NOT_ON_SCREEN",
    "PRIORITIES",
    "PROJECT_ID",
    "PROJECT_KEY",
    "RESOLUTIONS",
    "SEARCH_REMOVED",
    "SITE_STATUSES",
    "STATUSES",
    "SUMMARY_NEWLINE",
    "ApiError",
    "FieldDef",
    "JiraSimulator",
    "JsonDict",
    "RunningJira",
    "SimUser",
    "Transition",
    "default_workflows",
    "from_adf",
    "jira_time",
    "save_state",
    "serve",
    "start_jira_simulator",
    "to_adf",
]
