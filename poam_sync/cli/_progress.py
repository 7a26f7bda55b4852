"""A sync's progress as the user sees it: a bar on a terminal, a log line now and then in a pipe.

Both are :class:`~poam_sync.sync.progress.ProgressSink` s the engine tells how far it got. On a
terminal (stderr a tty) a rich progress bar per stage, with each connector's pull, and the
records created and pushed per connector while applying. Otherwise (cron, a CI log, a pipe)
a plain ``progress:`` line on stderr at most every ``every`` seconds, and one at the end of
each stage, so a long first sync never looks hung and a log keeps no escape codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from poam_sync.sync.progress import ProgressSink, Step

LOG_EVERY_SECONDS = 10.0


def _counts(label: str, pairs: tuple[tuple[str, int], ...]) -> str:
    return f"{label} " + ", ".join(f"{name} {n}" for name, n in pairs) if pairs else ""


def describe(step: Step) -> str:
    """What a step says, in words: ``pull jira``, ``plan``, ``apply (created jira 3)``."""
    if step.stage == "pull":
        return f"pull {step.connector}"
    if step.stage == "apply":
        parts = [p for p in (_counts("created", step.created), _counts("pushed", step.pushed)) if p]
        return "apply" + (f" ({'; '.join(parts)})" if parts else "")
    return step.stage


class _Bar:
    """One rich task per stage (and per connector while pulling)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str | None], TaskID] = {}

    def __call__(self, step: Step) -> None:
        key = (step.stage, step.connector)
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = self.progress.add_task(describe(step), total=step.total)
        self.progress.update(
            task, completed=step.done, total=step.total, description=describe(step)
        )


class _Lines:
    """A line at most every ``every`` seconds, and one when a stage's total is reached."""

    def __init__(self, console: Console, every: float, clock: Callable[[], float]) -> None:
        self.console = console
        self.every = every
        self.clock = clock
        self.last = clock()

    def __call__(self, step: Step) -> None:
        finished = step.total is not None and step.done >= step.total
        now = self.clock()
        if not finished and now - self.last < self.every:
            return
        self.last = now
        count = f"{step.done}/{step.total}" if step.total is not None else f"{step.done}"
        self.console.print(f"progress: {describe(step)} {count}", markup=False)


@contextmanager
def cycle_progress(
    console: Console,
    *,
    every: float = LOG_EVERY_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[ProgressSink]:
    """The sink for one cycle: a bar when ``console`` is a terminal, log lines otherwise."""
    if not console.is_terminal:
        yield _Lines(console, every, clock)
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield _Bar(progress)
