"""Helpers shared by the format readers and writers: cells, dates, ratings, people, lists."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from poam_sync.errors import Problem
from poam_sync.model import (
    DeviationStatus,
    Milestone,
    MilestoneChange,
    MilestoneStatus,
    Person,
    RiskLevel,
)

_WS = re.compile(r"\s+")


def fold(text: object) -> str:
    """A header or value folded for comparison: case and all whitespace runs folded."""
    if isinstance(text, str):
        return _fold_str(text)
    return _fold_str(str(text))


@functools.lru_cache(maxsize=8192)
def _fold_str(text: str) -> str:
    return _WS.sub(" ", text).strip().casefold()


class CellError(ValueError):
    """A cell value that cannot be understood; the reader turns it into a :class:`Problem`."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# ---------------------------------------------------------------------------------------------
# Cells

_NEUTRALIZE_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralize(text: str) -> str:
    """Quote a text cell that a spreadsheet would run as a formula (OWASP CSV injection advice:
    prefix a single quote). :func:`unneutralize` undoes it on import, so values round-trip."""
    if text.startswith(_NEUTRALIZE_PREFIXES):
        return "'" + text
    return text


def unneutralize(text: str) -> str:
    if len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def text_of(value: object) -> str | None:
    """A cell as text: None for blank; integral floats without ``.0``; dates as ISO."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    text = unneutralize(str(value).strip())
    return text or None


_BLANKS = frozenset({"", "n/a", "na", "none", "null", "-"})


def is_blank_word(text: str | None) -> bool:
    return text is None or fold(text) in _BLANKS


_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_ERRORS = frozenset(
    {"#VALUE!", "#REF!", "#N/A", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!"}
)
_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ].*)?$")
_US_DATE = re.compile(r"^(\d{1,2})[-/](\d{1,2})[-/](\d{2}|\d{4})$")


def parse_date(value: object) -> date | None:
    """A date from a cell: Excel date, ISO text (``2024-03-01``, ``2024-03-01T17:00:00-04:00``,
    ``2014/05/23``), or US text (``3/03/2027``, ``03-01-24``). Raises :class:`CellError`.

    An ISO date-time keeps its written calendar date: no time zone conversion can shift it.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 < value < 2958466:  # Excel serial day numbers up to 9999-12-31
            return _EXCEL_EPOCH + timedelta(days=int(value))
        raise CellError(f"{value!r} is not a date")
    text = str(value).strip()
    if not text or is_blank_word(text) or text in _EXCEL_ERRORS:
        # an Excel error cached by a date formula (the template's Scheduled Completion Date
        # formula yields #VALUE! on bad input): no date; the caller may apply the rule
        return None
    try:
        m = _ISO_DATE.match(text)
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = _US_DATE.match(text)
        if m:
            year = int(m[3])
            if year < 100:
                year += 2000
            return date(year, int(m[1]), int(m[2]))
    except ValueError as exc:
        raise CellError(f"{text!r} is not a valid date ({exc})", "write it as YYYY-MM-DD") from exc
    raise CellError(f"{text!r} is not a date", "write it as YYYY-MM-DD or MM/DD/YYYY")


# ---------------------------------------------------------------------------------------------
# Ratings and yes/no

_RISK_WORDS: dict[str, RiskLevel] = {
    "low": RiskLevel.LOW,
    "very low": RiskLevel.LOW,
    "cat iii": RiskLevel.LOW,
    "iii": RiskLevel.LOW,
    "moderate": RiskLevel.MODERATE,
    "medium": RiskLevel.MODERATE,
    "cat ii": RiskLevel.MODERATE,
    "ii": RiskLevel.MODERATE,
    "high": RiskLevel.HIGH,
    "cat i": RiskLevel.HIGH,
    "i": RiskLevel.HIGH,
    "very high": RiskLevel.CRITICAL,
    "critical": RiskLevel.CRITICAL,
}
_PLAIN_RISK = frozenset({"low", "moderate", "high", "critical"})


def parse_risk(text: str | None) -> tuple[RiskLevel | None, str | None]:
    """``(level, label)``: the canonical level and the source's own word when it is not plain
    (``Very High`` -> critical, ``CAT I`` -> high). Raises :class:`CellError` on other words."""
    if is_blank_word(text):
        return None, None
    assert text is not None
    key = fold(text)
    level = _RISK_WORDS.get(key)
    if level is None:
        raise CellError(
            f"unknown risk rating {text!r}",
            "use Low, Moderate, High or Critical (eMASS: Very Low..Very High, CAT I..III)",
        )
    return level, (None if key in _PLAIN_RISK else text)


def risk_word(level: RiskLevel | None, label: str | None) -> str | None:
    if label:
        return label
    return level.value.capitalize() if level else None


_DEVIATION_WORDS: dict[str, DeviationStatus] = {
    "yes": DeviationStatus.APPROVED,
    "approved": DeviationStatus.APPROVED,
    "no": DeviationStatus.NO,
    "pending": DeviationStatus.PENDING,
    "investigating": DeviationStatus.INVESTIGATING,
    "rejected": DeviationStatus.REJECTED,
    "withdrawn": DeviationStatus.WITHDRAWN,
}


def parse_deviation(text: str | None) -> DeviationStatus | None:
    if is_blank_word(text):
        return None
    assert text is not None
    found = _DEVIATION_WORDS.get(fold(text))
    if found is None:
        raise CellError(f"unknown value {text!r}", "use Yes, No or Pending")
    return found


def deviation_word(value: DeviationStatus | None) -> str | None:
    if value is None:
        return None
    return {
        DeviationStatus.APPROVED: "Yes",
        DeviationStatus.NO: "No",
        DeviationStatus.PENDING: "Pending",
    }.get(value, value.value.capitalize())


def parse_yes_no(text: str | None) -> bool | None:
    if is_blank_word(text):
        return None
    assert text is not None
    key = fold(text)
    if key in {"yes", "y", "true", "tracking"}:
        return True
    if key in {"no", "n", "false"}:
        return False
    raise CellError(f"unknown value {text!r}", "use Yes or No")


def yes_no(value: bool | None) -> str | None:
    return None if value is None else ("Yes" if value else "No")


# ---------------------------------------------------------------------------------------------
# Lists and people

_LIST_SPLIT = re.compile(r"[,;\n]+")
_CVE_SPLIT = re.compile(r"[\s,;]+")


def split_list(text: str | None, *, lines_only: bool = False) -> tuple[str, ...]:
    if not text:
        return ()
    parts = text.splitlines() if lines_only else _LIST_SPLIT.split(text)
    return tuple(p.strip() for p in parts if p.strip())


def split_cves(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(p for p in _CVE_SPLIT.split(text) if p)


_EMAIL = re.compile(r"<?([A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})>?")


def parse_person(text: str | None) -> Person | None:
    """FedRAMP Point of Contact: ``Name <email> - Org`` (any part optional)."""
    if not text:
        return None
    email = None
    m = _EMAIL.search(text)
    if m:
        email = m[1]
        text = (text[: m.start()] + text[m.end() :]).strip()
    if text.startswith("-"):
        # "- Org": an organization with no person (what our exports write for one)
        text = " " + text
    name_text, sep, org = text.partition(" - ")
    name = name_text.strip().rstrip("-").strip() or None
    org_text = org.strip() or None if sep else None
    return Person(name=name, email=email, org=org_text)


def person_text(person: Person | None) -> str | None:
    if person is None:
        return None
    text = person.name or ""
    if person.email:
        text = f"{text} <{person.email}>" if text else person.email
    if person.org:
        text = f"{text} - {person.org}" if text else f"- {person.org}"
    return text or None


def parse_office_org(text: str | None) -> Person | None:
    """eMASS Office/Org: ``Org, First Last, Phone, Email`` (often only ``Org``)."""
    if not text:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    email = next((p for p in parts if _EMAIL.fullmatch(p)), None)
    rest = [p for p in parts if p != email and not re.fullmatch(r"[\d\s().+-]{7,}", p)]
    org = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    return Person(name=name, email=email.strip("<>") if email else None, org=org)


# ---------------------------------------------------------------------------------------------
# Milestones in text cells

_NUMBERED = re.compile(r"(?m)^\s*\((\d+)\)\s*")
_LEADING_DATE = re.compile(r"^(\d{4}[-/]\d{1,2}[-/]\d{1,2})\s*:?\s*")
_TRAILING_DATE = re.compile(r"\s*(\d{1,2}/\d{1,2}/\d{2,4}|\d{4}-\d{1,2}-\d{1,2})\s*$")
# Our suffix for a milestone's state in text cells: "[completed 2026-11-14]", "[in progress]".
_STATE = re.compile(
    r"\s*\[(open|in progress|completed|archived)(?:\s+(\d{4}-\d{2}-\d{2}))?\]\s*$", re.IGNORECASE
)
# the change word counts only before a date, as in "(2) Update 2024-06-18 : text"
_CHANGE = re.compile(r"^(New|Update|Updated|Complete|Completed|Extension)\s+(?=\d)", re.IGNORECASE)


def _numbered_chunks(text: str) -> list[tuple[str, str]] | None:
    marks = list(_NUMBERED.finditer(text))
    if not marks:
        return None
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append((m[1], " ".join(text[m.end() : end].split())))
    return out


def parse_planned_milestones(text: str | None) -> tuple[Milestone, ...]:
    """FedRAMP Planned Milestones ``(1) 2024-05-23: text`` entries, or eMASS lines ending in a
    date (``Implement Procedure A 10/25/2018``). Raises :class:`CellError` on a bad date."""
    if not text:
        return ()
    chunks = _numbered_chunks(text)
    if chunks is None:
        lines = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text) if p.strip()]
        chunks = [(str(i), line) for i, line in enumerate(lines, 1)]
    out = []
    for number, body in chunks:
        due = done_on = None
        status = MilestoneStatus.OPEN
        s = _STATE.search(body)
        if s:
            status = MilestoneStatus(s[1].lower().replace(" ", "_"))
            done_on = parse_date(s[2]) if s[2] else None
            body = body[: s.start()]
        due = None
        m = _LEADING_DATE.match(body)
        if m:
            due = parse_date(m[1])
            body = body[m.end() :]
        else:
            t = _TRAILING_DATE.search(body)
            if t and t.start() > 0:
                due = parse_date(t[1])
                body = body[: t.start()]
        out.append(
            Milestone(
                id=number,
                description=body.strip(),
                due_date=due,
                status=status,
                completed_on=done_on,
            )
        )
    return tuple(out)


def milestones_text(milestones: Sequence[Milestone]) -> str | None:
    if not milestones:
        return None
    parts = []
    for i, m in enumerate(milestones, 1):
        number = m.id if m.id.isdigit() else str(i)
        when = f" {m.due_date.isoformat()}:" if m.due_date else ""
        state = ""
        if m.status is not MilestoneStatus.OPEN or m.completed_on:
            state = " [" + m.status.value.replace("_", " ")
            state += f" {m.completed_on.isoformat()}]" if m.completed_on else "]"
        parts.append(f"({number}){when} {m.description}{state}".rstrip())
    return "\n\n".join(parts)


def parse_milestone_changes(text: str | None) -> tuple[MilestoneChange, ...]:
    """FedRAMP Milestone Changes ``(2) Update 2024-06-18 : text`` entries; other text becomes
    one ``note`` entry per paragraph."""
    if not text:
        return ()
    chunks = _numbered_chunks(text)
    if chunks is None:
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
        chunks = [("", p) for p in paragraphs]
    out = []
    for number, body in chunks:
        kind = "note"
        m = _CHANGE.match(body)
        if m:
            kind = m[1].lower().removesuffix("d") if m[1].lower() != "extension" else "extension"
            body = body[m.end() :]
        on = None
        d = _LEADING_DATE.match(body)
        if d:
            on = parse_date(d[1])
            body = body[d.end() :]
        else:
            t = _TRAILING_DATE.search(body)
            if t and t.start() > 0:
                on = parse_date(t[1])
                body = body[: t.start()]
        prefix = f"({number}) " if number else ""
        out.append(MilestoneChange(kind=kind, on=on, text=(prefix + body.strip(" :")).strip()))
    return tuple(out)


_CHANGE_WORDS = {"new": "New", "update": "Update", "complete": "Complete"}


def milestone_changes_text(changes: Sequence[MilestoneChange]) -> str | None:
    if not changes:
        return None
    parts = []
    for c in changes:
        number, body = "", c.text
        m = re.match(r"^\((\d+)\)\s*", body)
        if m:
            number, body = f"({m[1]}) ", body[m.end() :]
        word = _CHANGE_WORDS.get(c.kind, c.kind.capitalize() if c.kind != "note" else "")
        when = f" {c.on.isoformat()}" if c.on else ""
        head = f"{number}{word}{when}".strip()
        parts.append(f"{head} : {body}" if head else body)
    return "\n\n".join(parts)


# ---------------------------------------------------------------------------------------------
# Header matching


@dataclass
class HeaderMap:
    """Folded header name -> column indexes (a name may repeat; the first non-blank wins)."""

    columns: dict[str, list[int]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)  # index -> header as written
    _resolved: dict[tuple[str, ...], tuple[int, ...]] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Sequence[object]) -> HeaderMap:
        out = cls()
        for i, cell in enumerate(row):
            if cell is None or not str(cell).strip():
                continue
            out.columns.setdefault(fold(cell), []).append(i)
            out.names[i] = " ".join(str(cell).split())
        return out

    def has(self, *names: str) -> bool:
        return all(fold(n) in self.columns for n in names)

    def get(self, row: Sequence[object], *names: str) -> object:
        idxs = self._resolved.get(names)
        if idxs is None:  # resolve the names once per header, not once per row
            idxs = tuple(i for n in names for i in self.columns.get(fold(n), ()))
            self._resolved[names] = idxs
        size = len(row)
        for i in idxs:
            if i < size:
                value = row[i]
                if value is not None and (not isinstance(value, str) or value.strip()):
                    return value
        return None

    def name_of(self, *names: str) -> str:
        for name in names:
            idx = self.columns.get(fold(name))
            if idx:
                return self.names[idx[0]]
        return names[0]

    def first_index(self) -> int:
        return min(self.names) if self.names else 0

    def unknown(self, row: Sequence[object], known: Iterable[str]) -> dict[str, Any]:
        """Cells of columns not in ``known``, keyed by the header as written (a frozenset
        ``known`` is taken as already folded)."""
        known_folded = known if isinstance(known, frozenset) else {fold(k) for k in known}
        out: dict[str, Any] = {}
        for key, idxs in self.columns.items():
            if key in known_folded:
                continue
            for i in idxs:
                if i < len(row):
                    value = text_of(row[i])
                    if value is not None:
                        out.setdefault(self.names[i], value)
        return out


def problem(
    message: str,
    *,
    file: str,
    sheet: str | None = None,
    row: int | None = None,
    column: str | None = None,
    hint: str | None = None,
    code: str = "invalid",
) -> Problem:
    return Problem(
        message=message, file=file, sheet=sheet, row=row, column=column, hint=hint, code=code
    )


def row_is_empty(row: Sequence[object]) -> bool:
    for v in row:
        if v is None:
            continue
        if isinstance(v, str) and (not v.strip() or v.startswith("=")):
            continue  # a formula with no cached value counts as empty
        return False
    return True
