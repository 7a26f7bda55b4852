"""An example third-party connector: how a package outside poam-sync adds a connector type.

Its ``pyproject.toml`` registers ``example = "poam_sync_example:TYPE"`` under the
``poam_sync.connectors`` entry points; ``type: example`` in a configuration then builds it.
It reuses the memory connector by subclassing, with one remote per process (:data:`SHARED`),
so that every connector built from a configuration (the CLI, the daemon, each engine a test
builds) sees the same records, as they would all see the same real remote.
"""

from __future__ import annotations

from poam_sync.connectors._http import RetryPolicy
from poam_sync.connectors.base import Connector, ConnectorType
from poam_sync.connectors.memory import (
    MemoryConnector,
    MemoryMapping,
    MemoryRemote,
    MemorySettings,
)
from poam_sync.connectors.memory.mapping import load_memory_mapping

__all__ = ["SHARED", "TYPE", "ExampleConnector"]

#: the example's remote system, shared by every connector built in this process
SHARED = MemoryRemote()


class ExampleConnector(MemoryConnector):
    """The memory connector, on the shared remote unless a test hands it its own."""

    def __init__(
        self,
        settings: MemorySettings | None = None,
        mapping: MemoryMapping | None = None,
        *,
        name: str = "example",
        remote: MemoryRemote | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        remote = SHARED if remote is None else remote
        super().__init__(settings, mapping, name=name, remote=remote, retry=retry)


def _build(settings: MemorySettings, mapping: MemoryMapping, name: str) -> Connector:
    return ExampleConnector(settings, mapping, name=name)


TYPE: ConnectorType[MemorySettings, MemoryMapping] = ConnectorType(
    name="example",
    title="Example",
    settings_model=MemorySettings,
    load_mapping=load_memory_mapping,
    factory=_build,
    # no mapping_template: `poam-sync init` writes starter mappings for real systems only
)
