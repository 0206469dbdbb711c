"""A tiny HTML reader for the tests: the chart's nights/bars and the text of elements by id."""
from __future__ import annotations

from html.parser import HTMLParser


class ChartReader(HTMLParser):
    """Night groups (data-night, data-total) and their bars (data-category, data-count, height)."""

    def __init__(self) -> None:
        super().__init__()
        self.in_chart = False
        self.svg_count = 0
        self.nights: list[dict] = []
        self.legend: list[str] = []
        self._in_legend = False
        self.scripts = 0                 # elements that load something (script src, link, img, …)
        self.inline_scripts = 0          # <script> without src: the report's own filter
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "script" and not a.get("src"):
            self.inline_scripts += 1
        elif tag in ("script", "link", "iframe", "object", "embed", "img"):
            self.scripts += 1
        for k in ("src", "href"):
            if a.get(k, "").startswith(("http:", "https:", "//")):
                self.external.append(a[k])
        if tag == "svg":
            self.svg_count += 1
            self.in_chart = a.get("id") == "history-chart"
        cls = (a.get("class") or "").split()
        if not self.in_chart:
            return
        if tag == "g" and "night" in cls:
            self.nights.append({"night": a["data-night"], "total": int(a["data-total"]), "bars": []})
        elif tag == "rect" and "bar" in cls:
            self.nights[-1]["bars"].append({"category": a["data-category"], "count": int(a["data-count"]),
                                            "height": float(a["height"]), "y": float(a["y"])})
        elif tag == "g" and "legend" in cls:
            self._in_legend = True

    def handle_data(self, data):
        if self._in_legend and data.strip():
            self.legend.append(data.strip())

    def handle_endtag(self, tag):
        if tag == "g" and self._in_legend:
            self._in_legend = False
        if tag == "svg":
            self.in_chart = False


def read_chart(html: str) -> ChartReader:
    r = ChartReader()
    r.feed(html)
    return r


def section(html: str, section_id: str) -> str:
    """The raw HTML of <section id=...> (sections are not nested in the report)."""
    start = html.index(f'<section id="{section_id}"') if f'<section id="{section_id}"' in html else \
        html.index(f'id="{section_id}"')
    return html[start: html.index("</section>", start)]
