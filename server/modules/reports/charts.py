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


def _legend(series: Sequence[tuple[str, str, Sequence[Decimal]]], left: int, width: int,
            size: float = 8) -> tuple[list[str], float]:
    """Legend entries wrapped into rows that fit `width` (so none is cut off); returns the
    SVG parts and the height the legend takes."""
    parts, x, y = [], float(left), 8.0
    for name, colour, _ in series:
        entry = 14 + 0.62 * size * len(name) + 16  # swatch, text (DejaVu ~0.6 em), gap
        if x + entry > width and x > left:
            x, y = float(left), y + size + 6
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, y + 9, name, size))
        x += entry
    return parts, y + 16


def line_chart(periods: Sequence[str], series: Sequence[tuple[str, str, Sequence[Decimal]]],
               width: int = 640, height: int = 260) -> str:
    """One line per (name, colour, values), values aligned with `periods`, each point
    marked (a single period is a row of dots, centred, not an empty chart); the legend
    wraps onto as many rows as it needs above the plot."""
    left, right, bottom = 70, 20, 40
    legend, legend_height = _legend(series, left, width - right)
    top = legend_height + 10
    height = max(height, int(top) + 150)
    values = [v for _, _, line in series for v in line]
    high = max(values, default=Decimal(0))
    low = min(min(values, default=Decimal(0)), Decimal(0))
    span = float(high - low) or 1.0
    inner = width - left - right
    step = inner / (len(periods) - 1) if len(periods) > 1 else 0.0

    def x_of(index: int) -> float:
        return left + (index * step if len(periods) > 1 else inner / 2)

    def y_of(value: Decimal) -> float:
        return top + (height - top - bottom) * (1 - float(value - low) / span)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img">', *legend,
             f'<line x1="{left}" y1="{y_of(low):.1f}" x2="{width - right}" '
             f'y2="{y_of(low):.1f}" stroke="#999"/>',
             _text(left - 6, y_of(high) + 3, decimal_text(high), 7, "end"),
             _text(left - 6, y_of(low) + 3, decimal_text(low), 7, "end")]
    for index, period in enumerate(periods):
        parts.append(_text(x_of(index), height - bottom + 14, period, 7, "middle"))
    for _, colour, line in series:
        points = [(x_of(i), y_of(v)) for i, v in enumerate(line)]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         f'stroke-width="1.6"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{colour}"/>'
                     for x, y in points)
    parts.append("</svg>")
    return "".join(parts)
