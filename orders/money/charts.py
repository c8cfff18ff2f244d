"""Server-rendered SVG bar charts: no script, no CDN, every bar labelled with its figure, so
they read the same in print, in grey and to a screen reader (each bar has a title)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT = 720, 240
TOP, BOTTOM, LEFT = 28, 44, 8


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    title: str
    hatched: bool = False


def _short(value: Decimal) -> str:
    """1234567 → 1.23M, 12345 → 12.3k: bar labels stay inside their bar's width."""
    amount = float(value)
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(amount) >= limit:
            return f"{amount / limit:.3g}{suffix}"
    return f"{amount:.0f}"


def bar_chart(bars: Sequence[Bar], *, title: str, chart_id: str) -> SafeString:
    """A bar chart as inline SVG; hatched bars are explained by the caller's legend."""
    largest = max((bar.value for bar in bars), default=Decimal(0)) or Decimal(1)
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    plot = HEIGHT - TOP - BOTTOM
    parts = []
    for i, bar in enumerate(bars):
        height = float(bar.value / largest) * plot if bar.value > 0 else 0
        x = LEFT + i * slot + slot * 0.15
        y = TOP + plot - height
        parts.append(
            (
                f"{x:.1f}",
                f"{y:.1f}",
                f"{slot * 0.7:.1f}",
                f"{height:.1f}",
                f"url(#{chart_id}-hatch)" if bar.hatched else "currentColor",
                bar.title,
                f"{x + slot * 0.35:.1f}",
                f"{y - 6:.1f}",
                _short(bar.value) if bar.value else "0",
                f"{HEIGHT - BOTTOM + 16:.1f}",
                bar.label,
            )
        )
    body = format_html_join(
        "\n",
        '<g class="bar"><rect x="{0}" y="{1}" width="{2}" height="{3}" fill="{4}" '
        'stroke="currentColor"><title>{5}</title></rect>'
        '<text x="{6}" y="{7}" text-anchor="middle" font-size="11">{8}</text>'
        '<text x="{6}" y="{9}" text-anchor="middle" font-size="11">{10}</text></g>',
        parts,
    )
    return format_html(
        '<svg id="{id}" class="revenue-chart" role="img" aria-labelledby="{id}-title" '
        'viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMidYMid meet" '
        'xmlns="http://www.w3.org/2000/svg" style="max-width: {w}px; color: #417690">'
        '<title id="{id}-title">{title}</title>'
        '<defs><pattern id="{id}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="white"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="currentColor" stroke-width="3"/></pattern>'
        "</defs>"
        '<line x1="{left}" y1="{base}" x2="{w}" y2="{base}" stroke="black"/>'
        "{body}</svg>",
        id=chart_id,
        w=WIDTH,
        h=HEIGHT,
        title=title,
        left=LEFT,
        base=HEIGHT - BOTTOM,
        body=body,
    )
