"""Search: a JQL subset (parsed by :mod:`.jql`) evaluated against the issues in memory.

Dates are compared in the searching user's time zone at minute granularity, as Jira does;
results of a query are cached per write version so paging through them stays cheap. Cloud's
``nextPageToken`` is an opaque token bound to its query.

Fields and values as Atlassian's JQL reference describes them ("JQL fields", "JQL operators",
"JQL functions": support.atlassian.com/jira-software-cloud/docs/jql-fields/ and the pages
beside it):

- ``resolution = Unresolved`` (or ``resolution is EMPTY``) finds issues without a resolution;
- ``statusCategory`` by name ("To Do", "In Progress", "Done"), key or id;
- ``component`` by name or id (the project's components);
- users (``assignee``, ``reporter``) by account ID or e-mail on Cloud, by username, key,
  e-mail or full name on Data Center (a hidden or masked e-mail is not searchable), and
  ``currentUser()``;
- ``~`` is a word search, not a substring: each word of the value must be a word of the text;
  a trailing ``*`` matches words that start with it; a leading ``*`` or ``?`` is refused
  ("The '*' and '?' are not allowed as first character in wildcard query");
- a value a field does not hold on the site (``status = Nonesuch``) is refused: "The value
  'Nonesuch' does not exist for the field 'status'.";
- ``WAS`` / ``WAS NOT`` / ``WAS IN`` / ``WAS NOT IN`` on status, assignee, priority and
  resolution read the changelog (the current value counts); ``now()`` is the site's clock;
  another function is "Unable to find JQL function";
- anything else it cannot run is a 400 with Jira's error body, never a 500.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from poam_sync.simulators.jira import jql as _jql
from poam_sync.simulators.jira.issues import JiraIssues
from poam_sync.simulators.jira.model import (
    _CATEGORIES,
    COMPONENTS,
    FIELD_BY_ID,
    FIELDS,
    ISSUE_TYPES,
    PROJECT_ID,
    PROJECT_KEY,
    RESOLUTIONS,
    STATUSES,
    ApiError,
    JsonDict,
    SimUser,
)

_RELATIVE_DATE = re.compile(r"[\s\"'(,=<>][+-]\d+[wdhm]\b|now\(\)", re.IGNORECASE)
_WORD = re.compile(r"[0-9a-z]+")
#: fields WAS reads from the changelog
_HISTORY_KINDS = ("status", "user", "priority", "resolution")


class JiraSearch(JiraIssues):
    """JQL evaluation over the stored issues."""

    def search(
        self, jql: str, user: SimUser, *, reconcile: frozenset[str] = frozenset()
    ) -> list[JsonDict]:
        """Issues matching ``jql``, ordered as it says (default: key descending, as Jira).

        With a search lag, the index's snapshots are searched (see :mod:`.state`), except the
        issues named in ``reconcile`` (Cloud's ``reconcileIssues``), searched as they are.
        """
        try:
            query = _jql.parse(jql)
        except _jql.JqlError as exc:
            raise ApiError(400, [str(exc)]) from None
        lagging = bool(self.search_lag_ms)
        cache_key = (jql, user.account_id)
        cached = self._search_cache.get(cache_key)
        if not lagging and cached is not None and cached[0] == self._version:
            return cached[1]  # next page of the same query, nothing written since
        tz = ZoneInfo(user.time_zone)
        predicate = self._compile(query.where, tz, user) if query.where else (lambda _: True)
        view = self.searchable(reconcile)
        hits = [i for i in self._candidates(query.where, view) if predicate(i)]
        order = query.order_by or (("key", True),)
        for name, desc in reversed(order):
            fid = self._jql_field(name)
            hits.sort(key=functools.partial(self._sort_key, fid=fid), reverse=desc)
        if not lagging and not _RELATIVE_DATE.search(jql):  # "-5m" moves with the clock
            if len(self._search_cache) > 64:
                self._search_cache.clear()
            self._search_cache[cache_key] = (self._version, hits)
        return hits

    def _candidates(self, node: _jql.Node | None, view: dict[str, JsonDict]) -> list[JsonDict]:
        """Issues a query can match: by key when it names keys (a fast path), else all."""
        if view is not self.issues:
            return list(view.values())
        clauses = node.parts if isinstance(node, _jql.BoolOp) and node.op == "and" else (node,)
        for c in clauses:
            if (
                isinstance(c, _jql.Clause)
                and c.field.lower() in ("key", "issuekey")
                and c.op in ("=", "in")
            ):
                ids = [self._by_key.get((v.text or "").upper(), v.text or "") for v in c.values]
                return [self.issues[i] for i in dict.fromkeys(ids) if i in self.issues]
            if isinstance(c, _jql.Clause) and c.field.lower() == "parent" and c.op in ("=", "in"):
                # the sub-tasks of the named parents, in creation order (a fast path: the
                # predicate still decides; a whole scan made each search cost the project)
                parents = [self._by_key.get((v.text or "").upper(), v.text or "") for v in c.values]
                subs = {s for p in parents if p in self.issues for s in self.issues[p]["subtasks"]}
                return [self.issues[i] for i in sorted(subs, key=_creation) if i in self.issues]
        return list(view.values())

    def _jql_field(self, name: str) -> str:
        low = name.lower()
        aliases = {
            "issuekey": "key",
            "type": "issuetype",
            "due": "duedate",
            "updateddate": "updated",
            "createddate": "created",
            "resolved": "resolutiondate",
        }
        low = aliases.get(low, low)
        if low in ("key", "id", "text"):
            return low
        if low == "statuscategory":
            return "statusCategory"
        for f in FIELDS:
            if low in (c.lower() for c in f.clause_names) or low == f.name.lower():
                if not f.searchable:
                    break
                return f.id
        raise ApiError(
            400, [f"Field '{name}' does not exist or you do not have permission to view it."]
        )

    def _sort_key(self, issue: JsonDict, fid: str) -> Any:
        if fid in ("key", "id"):
            return (0, int(issue["id"]))
        if fid in ("created", "updated"):
            return (0, issue[fid])
        value = issue["fields"].get(fid)
        return (1, "") if value is None else (0, str(value))

    def _values(self, issue: JsonDict, fid: str) -> list[str]:
        """Comparable strings of a field (lower case); several for labels and names+ids."""
        if fid == "key":
            return [issue["key"].lower(), issue["id"]]
        if fid == "id":
            return [issue["id"], issue["key"].lower()]
        if fid == "project":
            return [PROJECT_ID, PROJECT_KEY.lower(), "poa&m remediation"]
        if fid == "issuetype":
            return [issue["issuetype"], ISSUE_TYPES[issue["issuetype"]][0].lower()]
        if fid == "parent":
            parent = self.issues.get(issue["fields"].get("parent") or "")
            return [parent["id"], parent["key"].lower()] if parent else []
        if fid == "statusCategory":
            cat = STATUSES[issue["fields"]["status"]][1]
            cid, name, _color = _CATEGORIES[cat]
            return [str(cid), cat, name.lower()]
        if fid == "text":
            f = issue["fields"]
            texts = [f.get("summary"), f.get("description")] + [
                c["body"] for c in issue["comments"]
            ]
            return [t.lower() for t in texts if t]
        value = issue["fields"].get(fid)
        if value is None:
            return []
        kind = FIELD_BY_ID[fid].kind
        if kind == "labels":
            return [str(v).lower() for v in value]
        if kind == "components":
            return [v for c in value for v in (c, COMPONENTS[c].lower())]
        if kind == "user":
            user = self._user_by_id(value)
            return self._user_names(user) if user else [str(value).lower()]
        if kind == "status":
            return [str(value), STATUSES[value][0].lower()]
        if kind in ("resolution", "priority"):
            table = RESOLUTIONS if kind == "resolution" else self.priorities
            return [str(value), table[value].lower()]
        return [str(value).lower()]

    def _user_names(self, user: SimUser) -> list[str]:
        """How JQL may name ``user``: account ID or a visible e-mail on Cloud; username, key,
        e-mail or full name on Data Center."""
        email = [user.email] if self.email_searchable(user) else []
        if self.cloud:
            names = [user.account_id, *email]
        else:
            names = [user.name, user.key, *email, user.display_name]
        return [n.lower() for n in names]

    def _known_values(self, fid: str, kind: str) -> set[str] | None:
        """Every value JQL may name for a field with a fixed set of them (None: any text)."""
        if fid == "statusCategory":
            return {
                v for cid, (n, name, _c) in _CATEGORIES.items() for v in (str(n), cid, name.lower())
            }
        if kind == "status":
            return {v for sid, (name, _c) in STATUSES.items() for v in (sid, name.lower())}
        if kind in ("priority", "resolution"):
            table = self.priorities if kind == "priority" else RESOLUTIONS
            extra = {"unresolved"} if kind == "resolution" else set()
            return extra | {v for tid, name in table.items() for v in (tid, name.lower())}
        if kind == "components":
            return {v for cid, name in COMPONENTS.items() for v in (cid, name.lower())}
        if kind == "user":
            return {n for u in self.users for n in self._user_names(u)}
        if fid == "issuetype":
            return {v for tid, (name, _s) in ISSUE_TYPES.items() for v in (tid, name.lower())}
        if fid == "project":
            return {PROJECT_ID, PROJECT_KEY.lower(), "poa&m remediation"}
        return None

    def _history(self, issue: JsonDict, fid: str) -> set[str]:
        """Every value ``fid`` has held (its changelog's from/to and the value now), as
        :meth:`_values` spells them."""
        held = set(self._values(issue, fid))
        for h in issue["changelog"]:
            for item in h["items"]:
                if item["fieldId"] != fid:
                    continue
                for raw in (item["from"], item["to"]):
                    if raw is None:
                        continue
                    if FIELD_BY_ID[fid].kind == "user":
                        user = next((u for u in self.users if raw in (u.account_id, u.name)), None)
                        held |= set(self._user_names(user)) if user else {raw.lower()}
                    else:
                        table = {
                            "status": {k: v[0] for k, v in STATUSES.items()},
                            "priority": self.priorities,
                            "resolution": RESOLUTIONS,
                        }
                        name = table[FIELD_BY_ID[fid].kind].get(raw)
                        held |= {raw, name.lower()} if name else {raw}
        return held

    def _compile(self, node: _jql.Node, tz: ZoneInfo, user: SimUser) -> Callable[[JsonDict], bool]:
        if isinstance(node, _jql.BoolOp):
            parts = [self._compile(p, tz, user) for p in node.parts]
            if node.op == "and":
                return lambda i: all(p(i) for p in parts)
            return lambda i: any(p(i) for p in parts)
        if isinstance(node, _jql.Not):
            inner = self._compile(node.part, tz, user)
            return lambda i: not inner(i)
        return self._clause(node, tz, user)

    def _clause(self, c: _jql.Clause, tz: ZoneInfo, user: SimUser) -> Callable[[JsonDict], bool]:
        fid = self._jql_field(c.field)
        kind = FIELD_BY_ID[fid].kind if fid in FIELD_BY_ID else fid
        if c.op in ("=", "!=") and c.values[0].text is None and not c.values[0].function:
            c = _jql.Clause(c.field, "is" if c.op == "=" else "is not", c.values)  # = EMPTY
        if c.op in ("is", "is not"):
            if c.values[0].text is not None:
                raise ApiError(400, [f"The operator '{c.op.upper()}' only supports EMPTY."])
            empty = c.op == "is"
            return lambda i: (not self._values(i, fid)) == empty
        if kind in ("datetime", "date"):
            return self._date_clause(c, fid, kind, tz)
        texts = self._texts(c, fid, kind, user)
        if c.op in ("~", "!~"):
            if kind not in ("text", "rich", "labels") and fid != "text":
                raise ApiError(
                    400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
                )
            words = _search_words(texts[0])

            def hit(issue: JsonDict) -> bool:
                return any(_words_match(words, v) for v in self._values(issue, fid))

            return hit if c.op == "~" else (lambda i: not hit(i))
        if kind in ("text", "rich") and fid != "key":
            raise ApiError(
                400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
            )
        if fid == "key" and c.op in (">", ">=", "<", "<="):
            return self._key_range(c.op, texts[0])
        wanted = set(texts)
        if c.op.startswith("was"):
            if kind not in _HISTORY_KINDS:
                raise ApiError(
                    400,
                    [f"History searches are not supported for the '{c.field}' field."],
                )
            if "not" in c.op:
                return lambda i: not self._history(i, fid) & wanted
            return lambda i: bool(self._history(i, fid) & wanted)
        unresolved = kind == "resolution" and "unresolved" in wanted

        def matches(issue: JsonDict) -> bool:
            values = self._values(issue, fid)
            return bool(set(values) & wanted) or (unresolved and not values)

        if c.op in ("=", "in"):
            return matches
        if c.op in ("!=", "not in"):
            # Jira: != never matches an empty field, except "resolution != Unresolved"
            return lambda i: (bool(self._values(i, fid)) or unresolved) and not matches(i)
        raise ApiError(400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."])

    def _key_range(self, op: str, text: str) -> Callable[[JsonDict], bool]:
        """``issuekey > KEY`` and its kin: the issues of KEY's project whose key number
        compares so with KEY's ("JQL fields", Issue key: supported operators ``=, !=, >, >=,
        <, <=, IN, NOT IN``, support.atlassian.com/jira-software-cloud/docs/jql-fields/; an
        issue key is its project's key and "a sequential number", Atlassian's "What is an
        issue?", confluence.atlassian.com/jirasoftwarecloud/working-with-issues-764478424.html).
        The value is the key or id of an issue that exists (checked before)."""
        named = self.issues[self._by_key.get(text.upper(), text)]
        project, number = _key_parts(named["key"])
        compare: Callable[[int, int], bool] = {
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }[op]

        def check(issue: JsonDict) -> bool:
            other, n = _key_parts(issue["key"])
            return other == project and compare(n, number)

        return check

    def _check_issues_exist(self, c: _jql.Clause) -> None:
        """Jira refuses a query naming an issue that does not exist (any more), one message
        per key ("An issue with key 'POAM-9' does not exist for field 'issuekey'.", a query
        error people meet on deleted issues: community.atlassian.com). It checks the issues
        themselves, not the lagging index: a deleted issue still in search results is
        already refused by key."""
        missing = [
            v.text
            for v in c.values
            if v.text is not None
            and not v.function
            and v.text.upper() not in self._by_key
            and v.text not in self.issues
        ]
        if missing:
            raise ApiError(
                400,
                [f"An issue with key '{k}' does not exist for field '{c.field}'." for k in missing],
            )

    def _texts(self, c: _jql.Clause, fid: str, kind: str, user: SimUser) -> list[str]:
        """The clause's values in lower case, functions evaluated, each checked against the
        values the field can hold on the site."""
        known = self._known_values(fid, kind)
        if fid in ("key", "parent") and not c.op.startswith("was"):
            self._check_issues_exist(c)
        texts = []
        for v in c.values:
            if v.function:
                if (v.text or "").lower() != "currentuser" or kind != "user":
                    raise ApiError(400, [f"Unable to find JQL function '{v.text}()'."])
                texts.append(self._user_names(user)[0])
                continue
            text = (v.text or "").lower()
            if v.text is None:
                raise ApiError(
                    400, [f"The operator '{c.op.upper()}' does not support the value EMPTY."]
                )
            if known is not None and text not in known:
                raise ApiError(
                    400, [f"The value '{v.text}' does not exist for the field '{c.field}'."]
                )
            texts.append(text)
        return texts

    def _date_clause(
        self, c: _jql.Clause, fid: str, kind: str, tz: ZoneInfo
    ) -> Callable[[JsonDict], bool]:
        if c.op not in ("=", "!=", ">", ">=", "<", "<="):
            raise ApiError(
                400, [f"The operator '{c.op}' is not supported by the '{c.field}' field."]
            )
        now = datetime.fromtimestamp(self.now_ms() / 1000, tz)
        value = c.values[0]
        if value.function and (value.text or "").lower() != "now":
            raise ApiError(400, [f"Unable to find JQL function '{value.text}()'."])
        if value.text is None:
            raise ApiError(400, [f"The operator '{c.op}' does not support the value EMPTY."])
        bound = now.timestamp() if value.function else _parse_jql_date(value.text, tz, c.field, now)

        def when(issue: JsonDict) -> float | None:
            if fid in ("created", "updated"):
                return float(issue[fid]) / 1000
            raw = issue["fields"].get(fid)
            if raw is None:
                return None
            if kind == "date":
                day = date.fromisoformat(raw)
                return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
            return float(raw) / 1000

        ops: dict[str, Callable[[float, float], bool]] = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
        }
        compare = ops[c.op]

        def check(issue: JsonDict) -> bool:
            t = when(issue)
            return t is not None and compare(t, bound)

        return check


def _search_words(text: str) -> list[tuple[str, bool]]:
    """The words of a ``~`` value, each with whether it ends in ``*`` (a prefix)."""
    words: list[tuple[str, bool]] = []
    for raw in text.split():
        if raw[0] in "*?":
            raise ApiError(
                400,
                [f"The '*' and '?' are not allowed as first character in wildcard query '{raw}'."],
            )
        prefix = raw.endswith("*")
        words += [(w, False) for w in _WORD.findall(raw.rstrip("*"))]
        if prefix and words:
            words[-1] = (words[-1][0], True)
    return words


def _words_match(words: list[tuple[str, bool]], text: str) -> bool:
    """Every searched word is a word of ``text`` (or starts one, for a prefix)."""
    have = _WORD.findall(text)
    return all(any(h.startswith(w) if prefix else h == w for h in have) for w, prefix in words)


def _encode_token(offset: int, jql: str) -> str:
    digest = hashlib.sha256(jql.encode()).hexdigest()[:8]
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode()


def _decode_token(token: str, jql: str) -> int:
    try:
        offset, _, digest = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if digest == hashlib.sha256(jql.encode()).hexdigest()[:8]:
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise ApiError(400, ["The provided next page token is invalid or expired."])


def _parse_jql_date(text: str, tz: ZoneInfo, field_name: str, now: datetime) -> float:
    """A JQL date value in the searching user's zone (``now`` on the site's clock), as a UTC
    timestamp."""
    raw = text.strip()
    if raw and raw[0] in "+-" and raw[-1] in "wdhm" and raw[1:-1].isdigit():
        amount = int(raw[1:-1]) * (1 if raw[0] == "+" else -1)
        unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[raw[-1]]
        return (now + timedelta(**{unit: amount})).timestamp()
    for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
        with suppress(ValueError):
            return datetime.strptime(raw, fmt).replace(tzinfo=tz).timestamp()
    raise ApiError(
        400,
        [
            f"Date value '{text}' for field '{field_name}' is invalid. Valid formats include: "
            "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period "
            "format e.g. '-5d', '4w 2d'."
        ],
    )


def _key_parts(key: str) -> tuple[str, int]:
    """``("POAM", 12)`` of ``POAM-12``."""
    project, _, number = key.upper().rpartition("-")
    return project, int(number) if number.isdigit() else 0


def _creation(issue_id: str) -> tuple[int, str]:
    """Creation order of issue ids (numbers, given out in turn)."""
    return (int(issue_id), issue_id) if issue_id.isdigit() else (0, issue_id)
