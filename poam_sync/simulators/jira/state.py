"""What one simulated Jira site holds in memory, and how it is saved and loaded.

:class:`JiraState` owns every attribute of the simulator; the mixins in the sibling modules
(users, rendering, issues, workflow, search, the human API, the handlers) add behaviour on
top of it and :class:`~poam_sync.simulators.jira.app.JiraSimulator` puts them together.
"""

from __future__ import annotations

import threading

from poam_sync.simulators._base import SimControl
from poam_sync.simulators.jira.model import (
    DC_PRIORITIES,
    DEFAULT_USERS,
    MODES,
    PRIORITIES,
    JsonDict,
    SimUser,
    _now_ms,
    default_workflows,
)


class JiraState:
    """The state of one simulated Jira site: issues, counters, workflows, users."""

    def __init__(self, *, mode: str = "cloud", state: JsonDict | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        self.control = SimControl()
        self.lock = threading.RLock()
        self.users: tuple[SimUser, ...] = DEFAULT_USERS
        self.workflows = default_workflows()
        #: the priority scheme: Cloud's Highest..Lowest; Data Center adds Blocker..Trivial
        self.priorities: dict[str, str] = dict(PRIORITIES if mode == "cloud" else DC_PRIORITIES)
        self.issues: dict[str, JsonDict] = {}  # id -> stored issue
        self._by_key: dict[str, str] = {}
        self._next_num = 1
        self._next_id = 10001
        self._last_ms = 0
        self._seq = 10000  # ids of changelog histories, comments and remote links
        self._version = 0  # moves on every write; search results are cached per version
        self._search_cache: dict[tuple[str, str], tuple[int, list[JsonDict]]] = {}
        if state:
            self.load_state(state)

    # -- state -----------------------------------------------------------------------------

    @property
    def cloud(self) -> bool:
        return self.mode == "cloud"

    def dump_state(self) -> JsonDict:
        with self.lock:
            return {
                "mode": self.mode,
                "next_num": self._next_num,
                "next_id": self._next_id,
                "seq": self._seq,
                "issues": self.issues,
            }

    def load_state(self, state: JsonDict) -> None:
        with self.lock:
            self.issues = dict(state.get("issues", {}))
            self._by_key = {issue["key"]: iid for iid, issue in self.issues.items()}
            self._next_num = int(state.get("next_num", len(self.issues) + 1))
            self._next_id = int(state.get("next_id", 10001 + len(self.issues)))
            self._seq = int(state.get("seq", 10000 + 100 * len(self.issues)))
            self._version += 1

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _tick(self) -> int:
        """A write time that is always later than the previous one (``updated`` always moves)."""
        self._last_ms = max(_now_ms(), self._last_ms + 1)
        self._version += 1
        return self._last_ms
