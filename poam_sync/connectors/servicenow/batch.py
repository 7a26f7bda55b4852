"""The Batch API: several Table API calls in one request (``POST /api/now/v1/batch``).

ServiceNow docs, "Batch API" (ServiceNowDocs ``api-reference/rest-apis/batch-api.md``): the
request holds ``batch_request_id`` and ``rest_requests``, each with an ``id``, a ``method``, a
``url`` relative to the instance (query parameters included), ``headers`` and a base64
``body``; "You can include any API available on the instance in a Batch API call" and the
instance will "Apply existing ACLs to each API call in the batch". The answer's
``serviced_requests`` carry each call's own ``status_code``, ``headers`` and base64 ``body``
(so one refused call does not fail the others), and ``unserviced_requests`` the ids of calls
it did not run because the batch "reaches a size or processing limit". The versioned path
``/api/now/v1/batch`` is the one that answers (the unversioned one answers "Requested URI does
not represent any resource", ServiceNow community thread "Batch API doesn't work", 2023).

The request is built here rather than with pysnc's ``BatchAPI``, which prepares a whole
``requests`` request per call (about a millisecond each: most of an initial sync's CPU with
milestones). The inner URLs follow pysnc's (the table URL relative to the instance,
``sysparm_display_value=all``, ``sysparm_exclude_reference_link=true``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog

from poam_sync.connectors.servicenow.answers import remote_error
from poam_sync.errors import RemoteError, RemoteTransientError

if TYPE_CHECKING:
    from poam_sync.connectors.servicenow.client import Row, TableClient

log = structlog.get_logger(__name__)

_ACCEPT = {"Accept": "application/json"}
_HEADERS = [
    {"name": "Content-Type", "value": "application/json"},
    {"name": "Accept", "value": "application/json"},
]
#: what a Table API call inside a batch asks for, as pysnc does
_TABLE_PARAMS = (
    "sysparm_display_value=all&sysparm_exclude_reference_link=true"
    "&sysparm_suppress_pagination_header=true"
)
#: times a call the instance left unserviced is sent again (as pysnc's ``BatchAPI.execute``)
_AGAIN = 2


@dataclass(frozen=True, slots=True)
class Call:
    """One Table API call of a batch: ``path`` below the table URL ("" or "/<sys_id>")."""

    method: str
    path: str
    values: Mapping[str, str]
    key: str | None = None  # the sys_id, named by an error


def send(
    client: TableClient,
    table: str,
    calls: Sequence[Call],
    *,
    fields: Sequence[str] = (),
) -> list[Row | RemoteError | None]:
    """Send ``calls`` on ``table`` in one Batch API request; per call, in order: its row (as
    ``sysparm_display_value=all`` renders it; ``fields``: ``sysparm_fields``), the error
    that refused it (typed as a single call's answer would be, :func:`.answers.remote_error`),
    or None when it may or may not have happened (the request, or that call, failed on the
    way: the caller looks up, or repeats what is safe to repeat). Calls left unserviced are
    sent again, twice at most, then None."""
    results: list[Row | RemoteError | None] = [None] * len(calls)
    if not calls:
        return results
    base = urlsplit(client.settings.url).path.rstrip("/")
    query = _TABLE_PARAMS + (f"&sysparm_fields={','.join(fields)}" if fields else "")
    todo = {
        str(i): {
            "id": str(i),
            "method": call.method,
            "url": f"{base}/api/now/table/{table}{call.path}?{query}",
            "headers": _HEADERS,
            "body": base64.b64encode(json.dumps(dict(call.values)).encode()).decode(),
        }
        for i, call in enumerate(calls)
    }
    target = f"{client.settings.url}/api/now/v1/batch"
    for attempt in range(1 + _AGAIN):
        body: dict[str, object] = {
            "batch_request_id": str(attempt + 1),
            "rest_requests": list(todo.values()),
        }

        def post(body: dict[str, object] = body) -> dict[str, object]:
            answer: dict[str, object] = client.session.post(
                target, json=body, headers=_ACCEPT
            ).json()
            return answer

        try:
            data = client.guarded(post, what="POST batch")
        except RemoteTransientError as exc:
            # The batch may or may not have been applied: what it did not settle is the
            # caller's to settle one by one.
            log.info(
                "servicenow.batch_failed",
                connector=client.connector,
                error=str(exc),
                items=len(todo),
            )
            return results
        except RemoteError as exc:
            return [r if r is not None else exc for r in results]
        for served in _as_list(data.get("serviced_requests")):
            rid = str(served.get("id"))
            if rid in todo:
                del todo[rid]
                call = calls[int(rid)]
                results[int(rid)] = _served(client, table, call, served)
        unserviced = {str(u) for u in _as_list(data.get("unserviced_requests"), keep=True)}
        todo = {k: v for k, v in todo.items() if k in unserviced}
        if not todo:
            break
    return results


def _served(
    client: TableClient, table: str, call: Call, served: Mapping[str, object]
) -> Row | RemoteError | None:
    """One call's answer inside a batch: its row, the error that refused it, or None when it
    may or may not have happened."""
    status = int(str(served.get("status_code") or 0))
    headers = {str(h.get("name")): str(h.get("value")) for h in _as_list(served.get("headers"))}
    content = base64.b64decode(str(served.get("body") or ""))
    error = remote_error(
        status,
        headers,
        content,
        what=f"batched {call.method} {table}{call.path}",
        connector=client.connector,
        key=call.key,
    )
    if isinstance(error, RemoteTransientError):
        return None  # may or may not have happened: left to the caller
    if error is not None:
        return error
    try:
        result = json.loads(content)["result"]
    except (ValueError, KeyError, TypeError):
        return None
    return {
        k: (
            (_text(v.get("value")), _text(v.get("display_value")))
            if isinstance(v, dict)
            else (_text(v), _text(v))
        )
        for k, v in result.items()
    }


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _as_list(value: object, *, keep: bool = False) -> list[Any]:
    """A JSON list of objects (``keep``: of anything) from an answer, else empty."""
    if not isinstance(value, list):
        return []
    return value if keep else [v for v in value if isinstance(v, dict)]
