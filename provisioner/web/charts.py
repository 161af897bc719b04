"""Charts as inline SVG made on the server: no script, no CDN, readable with JavaScript
off. Each chart is an image with a title and a one-line description for screen readers
(``role="img"``, ``aria-labelledby``) and its figures as a table beside it (``<details>``),
so nothing it shows is only a picture. Pure: values in, markup out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 180
PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 22, 10, 18
_ids = itertools.count(1)


def bars(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    show: Callable[[float], str] = lambda v: f"{v:g}",
    label_every: int = 5,
    column: str = "Value",
) -> Markup:
    """A bar chart of (label, value) with its figures as a table below it."""
    n = max(len(points), 1)
    top = max((v for _, v in points), default=0) or 1
    pad_left = max(24, 6 * len(show(top)) + 8)  # room for the axis' longest label
    plot_w, plot_h = WIDTH - pad_left - PAD_RIGHT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / n
    uid = f"chart-{next(_ids)}"
    total = sum(v for _, v in points)
    desc = (
        f"{len(points)} bars from {points[0][0]} to {points[-1][0]}; highest {show(top)}, "
        f"total {show(total)}"
        if points
        else "no data"
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{uid}-t {uid}-d" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{uid}-t">{escape(title)}</title><desc id="{uid}-d">{escape(desc)}</desc>',
        f'<line x1="{pad_left}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - PAD_RIGHT}" '
        f'y2="{PAD_TOP + plot_h}" class="axis"/>',
        f'<text x="{pad_left - 4}" y="{PAD_TOP + 8}" text-anchor="end">{escape(show(top))}</text>',
        f'<text x="{pad_left - 4}" y="{PAD_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for i, (label, v) in enumerate(points):
        h = plot_h * v / top
        x = pad_left + i * step
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{PAD_TOP + plot_h - h:.1f}" '
            f'width="{step * 0.8:.1f}" height="{h:.1f}"><title>{escape(label)}: '
            f"{escape(show(v))}</title></rect>"
        )
        if i % label_every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    parts.append("</svg>")
    rows = "".join(f"<tr><td>{escape(lb)}</td><td>{escape(show(v))}</td></tr>" for lb, v in points)
    table = (
        f"<details><summary>{escape(title)} as a table</summary><table>"
        f"<thead><tr><th>When</th><th>{escape(column)}</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></details>"
    )
    return Markup(f'<figure class="chart">{"".join(parts)}{table}</figure>')
