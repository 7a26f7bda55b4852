"""Table definitions: columns, choices and number prefixes, as ``sys_dictionary`` holds them.

The GRC issue and milestone tables poam-sync writes, the ``task`` table the GRC issue extends,
and the system tables it reads (``sys_user``, ``sys_choice``, ``sys_journal_field``,
``sys_dictionary``, ``sys_db_object``); an office's own table reuses :func:`issue_columns`.

Inheritance, as on an instance: ``sn_grc_issue`` extends ``task`` (``sys_db_object.super_class``;
community answer "Get a list of all parents of a table": "those that are extended from another
table store that table in the Extends table [super_class] field"). A :class:`TableSpec` lists
the columns a record *has* (its own and the inherited ones); its ``extends`` says which of them
are inherited. The dictionary row of an inherited column lives only under the table that
defines it (``name=task``), and so do its choices unless the child table has its own choices
for that element (ServiceNow docs, istanbul "Choice lists and system update sets": a choice
added to the Task state field for an extended table is stored for the extended table only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of a table's dictionary (``sys_dictionary``)."""

    name: str
    type: str = "string"  # string, integer, boolean, glide_date, glide_date_time,
    # reference, journal_input, sys_id
    label: str = ""
    reference: str | None = None  # table a reference points to
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) in sequence order
    default: str = ""
    max_length: int = 255


@dataclass(frozen=True)
class TableSpec:
    """A table: its columns, its number prefix (``ISS0001001``) and its display field."""

    name: str
    label: str
    columns: tuple[Column, ...]
    number_prefix: str | None = None
    display_field: str = "number"
    #: the parent table (``sys_db_object.super_class``): columns of the same name are inherited
    extends: str | None = None
    #: inserts and updates of its records are written to ``sys_audit`` (see .records)
    audited: bool = False


_SYSTEM_COLUMNS = (
    Column("sys_id", "sys_id", "Sys ID", max_length=32),
    Column("sys_created_on", "glide_date_time", "Created"),
    Column("sys_created_by", "string", "Created by"),
    Column("sys_updated_on", "glide_date_time", "Updated"),
    Column("sys_updated_by", "string", "Updated by"),
    Column("sys_mod_count", "integer", "Updates", default="0"),
)

# The task table's stock states (ServiceNow docs, "Project and project task states": "the states
# in project and project task inherit the states in Task table": -5 Pending ... 7 Closed Skipped).
TASK_STATES = (
    ("-5", "Pending"),
    ("1", "Open"),
    ("2", "Work in Progress"),
    ("3", "Closed Complete"),
    ("4", "Closed Incomplete"),
    ("7", "Closed Skipped"),
)
# A GRC issue's own states, an override of task's under name=sn_grc_issue (ServiceNowDocs,
# governance-risk-compliance/audit-management/issue-form.md: New, Analyze, Respond, Review,
# Closed Complete, Closed Incomplete). The codes are not published: these are ours, and they
# deliberately differ from task's codes for the same labels, as choice values may.
GRC_ISSUE_STATES = (
    ("1", "New"),
    ("2", "Analyze"),
    ("3", "Respond"),
    ("4", "Review"),
    ("5", "Closed Complete"),
    ("6", "Closed Incomplete"),
)
# task.priority, inherited by the GRC issue without an override (issue-form.md: 1 - Critical
# .. 5 - Planning).
PRIORITIES = (
    ("1", "1 - Critical"),
    ("2", "2 - High"),
    ("3", "3 - Moderate"),
    ("4", "4 - Low"),
    ("5", "5 - Planning"),
)
MILESTONE_STATES = (
    ("1", "Open"),
    ("2", "Work in Progress"),
    ("3", "Closed Complete"),
    ("4", "Closed Skipped"),
)


def task_columns() -> tuple[Column, ...]:
    """The columns of ``task`` poam-sync touches, as the stock instance defines them."""
    return (
        Column("number", label="Number", max_length=40),
        Column("short_description", label="Short description", max_length=160),
        Column("description", label="Description", max_length=4000),
        Column("state", "integer", "State", choices=TASK_STATES, default="1"),
        Column("priority", "integer", "Priority", choices=PRIORITIES, default="4"),
        Column("assigned_to", "reference", "Assigned to", reference="sys_user"),
        # a date/time, stored in UTC (see the module docstring of .reads)
        Column("due_date", "glide_date_time", "Due date"),
        Column("close_notes", label="Close notes", max_length=4000),
        Column("active", "boolean", "Active", default="true"),
        Column("work_notes", "journal_input", "Work notes"),
        Column("comments", "journal_input", "Additional comments"),
        Column("correlation_id", label="Correlation ID", max_length=100),
        Column("correlation_display", label="Correlation display", max_length=100),
    )


def issue_columns(
    *, with_correlation: bool = True, stamp_field: str | None = None
) -> tuple[Column, ...]:
    """The columns of a GRC issue; an office's own table reuses them (and names its stamp).

    For ``sn_grc_issue`` (which extends ``task``) every column but the ``u_`` ones is
    inherited; its state keeps the GRC issue's own choices (an override)."""
    cols = [
        Column("state", "integer", "State", choices=GRC_ISSUE_STATES, default="1")
        if c.name == "state"
        else c
        for c in task_columns()
        if with_correlation or not c.name.startswith("correlation_")
    ]
    cols += [
        Column("u_scheduled_completion_date", "glide_date", "Scheduled completion date"),
        Column("u_controls", label="Controls", max_length=1000),
    ]
    if stamp_field:
        cols.append(Column(stamp_field, label="poam-sync stamp", max_length=200))
    return tuple(cols)


#: the GRC issue's own people columns (issue-form.md: "Issue manager", "Issue manager group"),
#: which its state rules need (see records.GRC_STATE_RULES)
GRC_ISSUE_OWN_COLUMNS = (
    Column("issue_manager", "reference", "Issue manager", reference="sys_user"),
    Column("issue_manager_group", "reference", "Issue manager group", reference="sys_user_group"),
)


def default_tables() -> list[TableSpec]:
    return [
        # task first: the tables extending it find its sys_db_object row
        TableSpec("task", "Task", task_columns(), "TASK", audited=True),
        TableSpec(
            "sn_grc_issue",
            "Issue",
            (*issue_columns(), *GRC_ISSUE_OWN_COLUMNS),
            "ISS",
            extends="task",
            audited=True,
        ),
        TableSpec(
            "sn_irm_cont_auth_milestone_task",
            "Milestone",
            (
                Column("number", label="Number", max_length=40),
                Column("short_description", label="Short description", max_length=160),
                Column("state", "integer", "State", choices=MILESTONE_STATES, default="1"),
                Column("due_date", "glide_date", "Due date"),
                Column("parent", "reference", "Parent", reference="sn_grc_issue"),
                Column("correlation_id", label="Correlation ID", max_length=100),
                Column("work_notes", "journal_input", "Work notes"),
            ),
            "CAMT",
            audited=True,
        ),
        TableSpec(
            "sys_user",
            "User",
            (
                Column("user_name", label="User ID"),
                Column("name", label="Name"),
                Column("email", label="Email"),
                Column("time_zone", label="Time zone"),
                Column("preferred_language", label="Language"),
                Column("active", "boolean", "Active", default="true"),
            ),
            None,
            "name",
        ),
        TableSpec(
            "sys_choice",
            "Choices",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("value", label="Value"),
                Column("label", label="Label"),
                Column("sequence", "integer", "Sequence"),
                Column("language", label="Language", default="en"),
                Column("inactive", "boolean", "Inactive", default="false"),
            ),
            None,
            "label",
        ),
        TableSpec(
            "sys_journal_field",
            "Journal Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Element"),
                Column("element_id", label="Element ID"),
                Column("value", label="Value", max_length=100000),
            ),
            None,
            "value",
        ),
        TableSpec(
            "sys_dictionary",
            "Dictionary Entry",
            (
                Column("name", label="Table"),
                Column("element", label="Column name"),
                Column("column_label", label="Column label"),
                Column("internal_type", label="Type"),
                Column("reference", label="Reference"),
                Column("max_length", "integer", "Max length"),
            ),
            None,
            "element",
        ),
        TableSpec(
            "sys_audit",
            "Sys Audit",
            (
                Column("tablename", label="Table name", max_length=80),
                Column("fieldname", label="Field name", max_length=80),
                Column("documentkey", label="Document key", max_length=32),
                Column("user", label="User"),
                Column("oldvalue", label="Old value", max_length=8000),
                Column("newvalue", label="New value", max_length=8000),
                Column("reason", label="Reason"),
            ),
            None,
            "documentkey",
        ),
        TableSpec(
            "sys_properties",
            "System Property",
            (
                Column("name", label="Name"),
                Column("value", label="Value", max_length=4000),
                Column("type", label="Type", default="string"),
            ),
            None,
            "name",
        ),
        TableSpec(
            "sys_db_object",
            "Table",
            (
                Column("name", label="Name", max_length=80),
                Column("label", label="Label"),
                Column("super_class", "reference", "Extends table", reference="sys_db_object"),
            ),
            None,
            "name",
        ),
    ]
