"""The versions of a pull's window (``fields=updated``), a big window listed in key ranges at once.

The listing asks for ``updated`` alone, at the most a page allows (Cloud: "The greatest number
of items returned per page is achieved when requesting id or key only. It returns max 5000
issues", Atlassian's OpenAPI for ``GET /rest/api/3/search/jql``, ``maxResults``; with any field
a site may answer fewer, 100 a page). Cloud pages follow ``nextPageToken``, one after the
other, so a window of 10,000 issues was 100 requests in series.

The first page is asked as before, so an idle cycle stays one request. When it is not the last:

- Cloud: the rest of the window (keys above the first page's last) is split into up to
  ``shards`` key ranges, bounded by the keys of linked issues (``issuekey >= K AND issuekey <
  L``; the last range open, ``issuekey >= K``, so that issues created since, which no link
  names yet, are still listed). JQL's issue key takes ``=, !=, >, >=, <, <=, IN, NOT IN`` ("JQL
  fields", Issue key, support.atlassian.com/jira-software-cloud/docs/jql-fields/), and compares
  keys by their number within the key's project. Each range is paged on its own thread; the
  host's in-flight bound (connectors/_inflight.py) still holds every request of the process.
  The bounds are looked up first in one search (``issuekey in (...)``): a key that no longer
  names an issue (deleted: refused as every key search refuses it, or left out of the answer)
  or names a moved issue (answered under another key) bounds nothing, so no range is lost to
  a stale link.
- Data Center (``/rest/api/2/search`` with ``startAt``): the first page tells ``total``, so the
  pages at the offsets that remain are asked at once.

Issues are listed once each (by id); an issue moved out of the project or deleted meanwhile is
simply not listed, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import TypeVar

import structlog

from poam_sync.connectors.jira.client import JiraClient, JiraJson
from poam_sync.errors import RemoteRejected

__all__ = ["list_versions"]

log = structlog.get_logger(__name__)

#: a page of the listing asks for this many issues (Cloud's most, with id or key alone)
LISTING_PAGE = 5000
_ORDER = " ORDER BY key ASC"
_FIELDS = ["updated"]
_KEY = re.compile(r"([A-Z][A-Z0-9_]*)-(\d+)")
T = TypeVar("T")


def list_versions(
    client: JiraClient,
    where: str,
    *,
    cloud: bool,
    project: str,
    keys: Callable[[], Collection[str]],
    shards: int,
) -> Iterator[JiraJson]:
    """The issues ``where`` finds (``id``, ``key`` and ``fields.updated``), each once;
    ``keys`` reads the keys known to exist (the links'), only when the window is big."""
    seen: set[str] = set()
    for issue in _listing(client, where, cloud=cloud, project=project, keys=keys, shards=shards):
        issue_id = str(issue["id"])
        if issue_id not in seen:
            seen.add(issue_id)
            yield issue


def _listing(
    client: JiraClient,
    where: str,
    *,
    cloud: bool,
    project: str,
    keys: Callable[[], Collection[str]],
    shards: int,
) -> Iterator[JiraJson]:
    size = client.page_size(cloud, LISTING_PAGE)
    jql = where + _ORDER
    first = client.search_page(jql, _FIELDS, cloud=cloud, properties=None, size=size)
    issues: list[JiraJson] = list(first.get("issues", []))
    yield from issues
    if not cloud:
        yield from _dc_rest(client, jql, first, size, shards)
        return
    token = first.get("nextPageToken")
    if first.get("isLast", True) or not token or not issues:
        return
    last = _number(str(issues[-1]["key"]), project)
    bounds = _bounds(client, keys(), project, last, shards) if last is not None else []
    if not bounds:  # nothing to split by: the rest in series, as before
        yield from _pages(client, jql, size, token)
        return
    clauses = [f"issuekey > {project}-{last} AND issuekey < {bounds[0]}"]
    clauses += [f"issuekey >= {lo} AND issuekey < {hi}" for lo, hi in pairwise(bounds)]
    clauses.append(f"issuekey >= {bounds[-1]}")
    log.info("jira.listing_in_ranges", ranges=len(clauses), bounds=bounds)

    def one(clause: str) -> list[JiraJson]:
        return list(
            client.search(
                f"{where} AND {clause}{_ORDER}",
                _FIELDS,
                cloud=True,
                properties=None,
                page_size=LISTING_PAGE,
            )
        )

    yield from _at_once(one, clauses)


def _pages(client: JiraClient, jql: str, size: int, token: str | None) -> Iterator[JiraJson]:
    """The Cloud pages that follow ``token``, one after the other."""
    while token:
        page = client.search_page(jql, _FIELDS, cloud=True, properties=None, size=size, token=token)
        yield from page.get("issues", [])
        token = page.get("nextPageToken")
        if page.get("isLast", True):
            return


def _dc_rest(
    client: JiraClient, jql: str, first: JiraJson, size: int, shards: int
) -> Iterator[JiraJson]:
    """Data Center: the pages after ``first`` at the offsets its ``total`` leaves, at once
    (each as long as the site's first page was: a site may cap ``maxResults``)."""
    step = len(first.get("issues", []))
    total = int(first.get("total", 0))
    if not step or step >= total:
        return

    def one(start: int) -> list[JiraJson]:
        page = client.search_page(
            jql, _FIELDS, cloud=False, properties=None, size=size, start=start
        )
        return list(page.get("issues", []))

    starts = list(range(step, total, step))
    yield from _at_once(one, starts, workers=shards)


def _at_once(
    run: Callable[[T], list[JiraJson]], parts: list[T], *, workers: int | None = None
) -> Iterator[JiraJson]:
    """``run`` of each part on threads of their own (at most ``workers``), in order."""
    with ThreadPoolExecutor(max_workers=max(1, min(len(parts), workers or len(parts)))) as pool:
        for found in pool.map(run, parts):
            yield from found


def _number(key: str, project: str) -> int | None:
    """The number of ``key`` within ``project`` (None for another project's key)."""
    m = _KEY.fullmatch(key.upper())
    return int(m.group(2)) if m and m.group(1) == project.upper() else None


def _bounds(
    client: JiraClient, keys: Collection[str], project: str, after: int, shards: int
) -> list[str]:
    """Up to ``shards - 1`` keys of ``keys`` above ``after``, evenly spread over them, that
    name issues of ``project`` under that key now (looked up in one search)."""
    numbers = sorted({n for k in keys if (n := _number(k, project)) is not None and n > after})
    if shards < 2 or len(numbers) < 2:
        return []
    step = len(numbers) / shards
    picked = sorted({numbers[int(step * i)] for i in range(1, shards)} - {after})
    wanted = [f"{project.upper()}-{n}" for n in picked]
    try:
        found = client.search_keys(
            "issuekey in ({keys}) ORDER BY key ASC", wanted, _FIELDS, cloud=True, properties=None
        )
    except RemoteRejected as exc:  # every key refused: no ranges, the rest in series
        log.info("jira.listing_bounds_refused", error=str(exc))
        return []
    named = {str(issue["key"]).upper() for issue in found}
    return [k for k in wanted if k in named]
