"""Admin webhooks: registered through the REST API, sent after each write, signed with a secret.

Registration is Jira's admin webhook resource, ``/rest/webhooks/1.0/webhook`` (Cloud and Data
Center alike): ``POST`` a body ``{"name", "url", "events": ["jira:issue_created", ...],
"filters": {"issue-related-events-section": JQL}, "excludeBody", "secret"}`` -> 201 with the
webhook (``self``, ``name``, ``url``, ``events``, ``filters``, ``enabled``); ``GET`` lists them,
``DELETE .../webhook/{id}`` -> 204 (the parameters of jira.js's ``createWebhook``,
mrrefactoring.github.io/jira.js/api/functions/server.createWebhook).

Delivery: a POST of the event as JSON, ``{"timestamp", "webhookEvent", "issue_event_type_name",
"user", "issue": {id, key, self, fields}, "changelog": {"id", "items"}}`` (comments:
``"comment_created"`` with ``"comment"``). With a secret, "each request is signed via a
Hash-based Message Authentication Code (HMAC) ... HMACSha256. The header X-Hub-Signature ...
x-hub-signature: sha256=<hex>" over the raw body (Jira Data Center, "Managing webhooks",
confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html; Jira Cloud signs
admin webhooks the same way, "Secure admin webhooks",
developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks). Each delivery
carries a unique ``X-Atlassian-Webhook-Identifier``. A webhook registered without a secret is
sent unsigned; a Data Center receiver then relies on a token in the URL it was given.
Deliveries are asynchronous (:mod:`poam_sync.simulators._outbound`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from zoneinfo import ZoneInfo

from poam_sync.simulators._outbound import Outbound
from poam_sync.simulators.jira import jql as _jql
from poam_sync.simulators.jira.model import ApiError, JsonDict, SimUser
from poam_sync.simulators.jira.search import JiraSearch

WEBHOOK_PATH = "/rest/webhooks/1.0/webhook"
ISSUE_EVENTS = ("jira:issue_created", "jira:issue_updated", "jira:issue_deleted")
EVENTS = (*ISSUE_EVENTS, "comment_created")
_TYPE_NAMES = {
    "jira:issue_created": "issue_created",
    "jira:issue_updated": "issue_updated",
    "jira:issue_deleted": "issue_deleted",
    "comment_created": "issue_commented",
}


class JiraWebhooks(JiraSearch):
    """The registered admin webhooks and their deliveries."""

    def __init__(
        self, *, mode: str = "cloud", state: JsonDict | None = None, search_lag: float = 0.0
    ) -> None:
        self.webhooks: dict[str, JsonDict] = {}  # id -> registration (secret included)
        self.outbound = Outbound()  # the deliveries, sent by a thread of their own
        self._hook_base = "http://localhost"  # the site's URL, as the registration saw it
        super().__init__(mode=mode, state=state, search_lag=search_lag)

    # -- registration (Python, and the REST resource) ------------------------------------------

    def register_webhook(
        self,
        url: str,
        *,
        events: tuple[str, ...] = ISSUE_EVENTS,
        jql: str | None = None,
        secret: str | None = None,
        base: str = "http://localhost",
    ) -> JsonDict:
        """What ``POST /rest/webhooks/1.0/webhook`` does; returns the webhook as Jira shows it."""
        return self._register(
            {"name": "poam-sync", "url": url, "events": list(events), "secret": secret}
            | ({"filters": {"issue-related-events-section": jql}} if jql else {}),
            base,
        )

    def webhook_resource(
        self, method: str, path: str, body: object, base: str
    ) -> tuple[int, object]:
        """``/rest/webhooks/1.0/webhook[/{id}]``: (status, payload)."""
        rest = path[len(WEBHOOK_PATH) :].strip("/")
        with self.lock:
            if method == "POST" and not rest:
                if not isinstance(body, dict):
                    raise ApiError(400, ["The request body is not valid."])
                return 201, self._register(body, base)
            if method == "GET" and not rest:
                return 200, [self._shown(h, base) for h in self.webhooks.values()]
            if method == "GET" and rest in self.webhooks:
                return 200, self._shown(self.webhooks[rest], base)
            if method == "DELETE" and rest in self.webhooks:
                del self.webhooks[rest]
                return 204, None
        raise ApiError(404, ["Webhook not found."])

    def _register(self, body: JsonDict, base: str) -> JsonDict:
        url, events = body.get("url"), body.get("events") or []
        errors: dict[str, str] = {}
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            errors["url"] = "The URL is not valid."
        if not isinstance(events, list) or not all(e in EVENTS for e in events):
            errors["events"] = "Unknown event."
        jql = (body.get("filters") or {}).get("issue-related-events-section")
        if jql:
            try:
                _jql.parse(str(jql))
            except _jql.JqlError as exc:
                errors["filters"] = str(exc)
        if errors:
            raise ApiError(400, errors=errors)
        with self.lock:
            hid = str(max((int(h) for h in self.webhooks), default=0) + 1)
            hook: JsonDict = {
                "id": hid,
                "name": str(body.get("name") or "webhook"),
                "url": url,
                "events": list(events),
                "jql": jql or None,
                "excludeBody": bool(body.get("excludeBody")),
                "secret": body.get("secret") or None,
                "enabled": True,
            }
            self.webhooks[hid] = hook
            self._hook_base = base
            return self._shown(hook, base)

    def _shown(self, hook: JsonDict, base: str) -> JsonDict:
        """A webhook as the resource returns it; the secret is never shown again."""
        out: JsonDict = {
            "self": f"{base}{WEBHOOK_PATH}/{hook['id']}",
            "name": hook["name"],
            "url": hook["url"],
            "events": hook["events"],
            "filters": {"issue-related-events-section": hook["jql"] or ""},
            "excludeBody": hook["excludeBody"],
            "enabled": hook["enabled"],
        }
        return out

    # -- deliveries ------------------------------------------------------------------------------

    def _changed(
        self, issue: JsonDict, event: str, author: SimUser, extra: JsonDict | None = None
    ) -> None:
        """Called (under the lock) after each write of ``issue``: queue its deliveries."""
        hooks = [h for h in self.webhooks.values() if h["enabled"] and event in h["events"]]
        if not hooks:
            return
        base = self._hook_base
        payload: JsonDict = {
            "timestamp": self.now_ms(),
            "webhookEvent": event,
            "issue_event_type_name": _TYPE_NAMES[event],
            "user": self.user_json(author, base),
            "issue": self.render_issue(issue, base),
        }
        history = issue["changelog"][-1] if issue["changelog"] else None
        if event == "jira:issue_updated" and history is not None:
            payload["changelog"] = {"id": history["id"], "items": history["items"]}
        payload |= extra or {}
        for hook in hooks:
            if hook["jql"] and not self._in_filter(str(hook["jql"]), issue, author):
                continue
            body = b"" if hook["excludeBody"] else json.dumps(payload).encode()
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "X-Atlassian-Webhook-Identifier": uuid.uuid4().hex,
            }
            if hook["secret"]:
                mac = hmac.new(str(hook["secret"]).encode(), body, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature"] = f"sha256={mac}"
            self.outbound.post(str(hook["url"]), body, headers)

    def _in_filter(self, jql: str, issue: JsonDict, user: SimUser) -> bool:
        query = _jql.parse(jql)
        if query.where is None:
            return True
        return self._compile(query.where, ZoneInfo(user.time_zone), user)(issue)
