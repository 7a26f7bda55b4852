"""Writing plain fields to Jira: canonical values as edit values, and fields Jira refuses.

A field that is not on an issue type's create or edit screen is refused by Jira with a per-field
error. We never let one such field sink the write: the refused fields are dropped, reported as
:class:`~poam_sync.connectors.base.FieldProblem` (``not_on_screen`` says what to configure), and
the rest is written.
"""

from __future__ import annotations

from jira import JIRAError

from poam_sync.connectors.base import (
    FieldProblem,
    SyncValues,
    as_optional_text,
    as_strings,
    as_text,
)
from poam_sync.connectors.jira.client import JiraClient, JiraJson, field_errors
from poam_sync.connectors.jira.directory import JiraDirectory
from poam_sync.connectors.jira.mapping import JiraMapping, as_label, single_line
from poam_sync.connectors.jira.site import JiraSite
from poam_sync.model import RiskLevel

__all__ = ["JiraEditor"]

_NOT_ON_SCREEN = "not on the appropriate screen"
_ESSENTIAL = frozenset({"project", "issuetype", "summary", "parent"})  # never dropped


class JiraEditor:
    """Edit values for mapped fields, and PUT/create bodies trimmed of refused fields."""

    def __init__(
        self, client: JiraClient, site: JiraSite, mapping: JiraMapping, directory: JiraDirectory
    ) -> None:
        self.client = client
        self.site = site
        self.mapping = mapping
        self.directory = directory

    def edit_values(self, values: SyncValues, problems: list[FieldProblem]) -> JiraJson:
        """Mapped canonical fields as Jira edit values (owner through the user directory).

        Callers pass only fields the mapping maps (``site.ids.by_canonical``)."""
        ids = self.site.ids.by_canonical
        out: JiraJson = {}
        for field, value in values.items():
            fid = ids[field]
            if field == "title":
                out[fid] = single_line(as_text(value, field))
            elif field == "description":
                out[fid] = as_text(value, field) or None
            elif field == "owner":
                email = as_optional_text(value, field)
                if email is None:
                    out[fid] = None
                    continue
                ident = self.directory.user_id(email)
                if ident is None:
                    problems.append(
                        FieldProblem(
                            "owner",
                            "unknown_user",
                            f"no Jira user for {email}; the assignee was left as it was",
                            hint="add the user to users: in mappings/jira.yaml",
                        )
                    )
                    continue
                out[fid] = self.directory.user_ref(ident)
            elif field == "original_risk":
                risk = as_optional_text(value, field)
                name = (
                    self.mapping.priorities[RiskLevel(risk)]
                    if risk
                    else self.mapping.default_priority
                )
                out[fid] = {"name": name}
            elif field == "controls":
                out[fid] = list(dict.fromkeys(as_label(c) for c in as_strings(value, field)))
            else:  # the dates: YYYY-MM-DD or None, as Jira takes them
                out[fid] = as_optional_text(value, field)
        return out

    def put_fields(self, key: str, edit: JiraJson) -> list[FieldProblem]:
        """PUT the fields; fields Jira refuses are reported and the rest written anyway."""
        problems: list[FieldProblem] = []
        while edit:

            def put(edit: JiraJson = edit) -> dict[str, str]:
                try:
                    # raw: Issue.update would read the whole issue back after each PUT
                    self.client.send("PUT", f"issue/{key}", {"fields": edit})
                except JIRAError as exc:
                    errors = field_errors(exc)
                    if errors and set(errors) <= set(edit):
                        return errors
                    raise
                return {}

            refused = self.client.call("edit issue", put, key=key)
            if not refused:
                return problems
            for fid, message in refused.items():
                canonical = self.site.ids.canonical_of(fid) or fid
                problems.append(_screen_problem(canonical, fid, f"{key}: {message}", self.mapping))
            edit = {k: v for k, v in edit.items() if k not in refused}
        return problems

    def strip_refused(self, body: JiraJson, errors: JiraJson, problems: list[FieldProblem]) -> bool:
        """Drop optional fields Jira refused from a create body; False when that cannot help."""
        refused = errors.get("errors") or {}
        fields = body["fields"]
        if errors.get("errorMessages") or not refused:
            return False
        if any(fid not in fields or fid in _ESSENTIAL for fid in refused):
            return False
        for fid, message in refused.items():
            del fields[fid]
            canonical = self.site.ids.canonical_of(fid) or fid
            problems.append(_screen_problem(canonical, fid, str(message), self.mapping))
        return True


def _screen_problem(canonical: str, fid: str, message: str, mapping: JiraMapping) -> FieldProblem:
    """A refused field as a problem; ``not_on_screen`` when Jira says the screen lacks it."""
    if _NOT_ON_SCREEN in message:
        return FieldProblem(
            canonical,
            "not_on_screen",
            message,
            hint=f"add the field {fid} to the create and edit screens of {mapping.issue_type} "
            "issues in Jira, or stop syncing it in mappings/jira.yaml",
        )
    return FieldProblem(canonical, "rejected", message)
