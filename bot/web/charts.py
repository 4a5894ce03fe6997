"""Server-rendered SVG charts for the analytics page: no script, no CDN, no chart library.

Each function returns a complete ``<svg>`` element as ``Markup`` (every label escaped
here), scaled by its ``viewBox`` so CSS sets the width. Colours are presentation
attributes, not ``style``, because the workspace's Content-Security-Policy forbids inline
styles. Every chart carries ``role="img"``, a ``<title>`` and a text description, so a
screen reader gets the figures, and ``data-chart`` names its kind for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d")
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 40


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _number(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5, 5 × 10ⁿ)."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1) if value >= 1 else 1
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _frame(kind: str, title: str, description: str, body: list[str], height: int = HEIGHT) -> Markup:
    # Every piece of text inside was escaped above; the rest is our own markup.
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" class="chart" '
        f'data-chart="{kind}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>" + "".join(body) + "</svg>"
    )


def _axis(top: float, fmt: Callable[[float], str]) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = HEIGHT - BOTTOM - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">'
            f"{escape(fmt(value))}</text>"
        )
    return parts


def _x_labels(labels: Sequence[str], slot: float) -> list[str]:
    """At most ~12 labels under the axis, evenly thinned, so dates never overlap."""
    every = max(1, -(-len(labels) // 12))
    parts = []
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" font-size="11" fill="#6b7280">'
            f"{escape(label)}</text>"
        )
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts = []
    x = LEFT
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 5}" font-size="11" fill="#374151">{escape(s.name)}</text>'
        )
        x += 24 + 7 * len(s.name)
    return parts


def _description(labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str]) -> str:
    rows = []
    for s in series:
        pairs = zip(labels, s.values, strict=True)
        points = ", ".join(f"{label}: {fmt(v) if v is not None else 'n/a'}" for label, v in pairs)
        rows.append(f"{s.name} — {points}")
    return "; ".join(rows)


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    fmt: Callable[[float], str] = _number,
    kind: str = "stacked-bars",
) -> Markup:
    """One bar per label, the series stacked (e.g. messages per day by author)."""
    totals = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    bar = max(1.0, slot * 0.7)
    body = _axis(top, fmt)
    for i, label in enumerate(labels):
        base = 0.0
        for k, s in enumerate(series):
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            y = HEIGHT - BOTTOM - plot_h * (base + value) / top
            body.append(
                f'<rect class="bar" x="{LEFT + slot * i + (slot - bar) / 2:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} · {escape(s.name)}: '
                f"{escape(fmt(value))}</title></rect>"
            )
            base += value
    body += _x_labels(labels, slot) + _legend(series)
    return _frame(kind, title, _description(labels, series, fmt), body)


def bars(title: str, labels: Sequence[str], values: Sequence[float], fmt: Callable[[float], str] = _number) -> Markup:
    """Plain vertical bars (one series)."""
    return stacked_bars(title, labels, [Series(title, values)], fmt, kind="bars")


def lines(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str] = _number) -> Markup:
    """One polyline per series; a missing value (None) breaks the line."""
    top = _nice_max(max((v for s in series for v in s.values if v is not None), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    body = _axis(top, fmt)
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        segment: list[str] = []
        segments: list[list[str]] = [segment]
        for i, value in enumerate(s.values):
            if value is None:
                segment = []
                segments.append(segment)
                continue
            x, y = LEFT + slot * (i + 0.5), HEIGHT - BOTTOM - plot_h * value / top
            segment.append(f"{x:.1f},{y:.1f}")
            body.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"><title>{escape(labels[i])} · '
                f"{escape(s.name)}: {escape(fmt(value))}</title></circle>"
            )
        for points in segments:
            if len(points) > 1:
                body.append(
                    f'<polyline class="line" points="{" ".join(points)}" fill="none" stroke="{colour}" '
                    'stroke-width="2"/>'
                )
    body += _x_labels(labels, slot) + _legend(series)
    return _frame("lines", title, _description(labels, series, fmt), body)


def distribution(title: str, items: Sequence[tuple[str, float]], fmt: Callable[[float], str] = _number) -> Markup:
    """Horizontal bars, one row per item, longest first as given (intents, CSAT scores)."""
    row, label_w = 22, 150
    height = TOP + row * max(1, len(items)) + 8
    top = max((v for _, v in items), default=0) or 1
    plot_w = WIDTH - label_w - 70
    body = []
    for i, (label, value) in enumerate(items):
        y = TOP + row * i
        w = plot_w * value / top
        body.append(
            f'<text x="{label_w - 8}" y="{y + 14}" text-anchor="end" font-size="12" fill="#374151">'
            f"{escape(label)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 0):.1f}" height="{row - 8}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
            f'<text x="{label_w + w + 6:.1f}" y="{y + 14}" font-size="12" fill="#111827">{escape(fmt(value))}</text>'
        )
    if not items:
        body.append(f'<text x="{WIDTH / 2}" y="{TOP + 14}" text-anchor="middle" font-size="12" fill="#6b7280">'
                    "No data in this range</text>")
    description = "; ".join(f"{label}: {fmt(value)}" for label, value in items) or "no data"
    return _frame("distribution", title, description, body, height=height)
