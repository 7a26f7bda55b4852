"""Helpers shared by the format readers and writers: cells, dates, ratings, people, lists."""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from poam_sync.errors import InputError, Problem
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


_EXCEL_ERRORS = frozenset(
    {"#VALUE!", "#REF!", "#N/A", "#DIV/0!", "#NAME?", "#NUM!", "#NULL!", "#SPILL!", "#CALC!"}
)


class Unreadable(str):
    """A workbook cell whose value cannot be used: a formula without a cached value (the text
    is the formula, ``=...``), an Excel error value (``#REF!``) or a date serial outside
    Excel's calendar. ``why`` says which; :func:`text_of` gives the raw text (for ``extra``),
    :func:`parse_date` refuses it, and the readers make it a row error in the columns they
    model (see :func:`unreadable_cells`)."""

    why: str

    def __new__(cls, text: str, why: str) -> Unreadable:
        obj = super().__new__(cls, text)
        obj.why = why
        return obj


# Excel's 1900 date system: serial 1 is 1900-01-01 and serial 60 is 1900-02-29, a day that
# does not exist (Lotus 1-2-3's leap-year bug, kept by Excel); serial 2958465 is 9999-12-31.
# https://learn.microsoft.com/en-us/office/troubleshoot/excel/wrongly-assumes-1900-is-leap-year
EXCEL_MAX_SERIAL = 2958465
_EXCEL_EPOCH = date(1899, 12, 30)  # for serials from 61 on
_TIME = r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME, re.ASCII)
_US_DATE = re.compile(r"(\d{1,2})[-/](\d{1,2})[-/](\d{4})", re.ASCII)
_SHORT_YEAR = re.compile(r"\d{1,2}[-/]\d{1,2}[-/]\d{2}", re.ASCII)
_DATE_HINT = "write it as YYYY-MM-DD or M/D/YYYY"


def excel_serial_date(serial: float) -> date:
    """The calendar day of an Excel (1900 system) serial; raises :class:`CellError` outside
    1..2958465 and for serial 60, Excel's fictional 1900-02-29."""
    day = int(serial)
    if not 1 <= day <= EXCEL_MAX_SERIAL:
        raise CellError(
            f"{serial!r} is not an Excel date (serials run from 1, 1900-01-01, to "
            f"{EXCEL_MAX_SERIAL}, 9999-12-31)",
            _DATE_HINT,
        )
    if day == 60:
        raise CellError(
            "serial 60 is 1900-02-29, a day Excel shows but that does not exist", _DATE_HINT
        )
    return _EXCEL_EPOCH + timedelta(days=day + (1 if day < 60 else 0))


def _checked_time(m: re.Match[str]) -> None:
    hour, minute, second, zone = m[4], m[5], m[6], m[7]
    if hour is not None and (int(hour) > 23 or int(minute) > 59):
        raise ValueError(f"{hour}:{minute} is not a time of day")
    if second is not None and int(second) > 59:
        raise ValueError(f"second {second} does not exist")
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        if int(digits[:2]) > 14 or int(digits[2:]) > 59:
            raise ValueError(f"{zone} is not a time zone offset")


def parse_date(value: object) -> date | None:
    """A date from a cell: Excel date, ISO text (``2024-03-01``, ``2024-03-01T17:00:00-04:00``,
    ``2014/05/23``), US text (``3/03/2027``) or an Excel serial. Raises :class:`CellError`
    for anything else: two-digit years, trailing text, impossible days or times, digits that
    are not ASCII, serials outside Excel's calendar, Excel error values, formulas without a
    cached value. Blank words (``N/A``, ``-``) are no date.

    An ISO date-time keeps its written calendar date: no time zone conversion can shift it.
    """
    if value is None:
        return None
    if isinstance(value, Unreadable):
        raise CellError(value.why, "type the value into the cell, or fix the formula in Excel")
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a date", _DATE_HINT)
    if isinstance(value, int | float):
        return excel_serial_date(value)
    text = str(value).strip()
    if not text or is_blank_word(text):
        return None
    if text in _EXCEL_ERRORS:
        raise CellError(f"{text} is an Excel error value, not a date", _DATE_HINT)
    try:
        m = _ISO_DATE.fullmatch(text)
        if m:
            _checked_time(m)
            return date(int(m[1]), int(m[2]), int(m[3]))
        m = _US_DATE.fullmatch(text)
        if m:
            return date(int(m[3]), int(m[1]), int(m[2]))
    except ValueError as exc:
        raise CellError(f"{text!r} is not a valid date ({exc})", _DATE_HINT) from exc
    if _SHORT_YEAR.fullmatch(text):
        raise CellError(f"{text!r} has a two-digit year, which is ambiguous", _DATE_HINT)
    raise CellError(f"{text!r} is not a date", _DATE_HINT)


# ---------------------------------------------------------------------------------------------
# Identifiers and text values

# Control characters (Cc) and format characters (Cf: bidi overrides and isolates, zero-width
# marks) make an id that looks like another one: refused in every format.
_BAD_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def check_id(value: object) -> str:
    """A POA&M ID from a cell: text (or a whole number) without control characters, bidi
    overrides or zero-width marks. Raises :class:`CellError`."""
    if isinstance(value, Unreadable):
        raise CellError(value.why, "type the POA&M ID into the cell")
    if isinstance(value, bool):
        raise CellError(f"the id is {value!r}, not text", "write the POA&M ID as text")
    if isinstance(value, float) and not value.is_integer():
        raise CellError(
            f"the id is the number {value!r}; ids are text",
            "format the column as Text in the spreadsheet and type the id again",
        )
    text = text_of(value) or ""
    for ch in text:
        if unicodedata.category(ch) in _BAD_ID_CATEGORIES and ch not in "\t":
            raise CellError(
                f"the id {text!r} holds the invisible character U+{ord(ch):04X} "
                f"({unicodedata.name(ch, 'control')})",
                "retype the POA&M ID without control or direction characters",
            )
    return text


def check_text(value: object, what: str = "text") -> None:
    """A text field's cell must hold text (or a number), not TRUE/FALSE. Raises CellError."""
    if isinstance(value, bool):
        raise CellError(
            f"the {what} is the boolean {str(value).upper()}, not text",
            f"type the {what} as text",
        )


def unreadable_cells(
    hm: HeaderMap, row: Sequence[object], columns: Iterable[str]
) -> list[tuple[str, Unreadable]]:
    """The cells of ``row`` in ``columns`` (header names) that hold an :class:`Unreadable`
    value, as (header as written, value)."""
    if Unreadable not in map(type, row):
        return []  # the common case, and always for CSV and OSCAL
    wanted = {fold(c) for c in columns}
    out = []
    for key, idxs in hm.columns.items():
        if key not in wanted:
            continue
        for i in idxs:
            value = row[i] if i < len(row) else None
            if isinstance(value, Unreadable):
                out.append((hm.names[i], value))
    return out


# ---------------------------------------------------------------------------------------------
# Memory

MEMORY_ENV = "POAM_SYNC_IMPORT_MEMORY_MB"
DEFAULT_MEMORY_MB = 1024


def memory_cap_bytes() -> int:
    """The resident memory an import may use: ``POAM_SYNC_IMPORT_MEMORY_MB``, else 1 GiB."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    megabytes = int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MEMORY_MB
    return megabytes * 1024 * 1024


def _resident_bytes() -> int | None:
    try:  # Linux: the second field of statm is the resident set, in pages
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None  # elsewhere: not measured


def check_memory(file: str, sheet: str | None = None) -> None:
    """Stop an import whose process holds more memory than the cap, with a clear error."""
    used = _resident_bytes()
    cap = memory_cap_bytes()
    if used is not None and used > cap:
        raise InputError(
            Problem(
                f"reading the file takes {used // 2**20:,} MiB of memory, more than the "
                f"{cap // 2**20:,} MiB allowed; nothing was imported",
                file=file,
                sheet=sheet,
                hint=f"split the file, or raise the limit with {MEMORY_ENV}",
                code="too_much_memory",
            )
        )


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
