#!/usr/bin/env python3
"""Open a gradesync run report in headless Chromium and check what people will see.

Usage: scripts/check_report_render.py REPORT.html OUT.png
Checks, in real Chromium (DevTools protocol over --remote-debugging-pipe; no network, no extra package):
- the history chart rendered (its bars add up to each night's total);
- at 1280 and 1920 px wide: no horizontal page overflow, and every finding's scores and action inside the
  viewport width, wide enough to read (not one word per line) and not clipped;
- printed (print media, A4 landscape as the report's @page asks): the same measures at the printable
  width, so a cut column fails; then the PDF itself is written.
Writes OUT.png (1280 px, full page), OUT-1920.png and OUT.pdf.
Exit codes: 0 all checks passed; 1 a check failed; 2 bad usage; 3 Chromium is not installed
(Debian: apt-get install -y chromium). The Chromium binary is $CHROMIUM, else /usr/bin/chromium.
"""
from __future__ import annotations

import base64
import json
import os
import select
import struct
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
WIDTHS = (1280, 1920)
# A4 landscape (297 mm) minus the report's 12 mm page margins, at CSS 96 px per inch.
PRINT_WIDTH = int((297 - 2 * 12) / 25.4 * 96)
MIN_ACTION_PX = 110          # narrower than this, "Action" reads one word per line
TIMEOUT_S = 60
MAX_SHOT_HEIGHT = 16_000
# Flags: no sandbox (runs as root in containers), and nothing that would reach the network.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]

# Measures the laid-out page; returns problems as text. Only rows the filter shows are measured.
MEASURE_JS = r"""
(() => {
  const vw = document.documentElement.clientWidth, out = [];
  const sw = document.documentElement.scrollWidth;
  if (sw > vw + 1) out.push(`page overflows horizontally: ${sw} px content in a ${vw} px viewport`);
  for (const t of document.querySelectorAll("table")) {
    const r = t.getBoundingClientRect();
    if (r.width && r.right > vw + 1) out.push(`a table ends at ${Math.round(r.right)} px, beyond ${vw} px`);
  }
  let rows = 0;
  for (const tr of document.querySelectorAll("tr.finding")) {
    if (!tr.offsetParent) continue;
    rows += 1;
    const label = (tr.querySelector("td") || tr).innerText.trim().split("\n")[0].slice(0, 40);
    for (const td of tr.querySelectorAll("td.score, td.action")) {
      const r = td.getBoundingClientRect();
      if (r.left < -1 || r.right > vw + 1) out.push(`${label}: ${td.className} cell at ${Math.round(r.left)}–${Math.round(r.right)} px, outside ${vw} px`);
      if (td.classList.contains("action") && r.width < %(min_action)d) out.push(`${label}: action column only ${Math.round(r.width)} px wide`);
      if (td.classList.contains("score") && td.scrollWidth > td.clientWidth + 1) out.push(`${label}: score "${td.innerText}" is clipped`);
    }
  }
  return JSON.stringify({problems: out, rows, width: vw});
})()
""".replace("%(min_action)d", str(MIN_ACTION_PX))


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


class DevTools:
    """A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, profile: str) -> None:
        to_child_r, self._w = os.pipe()
        self._r, from_child_w = os.pipe()

        def wire() -> None:   # in the child: the pipe ends become fds 3 and 4
            a, b = os.dup(to_child_r), os.dup(from_child_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     close_fds=False, preexec_fn=wire)   # our fds are O_CLOEXEC; 3, 4 stay
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited: {self.proc.stderr.read().decode(errors='replace')[-1000:]}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, *, session: bool = True) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read_message(deadline))
        self.events = [e for e in self.events if e.get("method") != method]

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return r.get("result", {}).get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
        except Exception:  # noqa: BLE001 - closing a browser that already went away
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        os.close(self._r)


def chromium_path() -> str:
    return os.environ.get("CHROMIUM", DEFAULT_CHROMIUM)


def png_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:24]
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def chart_problems(html: str) -> tuple[list[str], ChartScan]:
    scan = ChartScan()
    scan.feed(html)
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
    return problems, scan


def _viewport(dt: DevTools, width: int, height: int = 900) -> None:
    dt.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                   "mobile": False})


def _measure(dt: DevTools, where: str) -> tuple[list[str], int]:
    m = json.loads(dt.evaluate(MEASURE_JS))
    return [f"{where}: {p}" for p in m["problems"]], m["rows"]


def _screenshot(dt: DevTools, width: int, path: Path) -> None:
    height = int(dt.call("Page.getLayoutMetrics")["cssContentSize"]["height"])
    _viewport(dt, width, min(max(height, 600), MAX_SHOT_HEIGHT))
    shot = dt.call("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(shot["data"]))
    _viewport(dt, width)


def inspect(binary: str, url: str, out_png: Path) -> tuple[list[str], str, dict]:
    """Load the page; return (layout problems, rendered HTML, facts for the summary line)."""
    problems: list[str] = []
    facts: dict = {}
    with tempfile.TemporaryDirectory(prefix="gradesync-chromium-") as profile:
        # A private profile: parallel runs don't fight over the default one's lock.
        dt = DevTools(binary, profile)
        try:
            target = dt.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            dt.session = dt.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
            dt.call("Page.enable")
            _viewport(dt, WIDTHS[0])
            dt.call("Page.navigate", {"url": url})
            dt.wait_event("Page.loadEventFired")
            html = dt.evaluate("document.documentElement.outerHTML") or ""
            for width in WIDTHS:
                _viewport(dt, width)
                found, facts["rows"] = _measure(dt, f"{width} px")
                problems += found
                shot = out_png if width == WIDTHS[0] else out_png.with_name(f"{out_png.stem}-{width}.png")
                _screenshot(dt, width, shot)
                facts.setdefault("shots", []).append(shot)
            dt.call("Emulation.setEmulatedMedia", {"media": "print"})
            _viewport(dt, PRINT_WIDTH)
            found, _ = _measure(dt, f"print ({PRINT_WIDTH} px, A4 landscape)")
            problems += found
            pdf = dt.call("Page.printToPDF", {"preferCSSPageSize": True, "printBackground": True})
            data = base64.b64decode(pdf["data"])
            pdf_path = out_png.with_suffix(".pdf")
            pdf_path.write_bytes(data)
            facts["pdf"] = pdf_path
            facts["pages"] = data.count(b"/Type /Page") - data.count(b"/Type /Pages")
            if not data.startswith(b"%PDF"):
                problems.append("print: Chromium wrote no PDF")
        finally:
            dt.close()
    return problems, html, facts


def check(report: Path, out_png: Path) -> int:
    """Run every check; print one line per failure (or one summary line). Returns the exit code."""
    binary = chromium_path()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"chromium not found at {binary}: install it (Debian: apt-get update && apt-get install -y "
              "chromium) or set CHROMIUM to its path", file=sys.stderr)
        return 3
    if not report.is_file():
        print(f"no such report: {report}", file=sys.stderr)
        return 2
    out_png.parent.mkdir(parents=True, exist_ok=True)
    out_png.unlink(missing_ok=True)
    try:
        problems, html, facts = inspect(binary, report.resolve().as_uri(), out_png)
    except (RuntimeError, TimeoutError, OSError) as e:
        print(f"FAIL: chromium: {e}", file=sys.stderr)
        return 1
    chart, scan = chart_problems(html)
    problems = chart + problems
    size = png_size(out_png) if out_png.is_file() else None
    if size is None:
        problems.append("no PNG screenshot written")
    if problems:
        for p in problems:
            print(f"FAIL: {p}", file=sys.stderr)
        return 1
    print(f"ok: chart with {len(scan.nights)} nights and {len(scan.bars)} bars "
          f"({sum(t for _, t in scan.nights)} findings); {facts.get('rows', 0)} finding rows readable at "
          f"{' and '.join(map(str, WIDTHS))} px and printed ({PRINT_WIDTH} px, {facts.get('pages')} PDF pages); "
          f"screenshot {out_png} {size[0]}x{size[1]}, also {', '.join(str(p) for p in facts['shots'][1:])}, "
          f"{facts['pdf']}")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    return check(Path(argv[0]), Path(argv[1]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
