"""The history page at scale: render time, page size, and the browser's first screen.

A synthetic audit timeline (the data `regops history` builds: commits that touched the
state files, each change joined with its stamp) for N models x 50 versions over five
years: each version enters Staging with the challenger alias, then is promoted to
Production with champion while its predecessor is archived; one promotion in ten is
rolled back by a `git revert` and redone. It is turned into lanes (core/lanes.py) and the page
(render/html.py) as `regops history --format html` does, then opened in Debian's Chromium
(.ci/install-chromium; Playwright by executable_path): as the page itself measures them
from the start of navigation, its first paint, its first lane drawn, the first lane
shown (Element Timing's render time of its first bar: the first screen, painted) and the
end of parsing (DOMContentLoaded); then the time to draw the last model's lanes
once scrolled to the end, and how many sections were drawn (lazily: only those seen).

    .venv/bin/python bench/bench_history_html.py               # 10, 100 and 1,000 models
    .venv/bin/python bench/bench_history_html.py --models 1000 --versions 50

Each size is measured twice, side by side in one run: `plain`, every model's data as
JSON (the page before compression), and `gzip`, the models past the first screen
gzipped and base64-encoded, inflated in the browser when shown (what regops writes).
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from regops.core.lanes import build_lanes
from regops.core.time_travel import state_at
from regops.core.timeline import Applied, Change, Entry, History
from regops.render.html import render_html

YEARS5 = 5 * 365 * 86400
START = int(datetime(2021, 12, 1, tzinfo=timezone.utc).timestamp())


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic(models: int, versions: int) -> History:
    """Newest-first entries, as `regops history` builds them, with stamps joined."""
    entries: list[Entry] = []
    step = YEARS5 // (versions * 2)
    ok = Applied("applied", at=None, actor="release-bot", commit="x")

    def add(t: int, subject: str, changes: list[Change], reverts: str | None = None) -> str:
        n = len(entries) + 1
        stamped = Applied(ok.status, at=iso(t + 600), actor=ok.actor, commit=ok.commit)
        entries.append(
            Entry(
                commit=f"{n:040x}",
                author="Alice Adams",
                author_email="alice@example.com",
                authored_at=iso(t),
                committed_at=iso(t),
                subject=subject if reverts else f"{subject} (#{n})",
                pr=None if reverts else n,
                reverts=reverts,
                changes=tuple(replace(c, applied=stamped) for c in changes),
            )
        )
        return f"{n:040x}"

    for m in range(models):
        name = f"Model_{m:04d}"
        t = START + m * 37  # models interleave in time
        for v in range(1, versions + 1):
            ver, prev = str(v), str(v - 1) if v > 1 else None
            t += step
            add(
                t,
                f"Stage {name} v{ver}",
                [
                    Change(name, "stage", ver, None, "Staging"),
                    Change(name, "alias", ver, prev, ver, "challenger"),
                ],
            )
            promote = [Change(name, "stage", ver, "Staging", "Production")]
            if prev:
                promote.append(Change(name, "stage", prev, "Production", "Archived"))
            promote.append(Change(name, "alias", ver, prev, ver, "champion"))
            t += step
            sha = add(t, f"Promote {name} v{ver}", promote)
            if prev and v % 10 == 0:  # one promotion in ten is reverted, then redone
                back = [
                    Change(name, "stage", ver, "Production", "Staging"),
                    Change(name, "stage", prev, "Archived", "Production"),
                    Change(name, "alias", prev, ver, prev, "champion"),
                ]
                add(t + 3600, f'Revert "Promote {name} v{ver}"', back, reverts=sha)
                add(t + 7200, f"Promote {name} v{ver} again", promote)
    entries.sort(key=lambda e: e.committed_at, reverse=True)
    return History("registry-state", tuple(entries), registry="sqlite:///bench.db")


def until(tab: object, expression: str, timeout: float = 120.0) -> None:
    """Poll `expression` from outside (wait_for_function evaluates inside the page, which
    its Content-Security-Policy forbids: no 'unsafe-eval')."""
    end = time.perf_counter() + timeout
    while not tab.evaluate(expression):  # type: ignore[attr-defined]
        if time.perf_counter() > end:
            raise TimeoutError(expression)
        time.sleep(0.01)


def chromium() -> str | None:
    return os.environ.get("REGOPS_CHROMIUM") or shutil.which("chromium")


def measure(
    models: int,
    versions: int,
    out: Path,
    browser: object | None,
    packed: bool = True,
    loads: int = 3,
) -> dict[str, float]:
    history = synthetic(models, versions)
    now = START + YEARS5 + 86400
    at = datetime.fromtimestamp(START + YEARS5 // 2, timezone.utc)
    t0 = time.perf_counter()
    page = build_lanes(
        history,
        now=now,
        at=state_at(history, at),
        at_epoch=int(at.timestamp()),
    )
    t1 = time.perf_counter()
    html = render_html(page, packed=packed)
    out.write_text(html, encoding="utf-8")
    t2 = time.perf_counter()
    row = {
        "lanes_s": t1 - t0,
        "html_s": t2 - t1,
        "mb": len(html.encode("utf-8")) / 1e6,
        "tenures": sum(len(ln.tenures) for m in page.models for ln in m.lanes.values()),
        "commits": len(history.entries),
    }
    runs = [load(out, browser) for _ in range(loads)] if browser is not None else []
    for key in runs[0] if runs else ():
        row[key] = statistics.median(r[key] for r in runs)
    return row


def load(out: Path, browser: object) -> dict[str, float]:
    """One load of the page in a fresh tab: what it measured of itself."""
    row: dict[str, float] = {}
    tab = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    requests: list[str] = []
    url = out.resolve().as_uri()
    tab.on("request", lambda r: requests.append(r.url) if r.url != url else None)
    tab.goto(url, wait_until="commit")
    tab.wait_for_load_state("load")
    until(tab, "performance.getEntriesByName('regops-first-lane').length > 0")
    until(tab, "performance.getEntriesByName('first-contentful-paint').length > 0")
    # Milliseconds since navigation began, as the page itself saw them.
    row["fcp_ms"], row["first_lane_ms"], row["dcl_ms"] = tab.evaluate(
        """[performance.getEntriesByName('first-contentful-paint')[0].startTime,
            performance.getEntriesByName('regops-first-lane')[0].startTime,
            performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd]"""
    )
    # When the first bar reached the screen (Element Timing: its paint, not its drawing).
    row["painted_ms"] = tab.evaluate(
        """new Promise(done => new PerformanceObserver(l => done(l.getEntries()[0].renderTime))
            .observe({type: 'element', buffered: true}))"""
    )
    s1 = time.perf_counter()
    tab.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    until(tab, "[...document.querySelectorAll('section.model')].pop().dataset.drawn === '1'")
    row["scroll_end_s"] = time.perf_counter() - s1
    row["drawn"] = tab.eval_on_selector_all("section.model[data-drawn]", "s => s.length")
    row["requests"] = len(requests)
    tab.close()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--models", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--loads", type=int, default=3, help="page loads per size (median)")
    args = parser.parse_args(argv)
    path = chromium()
    print(f"history page: N models x {args.versions} versions over 5 years; browser: {path}")
    header = (
        f"{'models':>7} {'data':>6} {'commits':>8} {'tenures':>8} {'lanes s':>8} {'html s':>7} "
        f"{'page MB':>8} {'1st paint ms':>13} {'1st lane ms':>12} {'lanes shown ms':>15}"
        f" {'parsed ms':>10}"
        f" {'scroll end s':>13} {'drawn':>6} {'requests':>9}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        pw_ctx = None
        browser = None
        if path:
            from playwright.sync_api import sync_playwright

            pw_ctx = sync_playwright().start()
            browser = pw_ctx.chromium.launch(executable_path=path, args=["--no-sandbox"])
        else:
            print("no Chromium (run .ci/install-chromium): browser columns left empty")
        print(header)
        try:
            for n, packed in [(n, p) for n in args.models for p in (False, True)]:
                r = measure(n, args.versions, Path(tmp) / f"h{n}.html", browser, packed, args.loads)
                cells = (
                    f"{n:>7} {'gzip' if packed else 'plain':>6} {r['commits']:>8} "
                    f"{r['tenures']:>8} {r['lanes_s']:>8.2f} "
                    f"{r['html_s']:>7.2f} {r['mb']:>8.1f}"
                )
                if "fcp_ms" in r:
                    cells += (
                        f" {r['fcp_ms']:>13.0f} {r['first_lane_ms']:>12.0f}"
                        f" {r['painted_ms']:>15.0f} {r['dcl_ms']:>10.0f}"
                        f" {r['scroll_end_s']:>13.2f} {r['drawn']:>6.0f} {r['requests']:>9.0f}"
                    )
                print(cells, flush=True)
        finally:
            if browser is not None:
                browser.close()  # type: ignore[attr-defined]
            if pw_ctx is not None:
                pw_ctx.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
