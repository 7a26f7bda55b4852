"""The Jira mapping's projection: what survives a round trip, and that it is stable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

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


def test_a_human_resolution_outside_the_map_still_reads_by_status() -> None:
    assert MAPPING.status_for("Done", "Duplicate") == Status.COMPLETED
    assert MAPPING.status_for("Risk Accepted", None) == Status.RISK_ACCEPTED
    assert MAPPING.status_for("Nowhere", None) is None
