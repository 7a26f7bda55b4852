"""The open-item trend as a small SVG chart, drawn on the server (no script, no service).

Presentation attributes only (``fill``, ``stroke``): the page's Content-Security-Policy
allows no inline ``style``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 12, 12, 28


def trend_svg(points: Sequence[tuple[str, int]], today: date) -> Markup:
    """A step line of open items per day, from the first change to ``today``."""
    if not points:
        return Markup('<p class="muted">No status changes in the change log yet.</p>')
    days = [date.fromisoformat(d) for d, _ in points]
    end = max(days[-1], today)
    # at least the last 30 days, starting from no item at all before the first change
    start = min(days[0] - timedelta(days=1), end - timedelta(days=30))
    days, points = [start, *days], [(start.isoformat(), 0), *points]
    span = max((end - start).days, 1)
    top = max(max(n for _, n in points), 1)
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM

    def x(day: date) -> float:
        return _LEFT + plot_w * (day - start).days / span

    def y(value: int) -> float:
        return _TOP + plot_h * (1 - value / top)

    path: list[str] = []
    for i, (day, (_, n)) in enumerate(zip(days, points, strict=True)):
        if i == 0:
            path.append(f"M{x(day):.1f},{y(n):.1f}")
        else:
            path.append(f"H{x(day):.1f}V{y(n):.1f}")
    path.append(f"H{x(end):.1f}")
    last = points[-1][1]
    label = f"Open items from {start.isoformat()} to {end.isoformat()}: {last} now, at most {top}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
    ]
    for value in sorted({0, top // 2, top}):
        parts.append(
            f'<line x1="{_LEFT}" x2="{WIDTH - _RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#57606a">{value}</text>'
        )
    for day, anchor in ((start, "start"), (end, "end")):
        parts.append(
            f'<text x="{x(day):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="11" '
            f'fill="#57606a">{day.isoformat()}</text>'
        )
    parts.append(
        f'<path d="{"".join(path)}" fill="none" stroke="#0969da" stroke-width="2"/>'
        f'<circle cx="{x(end):.1f}" cy="{y(last):.1f}" r="3.5" fill="#0969da"/>'
        "</svg>"
    )
    # every text in it went through escape(); the rest are numbers we formatted
    return Markup("".join(parts))  # noqa: S704
