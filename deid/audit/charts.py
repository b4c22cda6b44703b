"""Inline SVG bar charts for the HTML report (no script, no external resource)."""

from __future__ import annotations

from html import escape

PALETTE = ("#2f6f9f", "#4f9f6f", "#c98a2b", "#a4506b", "#6b5fa8", "#3f8f8f", "#8f6f3f", "#7f7f7f")
BAR_HEIGHT, GAP, LABEL_WIDTH, BAR_WIDTH, COUNT_WIDTH = 18, 6, 230, 360, 80


def _label(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bar_chart(title: str, items: list[tuple[str, int]], *, limit: int = 12,
              colours: dict[str, str] | None = None, caption: bool = True) -> str:
    """A horizontal bar chart of (label, count), largest first; the rest summed as 'other'.  Without
    ``caption`` the title is the image's accessible name only (when a heading above already says it)."""
    items = sorted(((label or "(empty)", count) for label, count in items if count > 0),
                   key=lambda item: (-item[1], item[0]))
    if len(items) > limit:
        rest = sum(count for _, count in items[limit - 1:])
        items = items[: limit - 1] + [(f"other ({len(items) - limit + 1})", rest)]
    shown_title = f"<figcaption>{escape(title)}</figcaption>" if caption else ""
    return f'<figure class="chart-box">{shown_title}{_svg(title, items, colours)}</figure>'


def _svg(title: str, items: list[tuple[str, int]], colours: dict[str, str] | None) -> str:
    width = LABEL_WIDTH + BAR_WIDTH + COUNT_WIDTH
    if not items:
        return (f'<svg class="chart" role="img" width="{width}" height="30" viewBox="0 0 {width} 30" '
                f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
                f'<text x="0" y="20" class="empty">none</text></svg>')
    top = max(count for _, count in items)
    height = len(items) * (BAR_HEIGHT + GAP) + GAP
    parts = [(f'<svg class="chart" role="img" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
              f"<title>{escape(title)}</title>")]
    for n, (label, count) in enumerate(items):
        y = GAP + n * (BAR_HEIGHT + GAP)
        length = max(2, round(BAR_WIDTH * count / top))
        colour = (colours or {}).get(label) or PALETTE[n % len(PALETTE)]
        parts.append(
            f'<g class="bar"><title>{escape(label)}: {count}</title>'
            f'<text x="{LABEL_WIDTH - 8}" y="{y + BAR_HEIGHT - 5}" text-anchor="end">{escape(_label(label))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}" fill="{colour}"/>'
            f'<text x="{LABEL_WIDTH + length + 6}" y="{y + BAR_HEIGHT - 5}">{count:,}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
