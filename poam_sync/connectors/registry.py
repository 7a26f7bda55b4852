"""The installed connector types, found through one entry-point group.

A connector package (ours or a third party's) registers its :class:`ConnectorType` in its
``pyproject.toml``::

    [project.entry-points."poam_sync.connectors"]
    archer = "poam_sync_archer:TYPE"

and ``type: archer`` in the configuration finds it. Our own Jira and ServiceNow connectors are
registered the same way. Types are loaded lazily, once, on first use; a package that fails to
load is reported when its type is asked for, and never takes the others down.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points
from typing import Any

from poam_sync.connectors.base import ConnectorType
from poam_sync.errors import ConfigError

ENTRY_POINT_GROUP = "poam_sync.connectors"

# Any: the registry holds types of different settings and mappings (ConnectorType's parameters
# are invariant, so no common supertype fits); each is consistent within itself.
AnyConnectorType = ConnectorType[Any, Any]


@cache
def _discover() -> tuple[dict[str, AnyConnectorType], dict[str, str]]:
    found: dict[str, AnyConnectorType] = {}
    broken: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # the first distribution on the path wins, as importlib resolves it
        try:
            value = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not fatal
            broken[ep.name] = f"{ep.value} failed to load: {type(exc).__name__}: {exc}"
            continue
        if not isinstance(value, ConnectorType):
            broken[ep.name] = f"{ep.value} is not a poam_sync ConnectorType"
        elif value.name != ep.name:
            broken[ep.name] = f"{ep.value} names itself {value.name!r}, not {ep.name!r}"
        else:
            found[ep.name] = value
    return found, broken


def connector_types() -> dict[str, AnyConnectorType]:
    """Every installed connector type that loads, by name."""
    return dict(sorted(_discover()[0].items()))


def connector_type(name: str) -> AnyConnectorType:
    """The type ``name``; a :class:`ConfigError` naming the installed types otherwise."""
    found, broken = _discover()
    if name in found:
        return found[name]
    if name in broken:
        raise ConfigError(
            f"connector type {name!r} is installed but broken: {broken[name]}",
            hint="reinstall the package that provides it, or remove it",
        )
    installed = ", ".join(sorted(found)) or "none"
    raise ConfigError(
        f"unknown connector type {name!r} (installed: {installed})",
        hint="install the package that provides it (it registers itself under the "
        f"{ENTRY_POINT_GROUP!r} entry points), or fix the type",
    )


def refresh() -> None:
    """Forget what was discovered (after installing a package at run time; tests)."""
    _discover.cache_clear()
