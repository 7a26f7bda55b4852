"""An in-memory connector: the engine's test double and the template for a new connector.

Not registered as a connector type of poam-sync itself; a package that builds on it registers
its own ``TYPE`` (see docs/connectors.md and ``tests/example_connector``).
"""

from __future__ import annotations

from importlib.resources import files

from poam_sync.connectors.base import Connector, ConnectorType
from poam_sync.connectors.memory.connector import MemoryConnector
from poam_sync.connectors.memory.mapping import MemoryMapping, load_memory_mapping
from poam_sync.connectors.memory.remote import MemoryFault, MemoryRemote
from poam_sync.connectors.memory.settings import MemorySettings

__all__ = [
    "TYPE",
    "MemoryConnector",
    "MemoryFault",
    "MemoryMapping",
    "MemoryRemote",
    "MemorySettings",
]


def _build(settings: MemorySettings, mapping: MemoryMapping, name: str) -> Connector:
    # A fresh, empty remote per build; tests hand a shared one to MemoryConnector directly.
    return MemoryConnector(settings, mapping, name=name)


TYPE: ConnectorType[MemorySettings, MemoryMapping] = ConnectorType(
    name="memory",
    title="Memory",
    settings_model=MemorySettings,
    load_mapping=load_memory_mapping,
    factory=_build,
    mapping_template=files(__name__) / "mapping.yaml",
)
