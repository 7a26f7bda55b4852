"""What is sent: :class:`Message` (plain text + HTML, every value escaped) and its templates.

A message is made of sections, each a heading and lines; the plain text and the HTML are
rendered from the same sections, so they always say the same. Every value that came from a
record (a title, an owner's name, a remote value) is escaped with :func:`html.escape` in the
HTML part: a title like ``<script>`` is shown, never run.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

Section = tuple[str, Sequence[str]]  # heading, lines


@dataclass(frozen=True)
class Message:
    """One notification. ``keys``: the events it tells of, each sent once per channel."""

    keys: tuple[str, ...]
    kind: str  # "alert", "digest_owner" or "digest_office"
    subject: str
    text: str
    html: str
    to: tuple[str, ...] = ()  # e-mail recipients
    chat: bool = False  # also posted to the chat channels


def render(
    keys: Sequence[str],
    kind: str,
    subject: str,
    intro: str,
    sections: Sequence[Section],
    *,
    to: Sequence[str] = (),
    chat: bool = False,
) -> Message:
    """A message whose text and HTML parts show ``intro`` then each non-empty section."""
    shown = [(heading, lines) for heading, lines in sections if lines]
    text = [intro, ""]
    for heading, lines in shown:
        text += [heading, *(f"- {line}" for line in lines), ""]
    text.append("-- poam-sync")
    parts = [f"<p>{html.escape(intro)}</p>"]
    for heading, lines in shown:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
        parts.append(f"<h3>{html.escape(heading)}</h3><ul>{items}</ul>")
    parts.append("<p>&mdash; poam-sync</p>")
    body = (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head><body>{''.join(parts)}</body></html>"
    )
    return Message(tuple(keys), kind, subject, "\n".join(text) + "\n", body, tuple(to), chat)
