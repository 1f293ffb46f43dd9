"""Where the test suite's time goes: `make test` keeps every test's time in
test-results.xml (pytest --junitxml); this sums it by file, slowest first.

    python bench/suite_times.py [test-results.xml] [--top 30]

Files are what `--dist loadfile` schedules: one file runs on one worker, so a file
longer than the others' share is the run's long pole.
"""

from __future__ import annotations

import argparse
import xml.etree.ElementTree as ET  # noqa: S405 - our own pytest's report
from collections import defaultdict
from pathlib import Path


def by_file(report: Path) -> dict[str, tuple[float, int]]:
    """test file -> (seconds, tests)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for case in ET.parse(report).iter("testcase"):  # noqa: S314
        parts = (case.get("classname") or "?").split(".")  # tests.e2e.test_x[.Class]
        module = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        file = "/".join(parts[: module + 1]) + ".py"
        totals[file][0] += float(case.get("time") or 0)
        totals[file][1] += 1
    return {f: (t, int(n)) for f, (t, n) in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", nargs="?", type=Path, default=Path("test-results.xml"))
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    files = by_file(args.report)
    total = sum(t for t, _ in files.values())
    tests = sum(n for _, n in files.values())
    print(f"{tests} tests, {total:.0f} s of test time in {len(files)} files")
    print(f"{'seconds':>8} {'share':>6} {'tests':>6}  file")
    for f, (t, n) in sorted(files.items(), key=lambda kv: -kv[1][0])[: args.top]:
        print(f"{t:8.1f} {t / total:6.1%} {n:6d}  {f}")


if __name__ == "__main__":
    main()
