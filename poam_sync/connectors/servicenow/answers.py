"""ServiceNow's error answers as our typed errors, and what a 403 says about its cause.

An instance answers ``{"error": {"message", "detail"}, "status": "failure"}``. A 403 is not
always a permission problem: it may be an ACL ("ACL Exception Update Failed due to security
constraints"), the REST API's own ACL ("User Not Authorized: Failed API level ACL Validation",
ServiceNow KB2466644), a data policy ("Data Policy Exception: The following fields are
mandatory: ...") or a business rule that aborted the write ("Operation against file 'x' was
aborted by Business Rule 'name^sys_id'"); IBM's TADDM guide, "Appendix C: Error codes": 403 "can
also be caused by ACL failures, or business rule or data policy constraints". ACLs become
:class:`~poam_sync.errors.RemoteAuthError`, the others :class:`~poam_sync.errors.RemoteRejected`,
each with the hint for its kind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from poam_sync.connectors._http import parse_retry_after
from poam_sync.errors import (
    RecordGone,
    RemoteAuthError,
    RemoteError,
    RemoteRejected,
    RemoteTransientError,
)


def _error_message(body: bytes | str) -> str:
    """``message: detail`` from ServiceNow's ``{"error": {...}, "status": "failure"}``."""
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        return text[:200]
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "")
        detail = str(err.get("detail") or "").strip()
        return f"{message}: {detail}" if detail else message
    return str(data)[:200]


#: what each kind of 403 means and what to do (see :func:`refusal_kind`)
REFUSAL_HINTS = {
    "data_policy": "a data policy on the instance makes these fields mandatory for this write; "
    "fill them in ServiceNow (or map them), or ask the admin to relax the policy",
    "business_rule": "a business rule on the instance aborted the write (not a permission "
    "problem): see the named rule under System Definition > Business Rules for its condition",
    "acl": "an ACL refuses this write to the integration user: grant its role write access to "
    "the table (System Security > Access Control), or check the user's roles",
    "api_acl": "the instance's REST API ACL refuses the integration user: give it a role the "
    "REST API access ACL allows (System Web Services > REST API Access Policies / ACLs)",
    "forbidden": "the integration user lacks a role or an ACL blocks it",
}


def refusal_kind(text: str) -> str:
    """Which of ServiceNow's 403s ``text`` (``message: detail``) is.

    ``data_policy`` ("Data Policy Exception"), ``business_rule`` ("Operation against file 'x'
    was aborted by Business Rule 'name^sys_id'"), ``acl`` ("ACL Exception Update Failed due to
    security constraints"), ``api_acl`` ("User Not Authorized: Failed API level ACL
    Validation"), else ``forbidden``."""
    low = text.lower()
    if "data policy exception" in low:
        return "data_policy"
    if "aborted by business rule" in low:
        return "business_rule"
    if "acl exception" in low or "security constraints" in low:
        return "acl"
    if "not authorized" in low or "acl validation" in low:
        return "api_acl"
    return "forbidden"


def business_rule_name(text: str) -> str | None:
    """The rule named by a business-rule abort (``'name^sys_id'``), or None."""
    m = re.search(r"aborted by Business Rule '([^'^]*)", text, re.IGNORECASE)
    return m.group(1) if m else None


def mandatory_labels(text: str) -> list[str]:
    """The field labels a data policy exception names as mandatory."""
    _, sep, rest = text.partition("mandatory:")
    if not sep:
        return []
    return [label.strip() for label in rest.split(",") if label.strip()]


def remote_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    what: str,
    connector: str,
    key: str | None = None,
) -> RemoteError | None:
    """The typed error for an HTTP answer, or None when it succeeded."""
    if status < 400:
        return None
    text = _error_message(body)
    message = f"ServiceNow {what} failed with {status}: {text}"
    if status == 429 or status >= 500:
        return RemoteTransientError(
            message,
            connector=connector,
            key=key,
            status=status,
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )
    if status == 401:
        return RemoteAuthError(
            message, connector=connector, key=key, status=status,
            hint="check the user/password or OAuth client in the connector settings",
        )  # fmt: skip
    if status == 403:
        kind = refusal_kind(text)
        if kind in ("acl", "api_acl"):
            return RemoteAuthError(
                message, connector=connector, key=key, status=status, hint=REFUSAL_HINTS[kind]
            )
        return RemoteRejected(
            message, connector=connector, key=key, status=status, hint=REFUSAL_HINTS[kind]
        )
    if status == 404:
        return RecordGone(message, connector=connector, key=key, status=status)
    return RemoteRejected(message, connector=connector, key=key, status=status)
