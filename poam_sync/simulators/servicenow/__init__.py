"""The ServiceNow simulator (see :mod:`.app`)."""

from poam_sync.simulators.servicenow.app import *  # noqa: F403
