"""The Jira mapping's projection: what survives a round trip, and that it is stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from poam_sync.connectors.jira.mapping import JiraMapping, load_jira_mapping
from poam_sync.model import MilestoneStatus, RiskLevel, Status
from tests.jira.conftest import MAPPING_FILE

MAPPING: JiraMapping = load_jira_mapping(MAPPING_FILE)

milestones = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.from_regex(r"[0-9]{1,3}", fullmatch=True),
            "description": st.text(max_size=300),
            "due_date": st.none() | st.dates().map(lambda d: d.isoformat()),
            "status": st.sampled_from([s.value for s in MilestoneStatus]),
        }
    ),
    max_size=5,
    unique_by=lambda m: m["id"],
)
values = st.one_of(
    st.tuples(st.just("status"), st.sampled_from([s.value for s in Status])),
    st.tuples(st.just("original_risk"), st.none() | st.sampled_from([r.value for r in RiskLevel])),
    st.tuples(st.just("title"), st.text(max_size=400)),
    st.tuples(st.just("controls"), st.lists(st.text(min_size=1, max_size=12), max_size=4)),
    st.tuples(st.just("milestones"), milestones),
)


@given(values)
def test_projecting_twice_changes_nothing(pair: tuple[str, object]) -> None:
    """Echoes die only if what comes back projects to itself."""
    field, value = pair
    once = MAPPING.project(field, value)
    assert MAPPING.project(field, once) == once


def test_every_status_reads_back_as_a_status_that_writes_the_same_jira_status() -> None:
    for status in Status:
        target = MAPPING.statuses[status]
        back = Status(MAPPING.project("status", status.value))
        assert MAPPING.statuses[back].status == target.status


def test_a_resolution_that_leaves_the_status_ambiguous_is_unknown_not_guessed() -> None:
    # Done is shared by completed, false_positive, not_applicable and archived
    assert MAPPING.status_for("Done", "Duplicate") is None
    assert MAPPING.status_for("Done", None) is None
    assert MAPPING.status_for("Done", "declined") == Status.FALSE_POSITIVE


def test_a_status_only_one_canonical_status_uses_reads_as_it_whatever_the_resolution() -> None:
    assert MAPPING.status_for("Risk Accepted", None) == Status.RISK_ACCEPTED
    assert MAPPING.status_for("Risk Accepted", "Duplicate") == Status.RISK_ACCEPTED
    assert MAPPING.status_for("Nowhere", None) is None


def test_read_only_lines_cover_a_site_s_own_statuses_and_priorities() -> None:
    mapping = _variant(
        read_statuses={"Blocked": "investigating", "Done / Duplicate": "false_positive"},
        read_priorities={"Lowest": "low", "Major": "moderate"},
    )
    assert mapping.status_for("blocked", None) == Status.INVESTIGATING
    assert mapping.status_for("Done", "duplicate") == Status.FALSE_POSITIVE
    assert mapping.status_for("Done", "Done") == Status.COMPLETED  # statuses: come first
    assert mapping.risk_for("LOWEST") == RiskLevel.LOW
    assert mapping.risk_for("Major") == RiskLevel.MODERATE
    assert MAPPING.risk_for("Lowest") is None
    # reading lines never change what is written, so the projection is the same
    for status in Status:
        assert mapping.project("status", status.value) == MAPPING.project("status", status.value)
    assert mapping.project("original_risk", "low") == "low"


def test_a_read_priority_that_is_also_written_is_refused() -> None:
    with pytest.raises(ValidationError, match="already under priorities"):
        _variant(read_priorities={"high": "critical"})


def test_an_unmapped_sub_task_status_is_unknown_not_open() -> None:
    assert MAPPING.milestone_status_for("Blocked") is None
    mapping = _variant(milestones={"read_statuses": {"Blocked": "in_progress"}})
    assert mapping.milestone_status_for("blocked") == MilestoneStatus.IN_PROGRESS


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Line one\nline two", "Line one line two"),
        ("Windows\r\nline", "Windows line"),
        ("Old Mac\rline", "Old Mac line"),
        ("Trailing\n", "Trailing"),
    ],
)
def test_a_title_s_line_breaks_fold_to_spaces(title: str, summary: str) -> None:
    assert MAPPING.project("title", title) == summary


def _variant(**over: object) -> JiraMapping:
    raw = MAPPING.model_dump(mode="json")
    if "milestones" in over:
        over["milestones"] = raw["milestones"] | dict(over["milestones"])  # type: ignore[call-overload]
    return JiraMapping.model_validate(raw | over)
