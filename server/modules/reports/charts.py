"""Small, dependency-free SVG charts embedded in report HTML/PDF (all text escaped).

Coordinates are computed from Decimals converted to floats: chart geometry only, never a
figure anybody reads as money (the tables next to the charts carry the exact values).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from server.modules.reports.formatting import decimal_text

FONT = 'font-family="DejaVu Sans, sans-serif"'


def _text(x: float, y: float, text: str, size: float = 9, anchor: str = "start",
          colour: str = "#333") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{colour}" {FONT}>{escape(text)}</text>')


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, str, Sequence[Decimal]]],
              width: int = 640) -> str:
    """Grouped horizontal bars: one group per category, one bar per (name, colour, values)."""
    bar, gap, label_width, top = 9, 8, 110, 26
    group = bar * len(series) + gap
    height = top + group * len(categories) + 10
    largest = max((abs(v) for _, _, values in series for v in values), default=Decimal(0))
    scale = (width - label_width - 90) / float(largest) if largest else 0.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">']
    x = label_width
    for name, colour, _ in series:  # legend
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 15, name))
        x += 14 + 7 * len(name) + 18
    for index, category in enumerate(categories):
        y = top + index * group
        parts.append(_text(label_width - 6, y + group / 2, category, anchor="end"))
        for position, (_, colour, values) in enumerate(series):
            value = values[index]
            length = abs(float(value)) * scale
            bar_y = y + position * bar
            parts.append(f'<rect x="{label_width}" y="{bar_y:.1f}" width="{length:.1f}" '
                         f'height="{bar - 1}" fill="{colour}"/>')
            parts.append(_text(label_width + length + 4, bar_y + bar - 2, decimal_text(value),
                               size=7, colour="#555"))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(periods: Sequence[str], series: Sequence[tuple[str, str, Sequence[Decimal]]],
               width: int = 640, height: int = 260) -> str:
    """One line per (name, colour, values), values aligned with `periods`."""
    left, right, top, bottom = 70, 20, 30, 40
    values = [v for _, _, line in series for v in line]
    high = max(values, default=Decimal(0))
    low = min(min(values, default=Decimal(0)), Decimal(0))
    span = float(high - low) or 1.0
    step = (width - left - right) / max(len(periods) - 1, 1)

    def y_of(value: Decimal) -> float:
        return top + (height - top - bottom) * (1 - float(value - low) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">',
             f'<line x1="{left}" y1="{y_of(low):.1f}" x2="{width - right}" '
             f'y2="{y_of(low):.1f}" stroke="#999"/>',
             _text(left - 6, y_of(high) + 3, decimal_text(high), 7, "end"),
             _text(left - 6, y_of(low) + 3, decimal_text(low), 7, "end")]
    for index, period in enumerate(periods):
        parts.append(_text(left + index * step, height - bottom + 14, period, 7, "middle"))
    x = left
    for name, colour, line in series:
        points = " ".join(f"{left + i * step:.1f},{y_of(v):.1f}" for i, v in enumerate(line))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                     f'stroke-width="1.6"/>')
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, 17, name, 8))
        x += 14 + 6 * len(name) + 16
    parts.append("</svg>")
    return "".join(parts)
