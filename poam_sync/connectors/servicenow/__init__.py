"""ServiceNow (GRC): POA&M items as records of one table, through ``pysnc``.

Registered as the ``servicenow`` connector type (see :mod:`poam_sync.connectors.registry`).
:mod:`.connector` is the entry to read first; its docstring says which module holds which part.
"""

from __future__ import annotations

from importlib.resources import files

from poam_sync.connectors.base import Connector, ConnectorType
from poam_sync.connectors.servicenow.connector import ServiceNowConnector
from poam_sync.connectors.servicenow.mapping import ServiceNowMapping, load_servicenow_mapping
from poam_sync.connectors.servicenow.settings import ServiceNowSettings

__all__ = ["TYPE", "ServiceNowConnector", "ServiceNowMapping", "ServiceNowSettings"]


def _build(settings: ServiceNowSettings, mapping: ServiceNowMapping, name: str) -> Connector:
    return ServiceNowConnector(settings, mapping, name=name)


TYPE: ConnectorType[ServiceNowSettings, ServiceNowMapping] = ConnectorType(
    name="servicenow",
    title="ServiceNow",
    settings_model=ServiceNowSettings,
    load_mapping=load_servicenow_mapping,
    factory=_build,
    mapping_template=files(__name__) / "mapping.yaml",
)
