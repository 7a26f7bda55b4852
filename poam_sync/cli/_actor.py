"""Who is making a change from the command line: never blank in the change log.

``--actor`` first, then the configuration's ``actor``, then the operating-system user. A
process with none of them (a container without a user name) is told to say who it is, rather
than writing an anonymous change.
"""

from __future__ import annotations

import getpass
import os

from poam_sync.errors import UsageError


def who(explicit: str | None, *, config_actor: str | None = None) -> str:
    """The actor to record: ``explicit``, the config's, or the OS user."""
    for candidate in (explicit, config_actor or _configured_actor()):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        user = getpass.getuser()  # LOGNAME, USER, LNAME, USERNAME, then the password database
    except (OSError, KeyError):
        user = ""
    if user.strip():
        return user.strip()
    raise UsageError(
        "nobody to name in the change log as the author of this change",
        hint="give --actor NAME (or set `actor:` in the configuration)",
    )


def _configured_actor() -> str | None:
    """The configuration file's ``actor``, read alone (connector settings are not needed)."""
    from poam_sync.cli._app import state
    from poam_sync.config import config_path, load_actor

    path = config_path(state.config)
    if not path.exists():
        return None
    return load_actor(path, env=os.environ)
