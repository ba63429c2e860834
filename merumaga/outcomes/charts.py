"""Charts drawn on the server as SVG: no script, nothing fetched, readable at phone width (the
SVG scales to its container). The numbers are also given as a table for screen readers."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD = 640, 200, 28


@dataclass(frozen=True)
class Line:
    label: str
    values: Sequence[int]
    colour: str  # a CSS colour


def line_chart(title: str, labels: Sequence[str], lines: Sequence[Line]) -> SafeString:
    """Lines over the same x axis (`labels`, first and last written under it), scaled to the
    largest value; the title is the SVG's accessible name."""
    top = max((max(line.values, default=0) for line in lines), default=0) or 1
    steps = max(len(labels) - 1, 1)

    def point(index: int, value: int) -> str:
        x = PAD + (WIDTH - 2 * PAD) * index / steps
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * value / top
        return f"{x:.1f},{y:.1f}"

    polylines = format_html_join(
        "",
        '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title>'
        "</polyline>",
        (
            (line.colour, " ".join(point(i, v) for i, v in enumerate(line.values)), line.label)
            for line in lines
        ),
    )
    legend = format_html_join(
        "",
        '<tspan fill="{}">■ {}</tspan> ',
        ((line.colour, line.label) for line in lines),
    )
    return format_html(
        '<svg class="outcomes-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}" '
        'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        '<line x1="{p}" y1="{base}" x2="{right}" y2="{base}" stroke="#8a94a3"/>'
        '<text x="{p}" y="14" font-size="12" fill="#4a5360">{top}</text>'
        '<text x="{p}" y="{label_y}" font-size="12" fill="#4a5360">{first}</text>'
        '<text x="{right}" y="{label_y}" font-size="12" fill="#4a5360" text-anchor="end">{last}'
        "</text>{polylines}"
        '<text x="{right}" y="14" font-size="12" text-anchor="end">{legend}</text></svg>',
        w=WIDTH,
        h=HEIGHT,
        title=title,
        p=PAD,
        base=HEIGHT - PAD,
        right=WIDTH - PAD,
        top=top,
        label_y=HEIGHT - 8,
        first=labels[0] if labels else "",
        last=labels[-1] if labels else "",
        polylines=polylines,
        legend=legend,
    )
