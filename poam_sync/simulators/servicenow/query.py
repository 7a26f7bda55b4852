"""Encoded queries (``sysparm_query``): parsing and matching one value against one term.

ServiceNow docs, "Encoded query strings": terms joined by ``^`` (AND) and ``^OR``, ordered by
``ORDERBY``/``ORDERBYDESC``; an instance ignores terms it cannot parse rather than failing.

Text comparisons ignore case, as on an instance: "by default, text searches in ServiceNow table
columns are insensitive to case" (ServiceNow docs, "Set case and accent sensitivity on a
per-column basis"; the per-column ``i18n_locale_text_match`` opt-in is not modelled, nor is
accent-insensitivity). ``email=Alice@Example.com`` finds ``alice@example.com``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_TERM = re.compile(
    r"^(?P<field>[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?)"
    r"(?P<op>ISNOTEMPTY|ISEMPTY|STARTSWITH|ENDSWITH|NOT LIKE|LIKE|NOT IN|IN|!=|>=|<=|=|>|<)"
    r"(?P<value>.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Term:
    field: str
    op: str
    value: str


@dataclass(frozen=True)
class EncodedQuery:
    groups: tuple[tuple[Term, ...], ...]  # AND of OR-groups
    order: tuple[tuple[str, bool], ...]  # (field, descending)


def parse_query(text: str) -> EncodedQuery:
    """Parse ``sysparm_query``; unknown or malformed terms are ignored like an instance does."""
    groups: list[list[Term]] = []
    order: list[tuple[str, bool]] = []
    if not text:
        return EncodedQuery((), ())
    for raw in text.split("^"):
        part = raw
        is_or = part.startswith("OR") and not part.startswith("ORDERBY")
        if is_or:
            part = part[2:]
        if part.startswith("ORDERBYDESC"):
            order.append((part[len("ORDERBYDESC") :], True))
            continue
        if part.startswith("ORDERBY"):
            order.append((part[len("ORDERBY") :], False))
            continue
        if part in ("", "NQ", "EQ"):
            continue
        m = _TERM.match(part)
        if not m:
            continue  # an instance ignores what it cannot parse
        term = Term(m["field"], m["op"], m["value"])
        if is_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
    return EncodedQuery(tuple(tuple(g) for g in groups), tuple(order))


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _compare(left: str, right: str, numeric: bool) -> int:
    if numeric:
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return (a > b) - (a < b)
    return (left > right) - (left < right)


def term_matches(term: Term, value: str, *, numeric: bool) -> bool:
    op, want = term.op, term.value
    if op == "ISEMPTY":
        return value == ""
    if op == "ISNOTEMPTY":
        return value != ""
    if op == "=":
        if numeric:
            return _compare(value, want, True) == 0
        return value.lower() == want.lower()
    if op == "!=":
        return value.lower() != want.lower()
    if op in (">", ">=", "<", "<="):
        if value == "":
            return False
        c = _compare(value, want, numeric)
        return {">": c > 0, ">=": c >= 0, "<": c < 0, "<=": c <= 0}[op]
    if op == "LIKE":
        return want.lower() in value.lower()
    if op == "NOT LIKE":
        return want.lower() not in value.lower()
    if op == "STARTSWITH":
        return value.lower().startswith(want.lower())
    if op == "ENDSWITH":
        return value.lower().endswith(want.lower())
    if op == "IN":
        return value.lower() in want.lower().split(",")
    if op == "NOT IN":
        return value.lower() not in want.lower().split(",")
    return False


def _predicate(term: Term, numeric: bool) -> Callable[[str], bool]:
    """``term`` as a test of one value, with its constant parts computed once."""
    if term.op in ("IN", "NOT IN"):
        wanted = frozenset(term.value.lower().split(","))
        inside = term.op == "IN"

        def in_set(value: str) -> bool:
            return (value.lower() in wanted) == inside

        return in_set
    if term.op == "=" and not numeric:
        want, folded = term.value, term.value.lower()

        def equal(value: str) -> bool:
            return value == want or value.lower() == folded

        return equal

    def general(value: str) -> bool:
        return term_matches(term, value, numeric=numeric)

    return general


def _sort_key(value: str, numeric: bool) -> tuple[int, float, str]:
    if numeric:
        n = _number(value)
        if n is not None:
            return (1, n, "")
    return (0 if value == "" else 1, 0.0, value)
