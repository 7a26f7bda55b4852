"""The Jira simulator (see :mod:`.app`)."""

from poam_sync.simulators.jira.app import *  # noqa: F403
from poam_sync.simulators.jira.app import (
    CLOUD_NOT_AUTHENTICATED as CLOUD_NOT_AUTHENTICATED,
)
from poam_sync.simulators.jira.app import (
    NOT_AUTHENTICATED as NOT_AUTHENTICATED,
)
from poam_sync.simulators.jira.app import (
    SEARCH_REMOVED as SEARCH_REMOVED,
)
from poam_sync.simulators.jira.app import save_state as save_state
