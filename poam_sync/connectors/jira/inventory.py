"""The ids of every issue in the connector's project, and nothing else: the engine's periodic
reconcile compares them with its links to find issues deleted in Jira (an incremental pull never
shows a deletion).

One JQL search on the project alone (``project = KEY``: bounded, as Cloud's ``search/jql``
requires; wider than the pull's scope on purpose, since the question is only whether a linked
issue still exists, and the engine asks again by id for any linked issue the listing lacks).
It asks for ``fields=id`` with no ``expand`` and no ``properties``, and pages as every search of
this connector does: Cloud ``/rest/api/3/search/jql`` by ``nextPageToken`` until ``isLast``
(developer.atlassian.com, "The Jira Cloud platform REST API: Issue search", Search for issues
using JQL enhanced search), Data Center ``/rest/api/2/search`` by ``startAt`` against ``total``.
"""

from __future__ import annotations

from poam_sync.connectors.jira.client import JiraClient
from poam_sync.connectors.jira.site import JiraSite

__all__ = ["list_issue_ids"]


def list_issue_ids(client: JiraClient, site: JiraSite, project_key: str) -> list[str]:
    """Every issue id of ``project_key``, each once, as the sync user can see them."""
    jql = f'project = "{project_key}" ORDER BY key ASC'
    ids = {
        str(raw["id"])
        for raw in client.search(jql, ["id"], cloud=site.meta.cloud, properties="", expand=None)
    }
    return sorted(ids)
