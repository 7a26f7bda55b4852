"""What a POA&M's Milestone Changes say about its Planned Milestones.

The FedRAMP template keeps a milestone's completion in the Milestone Changes column, numbered
like the milestone it changes: ``(1) Complete 2025-11-21 : Base image rebuilt`` completes
milestone (1) on 2025-11-21 (the FedRAMP POA&M Template Completion Guide's "(n) New / Update /
Complete yyyy-mm-dd" entries). The planned milestone itself carries no state.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from poam_sync.model import Milestone, MilestoneChange, MilestoneStatus

_NUMBER = re.compile(r"^\((\d+)\)")
_DONE = frozenset({MilestoneStatus.COMPLETED, MilestoneStatus.ARCHIVED})


def complete_from_changes(
    milestones: Sequence[Milestone], changes: Sequence[MilestoneChange]
) -> tuple[Milestone, ...]:
    """``milestones`` with each one a dated ``complete`` change names marked completed on that
    date (a milestone already completed or archived keeps its own state)."""
    completed: dict[str, MilestoneChange] = {}
    for change in changes:
        m = _NUMBER.match(change.text)
        if change.kind == "complete" and change.on is not None and m:
            completed[str(int(m[1]))] = change
    out = []
    for milestone in milestones:
        done = completed.get(milestone.id.lstrip("0") or milestone.id)
        if done is not None and milestone.status not in _DONE:
            milestone = milestone.model_copy(
                update={"status": MilestoneStatus.COMPLETED, "completed_on": done.on}
            )
        out.append(milestone)
    return tuple(out)
