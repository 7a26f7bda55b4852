"""Jira (Cloud and Data Center): POA&M items as issues of one project.

Registered as the ``jira`` connector type (see :mod:`poam_sync.connectors.registry`).
"""

from __future__ import annotations

from importlib.resources import files

from poam_sync.connectors.base import Connector, ConnectorType
from poam_sync.connectors.jira.connector import JiraConnector
from poam_sync.connectors.jira.mapping import JiraMapping, load_jira_mapping
from poam_sync.connectors.jira.settings import JiraSettings

__all__ = ["TYPE", "JiraConnector", "JiraMapping", "JiraSettings"]


def _build(settings: JiraSettings, mapping: JiraMapping, name: str) -> Connector:
    return JiraConnector(settings, mapping, name=name)


TYPE: ConnectorType[JiraSettings, JiraMapping] = ConnectorType(
    name="jira",
    title="Jira",
    settings_model=JiraSettings,
    load_mapping=load_jira_mapping,
    factory=_build,
    mapping_template=files(__name__) / "mapping.yaml",
)
