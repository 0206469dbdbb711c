#!/usr/bin/env python3
"""Open a gradesync run report in headless Chromium, screenshot it, and check the history chart rendered.

Usage: scripts/check_report_render.py REPORT.html OUT.png
Exit codes: 0 the chart is in the rendered DOM and the screenshot was written; 1 a check failed;
2 bad usage; 3 Chromium is not installed (Debian: apt-get install -y chromium).
The Chromium binary is $CHROMIUM, else /usr/bin/chromium.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
WINDOW = (1280, 2000)
TIMEOUT_S = 60
# Flags: no sandbox (runs as root in containers), and nothing that would reach the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]


class ChartScan(HTMLParser):
    """Counts, inside <svg id="history-chart">, the night groups and the bars within them."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0                               # >0 while inside the chart's <svg>
        self.found = False
        self.nights: list[tuple[str, int]] = []      # (night, data-total)
        self.bars: list[tuple[str, int]] = []        # (night, data-count)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and a.get("id") == "history-chart":
            self.found, self.depth = True, 1
            return
        if not self.depth:
            return
        if tag == "svg":
            self.depth += 1
        classes = (a.get("class") or "").split()
        if tag == "g" and "night" in classes:
            self.nights.append((a.get("data-night") or "", int(a.get("data-total") or 0)))
        if tag == "rect" and "bar" in classes and self.nights:
            self.bars.append((self.nights[-1][0], int(a.get("data-count") or 0)))

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "svg":
            self.depth -= 1


def chromium_path() -> str:
    return os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)


def run_chromium(binary: str, extra: list[str], url: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="gradesync-chromium-") as profile:
        # A private profile: parallel runs don't fight over the default one's lock.
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)


def png_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def check(report: Path, out_png: Path) -> int:
    """Dump the rendered DOM and check the chart; then take the screenshot. Returns the exit code."""
    binary = chromium_path()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"chromium not found at {binary}: install it (Debian: apt-get update && apt-get install -y "
              "chromium) or set CHROMIUM to its path", file=sys.stderr)
        return 3
    if not report.is_file():
        print(f"no such report: {report}", file=sys.stderr)
        return 2
    url = report.resolve().as_uri()
    dom = run_chromium(binary, ["--dump-dom"], url)
    if dom.returncode != 0 or not dom.stdout.strip():
        print(f"chromium --dump-dom failed (exit {dom.returncode}): {dom.stderr[-2000:]}", file=sys.stderr)
        return 1
    scan = ChartScan()
    scan.feed(dom.stdout)
    problems = []
    if not scan.found:
        problems.append('no <svg id="history-chart"> in the rendered DOM')
    elif not scan.nights:
        problems.append("the chart has no night groups")
    elif not scan.bars and any(total for _, total in scan.nights):
        problems.append("the chart has findings but no bars")
    for night, total in scan.nights:
        drawn = sum(n for nn, n in scan.bars if nn == night)
        if drawn != total:
            problems.append(f"night {night}: bars add up to {drawn}, the label says {total}")
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.unlink(missing_ok=True)
    shot = run_chromium(binary, [f"--screenshot={out_png.resolve()}", f"--window-size={WINDOW[0]},{WINDOW[1]}"], url)
    size = png_size(out_png) if out_png.is_file() else None
    if size is None:
        problems.append(f"no PNG screenshot written (chromium exit {shot.returncode}): {shot.stderr[-1000:]}")
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        return 1
    print(f"ok: chart with {len(scan.nights)} nights and {len(scan.bars)} bars "
          f"({sum(t for _, t in scan.nights)} findings); screenshot {out_png} {size[0]}x{size[1]}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return check(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
