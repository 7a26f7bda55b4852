"""What every connector (Jira, ServiceNow, ...) offers the sync engine.

A connector moves *remote records* and speaks canonical values: it reads a remote issue or
record, maps each synced field to its canonical JSON value (status as a :class:`Status` value,
owner as an e-mail, dates as ``YYYY-MM-DD``, milestones as a list of milestone dicts) and
writes canonical values back by the remote's own means (workflow transitions, user directory,
child records). It never imports the store or the sync engine.

Mappings can be lossy (two canonical statuses may share one Jira status). The engine therefore
compares values in the connector's *projection*: ``project(field, value)`` is the canonical
value that survives a round trip through this remote. What we wrote comes back equal to the
projection of what we meant, so echoes die by construction.

Synced canonical fields (a connector's mapping chooses which of these it syncs):

==========================  =========================================================
``title``                   str
``description``             str
``status``                  a :class:`poam_sync.model.Status` value
``owner``                   the owner's e-mail (str) or None
``due_date``                ``YYYY-MM-DD`` or None
``scheduled_completion_date`` ``YYYY-MM-DD`` or None
``original_risk``           a :class:`poam_sync.model.RiskLevel` value or None
``controls``                list of control ids
``milestones``              list of :class:`MilestoneValue`
==========================  =========================================================

These values are typed: a field holds a :data:`SyncValue`, a record's fields are
:data:`SyncValues`. Code that needs one shape reads it through :func:`as_text`,
:func:`as_optional_text`, :func:`as_strings` or :func:`as_milestones`, which raise a
:class:`TypeError` (or :class:`ValueError` for a milestone's keys) on any other shape instead of
converting it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Generic, Literal, TypeGuard, TypeVar

from pydantic import BaseModel

from poam_sync.model import MilestoneValue, Note, SyncValue, SyncValues

__all__ = [
    "MILESTONE_KEYS",
    "SYNCABLE_FIELDS",
    "SYNC_FIELD_ORDER",
    "Connector",
    "ConnectorType",
    "FieldChange",
    "FieldProblem",
    "MilestoneValue",
    "RemoteRecord",
    "Stamp",
    "SyncValue",
    "SyncValues",
    "Uncovered",
    "WriteResult",
    "as_milestones",
    "as_optional_text",
    "as_strings",
    "as_text",
    "mark_note",
    "parse_note",
]

SYNC_FIELD_ORDER: tuple[str, ...] = (
    "title",
    "description",
    "status",
    "owner",
    "due_date",
    "scheduled_completion_date",
    "original_risk",
    "controls",
    "milestones",
)
"""The canonical fields a connector can sync (the table above), in a stable order: the one
place they are written out."""

SYNCABLE_FIELDS = frozenset(SYNC_FIELD_ORDER)


# -- the values connectors exchange ----------------------------------------------------------


# MilestoneValue, SyncValue and SyncValues are defined with the canonical model (the store keeps
# them too) and exported from here, where connectors look for them.

MILESTONE_KEYS: frozenset[str] = MilestoneValue.__required_keys__


def _shape(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def as_text(value: SyncValue, field: str = "value") -> str:
    """``value`` as text: a str as it is, None as ``""``; :class:`TypeError` for a list."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    raise TypeError(f"{field}: expected text, got {_shape(value)}")


def as_optional_text(value: SyncValue, field: str = "value") -> str | None:
    """``value`` as text or None (owner, dates, risk); :class:`TypeError` for a list."""
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"{field}: expected text or None, got {_shape(value)}")


def _all_str(items: list[str] | list[MilestoneValue]) -> TypeGuard[list[str]]:
    for item in items:  # noqa: SIM110 - twice as fast as all() on a genexpr (the planner's path)
        if not isinstance(item, str):
            return False
    return True


def as_strings(value: SyncValue, field: str = "value") -> list[str]:
    """``value`` as a list of str (controls), None as ``[]``; :class:`TypeError` otherwise.

    The list itself is returned, checked, not copied."""
    if value is None:
        return []
    if isinstance(value, list) and _all_str(value):
        return value
    raise TypeError(f"{field}: expected a list of text, got {_shape(value)}")


def _is_milestone(item: object) -> TypeGuard[MilestoneValue]:
    return (
        isinstance(item, dict)
        and item.keys() == MILESTONE_KEYS
        and isinstance(item["id"], str)
        and isinstance(item["description"], str)
        and isinstance(item["status"], str)
        and (item["due_date"] is None or isinstance(item["due_date"], str))
    )


def _all_milestones(items: list[str] | list[MilestoneValue]) -> TypeGuard[list[MilestoneValue]]:
    return all(map(_is_milestone, items))


def _milestone_error(value: object, field: str) -> TypeError | ValueError:
    """Why ``value`` is no list of milestones (only computed when it is not)."""
    if not isinstance(value, list):
        return TypeError(f"{field}: expected a list of milestones, got {_shape(value)}")
    item = next(i for i in value if not _is_milestone(i))
    if not isinstance(item, dict):
        return TypeError(f"{field}: expected a milestone dict, got {_shape(item)}")
    if item.keys() != MILESTONE_KEYS:
        return ValueError(
            f"{field}: a milestone has exactly the keys {sorted(MILESTONE_KEYS)}, "
            f"not {sorted(map(str, item))}"
        )
    return TypeError(f"{field}: a milestone's values are text (due_date text or None): {item!r}")


def as_milestones(value: SyncValue, field: str = "milestones") -> list[MilestoneValue]:
    """``value`` as a list of milestones, None as ``[]``; the list itself, checked, not copied.

    :class:`TypeError` for anything but a list of dicts with text values, :class:`ValueError`
    for a milestone with missing or extra keys."""
    if value is None:
        return []
    if isinstance(value, list) and _all_milestones(value):
        return value
    raise _milestone_error(value, field)


@dataclass(frozen=True, slots=True)
class Stamp:
    """Our correlation stamp on a remote record: which canonical item it belongs to."""

    system: str
    poam_id: str
    item_uuid: str

    @property
    def token(self) -> str:
        """A compact searchable form (labels, correlation ids): ``poam-sync:<uuid>``."""
        return f"poam-sync:{self.item_uuid}"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """Who last changed one field of a remote record, and when.

    ``source`` says where that came from: ``history`` when the remote keeps the field's own
    history (Jira's changelog items, ServiceNow's ``sys_audit``), ``record`` when only the
    record's last updater was readable (which may be someone who touched another field)."""

    actor: str | None
    at: datetime | None
    source: Literal["history", "record"] = "history"


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A value the remote offers that the mapping does not cover, and the line that would."""

    what: str  # "status", "priority", "state", "resolution"...
    value: str  # as the remote names it: "Blocked", "5 - Planning"
    hint: str  # the mapping line that would cover it
    deliberate: bool = False  # left out on purpose (the shipped mapping says why)


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A field the connector could not write, or could not read as a canonical value.

    On a write the rest of the write went through. On a read (:attr:`RemoteRecord.problems`)
    the field is left out of the record's ``fields``, so the canonical value is kept and nothing
    is pushed to the other sides: an unknown remote value is never read as "empty".
    """

    field: str
    code: str  # "unknown_user", "unknown_value", "transition_blocked", "not_on_screen", ...
    message: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteRecord:
    """One remote issue/record as the engine sees it."""

    remote_id: str  # stable id: Jira issue id, ServiceNow sys_id
    key: str  # human key: Jira issue key, ServiceNow number
    version: str  # changes on every remote write: Jira `updated`, ServiceNow sys_mod_count
    updated_at: datetime  # timezone-aware UTC
    fields: SyncValues  # canonical field -> canonical value (projected)
    stamp: Stamp | None = None  # our correlation stamp, when the record carries one
    updated_by: str | None = None  # the last remote actor, for the change log
    url: str | None = None  # where a person can open it
    notes: tuple[Note, ...] = ()  # comments / work notes; ours carry origin != connector name
    #: fields the mapping could not read (an unmapped status or priority, a user without a
    #: readable e-mail): left out of ``fields`` and reported, never taken as empty
    problems: tuple[FieldProblem, ...] = ()
    #: canonical field -> its last change, from the field's own history where the remote
    #: keeps one; a field not listed falls back to ``updated_by`` / ``updated_at``
    field_changes: Mapping[str, FieldChange] = field(default_factory=dict)
    #: e-mail -> display name of the people this record names (its owner), as the remote shows
    #: them, so that an owner taken from the remote is one whole person, not an e-mail alone
    people: Mapping[str, str] = field(default_factory=dict)

    def change_of(self, name: str) -> FieldChange:
        """Who changed canonical field ``name`` last, and when, as well as this record knows."""
        known = self.field_changes.get(name)
        if known is not None:
            return known
        return FieldChange(self.updated_by, self.updated_at, "record")

    def actor_of(self, name: str) -> str | None:
        """The actor to credit with field ``name``'s current value."""
        return self.change_of(name).actor


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write did: the record as the remote answered, and the fields it could not write.

    ``whole``: ``record`` shows the remote as it stood after the call's *last* write (a
    transition after an edit included), every synced field and every note, so that its
    ``version`` names exactly that state: a later change by anyone gives the record another
    version. Only then may the engine remember the version after a push and leave the record
    out of the next pull (sync/echoes.py). False when the answer cannot show that (a PATCH
    answer without the journal, which a person's note may have joined between our read and
    our write): the record is then read whole when a pull next finds it.
    """

    record: RemoteRecord
    problems: tuple[FieldProblem, ...] = field(default=())
    whole: bool = False


class Connector(ABC):
    """Base class of connectors. Subclasses implement the abstract methods."""

    #: the connector's configured name ("jira", "servicenow", "grc-east"...)
    name: str
    #: canonical fields this connector syncs, per its mapping
    synced_fields: frozenset[str]
    #: whether :meth:`pull` takes ``known`` (the engine passes it only then, so a connector
    #: written before it existed keeps working)
    skips_echoes: bool = False
    #: whether :meth:`hold_keys` is worth calling before a pull with ``known`` (the engine
    #: reads the links' keys only then)
    wants_keys: bool = False
    #: how many of this connector's writes the executor may have under way at once; 1 (the
    #: default) keeps it to one thread at a time. An HTTP connector whose sessions go through
    #: a host limiter (connectors/_inflight.py) sets its configured ``max_in_flight``.
    max_in_flight: int = 1
    #: how many records' pushes the executor hands to one :meth:`update_many` call; 1 (the
    #: default): one :meth:`update` per record, each under way on its own. A connector whose
    #: remote takes several different edits in one request (ServiceNow's Batch API) sets more.
    update_batch: int = 1

    def prepare(self) -> None:
        """Load what :meth:`project` needs (choice lists, column lengths, workflow) from the
        remote, before a cycle plans. Raises :class:`poam_sync.errors.RemoteError` when it
        cannot; once it has returned, :meth:`project` makes no I/O."""

    def project(self, field: str, value: SyncValue) -> SyncValue:
        """The canonical value ``value`` becomes after a round trip through this remote.

        Pure: called by the planner, which does no I/O; anything it needs from the remote is
        loaded by :meth:`prepare`."""
        return value

    @abstractmethod
    def check(self) -> dict[str, str]:
        """Reach the remote and authenticate; return facts for ``config check`` (no secrets)."""

    @abstractmethod
    def pull(
        self, since: datetime | None, known: Mapping[str, str] | None = None
    ) -> Iterator[RemoteRecord]:
        """Records in scope changed at or after ``since`` (all of them when None).

        The connector applies its own overlap (clock granularity) and de-duplicates; the engine
        tolerates records it has already seen.

        ``known``: remote id -> the version the engine already holds (our own writes, read
        back). A record still at that version (or, where versions are ordered, older: a lagging
        index) may be left out, and should be read as cheaply as the remote allows (versions
        first, whole records only for the ones that moved): it is an echo.
        """

    def hold_keys(self, keys: Callable[[], Mapping[str, str]]) -> None:
        """Before a pull with ``known``: how to read remote id -> the human key of each linked
        record (called only when needed: a store read), for a connector that lists a big
        window in key ranges (:attr:`wants_keys`). Ignored by default."""

    @abstractmethod
    def get(self, remote_id: str) -> RemoteRecord:
        """One record by id; :class:`poam_sync.errors.RecordGone` when it no longer exists."""

    @abstractmethod
    def find_by_stamp(self, stamp: Stamp) -> RemoteRecord | None:
        """The record carrying ``stamp`` (crash recovery before a create), or None."""

    @abstractmethod
    def create(self, stamp: Stamp, fields: SyncValues) -> WriteResult:
        """Create a stamped record holding ``fields`` (canonical values)."""

    def create_many(
        self, batch: Sequence[tuple[Stamp, SyncValues]]
    ) -> list[WriteResult | Exception]:
        """Create several records; one result or error per input, in order."""
        results: list[WriteResult | Exception] = []
        for stamp, values in batch:
            try:
                results.append(self.create(stamp, values))
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results.append(exc)
        return results

    @abstractmethod
    def update(self, remote_id: str, changes: SyncValues) -> WriteResult:
        """Write only ``changes`` (canonical values); report fields it could not write."""

    def update_many(self, batch: Sequence[tuple[str, SyncValues]]) -> list[WriteResult | Exception]:
        """Write several records' ``changes`` (remote id, changes); one result or error per
        input, in order, each as :meth:`update` would give it: a record that fails (gone,
        refused) fails alone, the others are written."""
        results: list[WriteResult | Exception] = []
        for remote_id, changes in batch:
            try:
                results.append(self.update(remote_id, changes))
            except Exception as exc:  # noqa: BLE001 - handed back to the caller per item
                results.append(exc)
        return results

    @abstractmethod
    def add_note(self, remote_id: str, note: Note) -> None:
        """Append ``note`` as a comment / work note carrying our origin marker."""

    def list_remote_ids(self) -> Iterable[str] | None:
        """The ids of every record in scope, read as cheaply as the remote allows (ids only),
        for the periodic reconcile that finds linked records which vanished. None when the
        connector cannot list them (the reconcile then skips it)."""
        return None

    def uncovered(self) -> Sequence[Uncovered]:
        """Values the remote offers (statuses, priorities, choices) that the mapping does not
        cover, for ``config check``. Reads the remote; empty when everything is covered or the
        connector cannot tell."""
        return ()

    def close(self) -> None:
        """Release connections."""


# Notes we write carry this first line, so that reading them back is never taken for a new
# remote comment (no echo), and the engine knows which canonical note each one is.
_NOTE_MARKER_PREFIX = "[poam-sync note "


def mark_note(note: Note) -> str:
    """The remote body for ``note``: a marker line, then the text."""
    return f"{_NOTE_MARKER_PREFIX}{note.id} from {note.origin}]\n{note.body}"


def parse_note(
    body: str, *, connector: str, remote_id: str, author: str | None, created: datetime | None
) -> Note:
    """A remote comment as a canonical note: ours (marker) keep their id; others are new."""
    if body.startswith(_NOTE_MARKER_PREFIX):
        head, _, text = body.partition("\n")
        inner = head[len(_NOTE_MARKER_PREFIX) : -1] if head.endswith("]") else ""
        note_id, sep, origin = inner.partition(" from ")
        if sep and note_id:
            return Note(id=note_id, origin=origin, author=author, created=created, body=text)
    return Note(
        id=f"{connector}:{remote_id}",
        origin=connector,
        source_id=remote_id,
        author=author,
        created=created,
        body=body,
    )


# -- how a connector type plugs in -----------------------------------------------------------

SettingsT = TypeVar("SettingsT", bound=BaseModel)
MappingT = TypeVar("MappingT")


@dataclass(frozen=True, slots=True)
class ConnectorType(Generic[SettingsT, MappingT]):
    """Everything poam-sync needs to know about one kind of remote, in one value.

    A connector package exports one as ``TYPE`` and registers it under the
    ``poam_sync.connectors`` entry-point group (see :mod:`poam_sync.connectors.registry`);
    ``type: <name>`` in the configuration then finds it. Nothing else names the type.
    """

    #: what ``type:`` says in the configuration ("jira", "servicenow", "archer"...)
    name: str
    #: the system's name for people ("Jira", "ServiceNow")
    title: str
    #: the frozen settings model for the connector's entry in the configuration
    settings_model: type[SettingsT]
    #: reads and validates the mapping file named by ``mapping:``
    load_mapping: Callable[[Path], MappingT]
    #: builds a connector from validated settings and mapping, under its configured name
    factory: Callable[[SettingsT, MappingT, str], Connector]
    #: the starter mapping ``poam-sync init`` writes to ``mappings/<name>.yaml``
    mapping_template: Traversable | None = None

    def validate_settings(self, raw: Mapping[str, object]) -> SettingsT:
        """The connector's settings; a pydantic ``ValidationError`` when they are wrong."""
        return self.settings_model.model_validate(raw)

    def build(self, raw_settings: Mapping[str, object], mapping: Path, name: str) -> Connector:
        """A connector from its configuration entry (settings as written, mapping file)."""
        return self.factory(self.validate_settings(raw_settings), self.load_mapping(mapping), name)

    def probe(self, connector: Connector) -> dict[str, str]:
        """What ``config check`` shows for a built connector: it reaches the remote."""
        return connector.check()
