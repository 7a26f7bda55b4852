"""How far a cycle has got: the engine and the executor tell a :class:`ProgressSink`.

The sync knows nothing of terminals: it reports stages (``pull`` per connector, ``plan``,
``apply``) with a count done and, when known, a total. The CLI draws a progress bar on a
terminal and writes a periodic log line otherwise (``cli/_progress.py``); the daemon and the
tests pass nothing and pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar

T = TypeVar("T")

# A pulled record count is passed on every this many records (and at the end of a pull).
PULL_STEP = 100


@dataclass(frozen=True, slots=True)
class Step:
    """``stage`` is ``pull``, ``plan`` or ``apply``; ``connector`` names the one being pulled
    (None for the stages that concern them all); ``total`` None while unknown. While applying,
    ``created`` and ``pushed`` count so far, per connector, the records made and updated."""

    stage: str
    done: int
    total: int | None = None
    connector: str | None = None
    created: tuple[tuple[str, int], ...] = ()
    pushed: tuple[tuple[str, int], ...] = ()


class ProgressSink(Protocol):
    def __call__(self, step: Step) -> None: ...


def counted(records: Iterable[T], sink: ProgressSink | None, connector: str) -> Iterator[T]:
    """``records`` passed through, telling ``sink`` how many have arrived so far."""
    done = 0
    for record in records:
        done += 1
        if sink is not None and done % PULL_STEP == 0:
            sink(Step("pull", done, connector=connector))
        yield record
    if sink is not None:
        sink(Step("pull", done, done, connector=connector))
