"""Charts drawn on the server as inline SVG: no script, no chart library, nothing from elsewhere. Pure.

Only SVG presentation attributes (fill, stroke, ...), never a style attribute or element, so the page's
Content-Security-Policy (style-src 'self') holds. Each chart is role="img" with its title as its name;
its figures are in the table next to it. Nothing is told by colour alone: bars carry their value and
label, each line has its own marker and dash pattern and a legend in words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

WIDTH = 480
FONT = 'font-family="system-ui, sans-serif" font-size="14" fill="#1d2330"'
BAR_COLOUR = "#1f4fa3"
ROW, BAR, VALUE_WIDTH = 46, 18, 64  # a bar's label sits above it, its value at its end
LINE_STYLES = (  # colour, dash pattern, marker
    ("#a3171f", "", "circle"),
    ("#7a4d00", "8 4", "square"),
    ("#1f4fa3", "2 3", "diamond"),
    ("#1e6b3a", "12 4 3 4", "triangle"),
)
PLOT_TOP, PLOT_HEIGHT, PLOT_LEFT, PLOT_RIGHT = 12, 180, 66, 24  # room for "100%" at a phone's 18px


def _svg(title: str, height: float, body: str) -> Markup:
    name = escape(title)
    return Markup(
        f'<svg class="chart" role="img" aria-label="{name}" viewBox="0 0 {WIDTH} {height:g}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{name}</title>{body}</svg>'
    )


def _empty(message: str) -> Markup:
    return Markup('<p class="empty chart-empty">{}</p>').format(message)


def _short(label: str, length: int = 22) -> str:
    return label if len(label) <= length else label[: length - 1] + "…"


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], unit: str = "", empty: str = "Nothing to show.", top: float = 0
) -> Markup:
    """One horizontal bar per (label, value): its label above it, its value at its end; the longest bar is `top`
    (a percent's 100), or the largest value when none is given."""
    if not bars:
        return _empty(empty)
    top = top or max((value for _, value in bars), default=0) or 1
    room = WIDTH - VALUE_WIDTH
    parts = []
    for i, (label, value) in enumerate(bars):
        y, length = i * ROW + 18, room * value / top
        parts.append(
            f'<g class="bar"><text x="0" y="{y - 4}" {FONT}>{escape(_short(label, 48))}</text>'
            f'<rect x="0" y="{y}" width="{length:.1f}" height="{BAR}" fill="{BAR_COLOUR}"/>'
            f'<text x="{length + 6:.1f}" y="{y + 14}" {FONT}>{escape(_number(value) + unit)}</text></g>'
        )
    return _svg(title, len(bars) * ROW + 4, "".join(parts))


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def line_chart(
    title: str,
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    top: float = 100,
    unit: str = "%",
    empty: str = "Nothing to show.",
) -> Markup:
    """A line per series over the x labels, from 0 to `top`; a gap where a value is None; a legend below."""
    if not x_labels or all(value is None for values in series.values() for value in values):
        return _empty(empty)
    inset = MARKER_GAP * (len(series) - 1) / 2  # room for the first and last weeks' markers set side by side
    left, right = PLOT_LEFT + inset, WIDTH - PLOT_RIGHT - inset
    step = (right - left) / max(len(x_labels) - 1, 1)
    xs = [left + i * step if len(x_labels) > 1 else (left + right) / 2 for i in range(len(x_labels))]

    def y_of(value: float) -> float:
        return PLOT_TOP + PLOT_HEIGHT * (1 - min(value, top) / top)

    parts = [_axes(xs, x_labels, top, unit, y_of)]
    shifts = _side_by_side([[None if v is None else y_of(v) for v in values] for values in series.values()])
    for (name, values), style, shift in zip(series.items(), LINE_STYLES * 2, shifts, strict=False):
        points = [(x + dx, y_of(v)) for x, v, dx in zip(xs, values, shift, strict=True) if v is not None]
        parts.append(_line(name, _segments(xs, values, y_of), points, style))
    legend_top = PLOT_TOP + PLOT_HEIGHT + 44
    parts.append(_legend(list(series), legend_top))
    return _svg(title, legend_top + 24 * math.ceil(len(series) / 2), "".join(parts))


MARKER_GAP = 10  # markers of one week that would cover each other stand this far apart, centred on the week


def _side_by_side(heights: list[list[float | None]]) -> list[list[float]]:
    """Per series and week, how far its marker moves sideways: markers within a marker's size of each other (two
    priorities both at 100 %) stand side by side instead of one hiding the others. Lines still meet the week."""
    shifts = [[0.0] * len(values) for values in heights]
    for week in range(len(heights[0]) if heights else 0):
        placed = sorted((values[week], i) for i, values in enumerate(heights) if values[week] is not None)
        groups: list[list[int]] = []
        for y, i in placed:
            if groups and y - heights[groups[-1][-1]][week] < MARKER_GAP:
                groups[-1].append(i)
            else:
                groups.append([i])
        for group in groups:
            for rank, i in enumerate(sorted(group)):
                shifts[i][week] = (rank - (len(group) - 1) / 2) * MARKER_GAP
    return shifts


def _axes(xs, x_labels, top, unit, y_of) -> str:
    grid = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = y_of(top * fraction)
        grid.append(
            f'<line x1="{PLOT_LEFT}" y1="{y:.1f}" x2="{WIDTH - PLOT_RIGHT}" y2="{y:.1f}" stroke="#c9ced6"/>'
            f'<text x="{PLOT_LEFT - 6}" y="{y + 5:.1f}" text-anchor="end" {FONT}>{_number(top * fraction)}{unit}</text>'
        )
    baseline = PLOT_TOP + PLOT_HEIGHT + 22
    for x, label, anchor in _dates(xs, x_labels):
        grid.append(f'<text x="{x:.1f}" y="{baseline}" text-anchor="{anchor}" {FONT}>{escape(label)}</text>')
    return "".join(grid)


PHONE_CHARACTER = 11  # a date's character at most this wide in the viewBox (a phone's 18px font: portal.css)
DATE_GAP = 12


def _dates(xs, x_labels) -> list[tuple[float, str, str]]:
    """(x, label, anchor) of the dates shown under the x axis: every one, or every second, third... whichever is
    the first to keep them apart as a phone draws them (the first starts at its week, the last ends at its own)."""
    last = len(x_labels) - 1
    for every in range(1, len(x_labels)):
        shown = []
        for i in range(0, len(x_labels), every):
            anchor = "start" if i == 0 and last else "end" if i == last and last else "middle"
            shown.append((xs[i], x_labels[i], anchor))
        if all(_span(*a)[1] + DATE_GAP <= _span(*b)[0] for a, b in zip(shown, shown[1:], strict=False)):
            return shown
    return [(xs[0], x_labels[0], "start" if last else "middle")]  # the first date alone


def _span(x: float, label: str, anchor: str) -> tuple[float, float]:
    width = len(label) * PHONE_CHARACTER
    start = x if anchor == "start" else x - width if anchor == "end" else x - width / 2
    return start, start + width


def _segments(xs, values, y_of) -> list[list[tuple[float, float]]]:
    """Runs of consecutive values: a line never bridges a week without a figure."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((x, y_of(value)))
    return [run for run in runs if len(run) > 1]


def _line(name: str, runs, points, style) -> str:
    colour, dash, marker = style
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    lines = "".join(
        f'<polyline points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in run)}" fill="none" stroke="{colour}" '
        f'stroke-width="2.5"{dashes}/>'
        for run in runs
    )
    marks = "".join(_marker(marker, x, y, colour) for x, y in points)
    return f'<g class="series" data-series="{escape(name)}">{lines}{marks}</g>'


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    paths = {
        "square": f"M{x - 4:.1f} {y - 4:.1f}h8v8h-8z",
        "diamond": f"M{x:.1f} {y - 5.5:.1f}l5.5 5.5l-5.5 5.5l-5.5 -5.5z",
        "triangle": f"M{x:.1f} {y - 5.5:.1f}l5.5 9.5h-11z",
    }
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>'
    return f'<path d="{paths[shape]}" fill="{colour}"/>'


def _legend(names: list[str], top: float) -> str:
    items = []
    for i, (name, (colour, dash, marker)) in enumerate(zip(names, LINE_STYLES * 2, strict=False)):
        x, y = PLOT_LEFT + (i % 2) * 200, top + (i // 2) * 24
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            f'<line x1="{x}" y1="{y}" x2="{x + 36}" y2="{y}" stroke="{colour}" stroke-width="2.5"{dashes}/>'
            f"{_marker(marker, x + 18, y, colour)}"
            f'<text x="{x + 44}" y="{y + 5}" {FONT}>{escape(name)}</text>'
        )
    return f'<g class="legend">{"".join(items)}</g>'
