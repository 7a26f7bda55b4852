"""What one simulated Jira site holds in memory, and how it is saved and loaded.

:class:`JiraState` owns every attribute of the simulator; the mixins in the sibling modules
(users, rendering, issues, workflow, search, the human API, the handlers) add behaviour on
top of it and :class:`~poam_sync.simulators.jira.app.JiraSimulator` puts them together.

The site's clock is the wall clock plus an offset tests move (:meth:`JiraState.advance_clock`),
so that time-bound behaviour needs no sleeping. The search index lags behind writes when
``search_lag`` is set: Jira Cloud's search "doesn't provide read-after-write consistency by
default ... the delay might vary from a few seconds to minutes" ("Search After Write with
Search And Reconcile", developer.atlassian.com/cloud/jira/platform/search-and-reconcile).
Each write leaves a snapshot of the issue that searches see only ``search_lag`` seconds later;
until then they see the previous snapshot (or nothing, for a new issue; a deleted issue
lingers). Reads by key or id always see the issue as it is.
"""

from __future__ import annotations

import copy
import math
import threading

from poam_sync.simulators._base import SimControl
from poam_sync.simulators.jira.model import (
    DC_PRIORITIES,
    DEFAULT_USERS,
    MODES,
    OTHER_FIELDS,
    PRIORITIES,
    FieldDef,
    JsonDict,
    SimUser,
    _now_ms,
    default_workflows,
)


class JiraState:
    """The state of one simulated Jira site: issues, counters, workflows, users."""

    def __init__(
        self, *, mode: str = "cloud", state: JsonDict | None = None, search_lag: float = 0.0
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        #: Data Center's ``jira.option.emailvisible``: show, hide or mask (see :mod:`.users`)
        self.email_visibility = "show"
        self.control = SimControl()
        self.lock = threading.RLock()
        self.users: tuple[SimUser, ...] = DEFAULT_USERS
        #: custom fields of other projects' screens that ``GET /field`` lists too (names may
        #: repeat: see :meth:`~.routes.JiraRoutes.duplicate_field`)
        self.other_fields: list[FieldDef] = list(OTHER_FIELDS)
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
        self._clock_offset_ms = 0
        self.search_lag_ms = 0
        #: id -> (visible from, snapshot or None once deleted), oldest first; only with a lag
        self._index: dict[str, list[tuple[int, JsonDict | None]]] = {}
        if state:
            self.load_state(state)
        self.set_search_lag(search_lag)

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

    # -- the clock and the search index -----------------------------------------------------

    def now_ms(self) -> int:
        """The site's clock: the wall clock plus what :meth:`advance_clock` added."""
        return _now_ms() + self._clock_offset_ms

    def advance_clock(self, seconds: float) -> None:
        """Move the site's clock forward (tests: let a search lag pass without sleeping)."""
        with self.lock:
            self._clock_offset_ms += math.ceil(seconds * 1000)  # at least that long
            self._version += 1

    def set_search_lag(self, seconds: float) -> None:
        """Searches see a write only ``seconds`` after it (0: at once, the default)."""
        if seconds < 0:
            raise ValueError("the search lag cannot be negative")
        with self.lock:
            self.search_lag_ms = int(seconds * 1000)
            self._index = {iid: [(0, copy.deepcopy(i))] for iid, i in self.issues.items()}
            self._version += 1

    def _reindex(self, iid: str) -> None:
        """Queue the issue as it is now for the search index (visible after the lag)."""
        if not self.search_lag_ms:
            return
        issue = self.issues.get(iid)
        versions = self._index.setdefault(iid, [])
        now = self.now_ms()
        # keep the newest visible snapshot and the ones still on their way
        visible = [v for v in versions if v[0] <= now]
        versions[:] = visible[-1:] + [v for v in versions if v[0] > now]
        versions.append((now + self.search_lag_ms, copy.deepcopy(issue) if issue else None))

    def searchable(self, reconcile: frozenset[str] = frozenset()) -> dict[str, JsonDict]:
        """The issues as the search index has them now; ``reconcile`` ids as they are."""
        if not self.search_lag_ms:
            return self.issues
        now = self.now_ms()
        out: dict[str, JsonDict] = {}
        for iid, versions in self._index.items():
            seen = [snap for when, snap in versions if when <= now]
            if seen and seen[-1] is not None:
                out[iid] = seen[-1]
        for iid in reconcile:
            if iid in self.issues:
                out[iid] = self.issues[iid]
            else:
                out.pop(iid, None)
        return out

    def _next_seq(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _tick(self) -> int:
        """A write time that is always later than the previous one (``updated`` always moves)."""
        self._last_ms = max(self.now_ms(), self._last_ms + 1)
        self._version += 1
        return self._last_ms
