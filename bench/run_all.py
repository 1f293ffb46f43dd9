"""Run every bench/bench_*.py in turn and print their output in one run (`make bench`).

Each benchmark runs in its own process with this interpreter, from the repository
root, its output streamed as it comes; a summary of exit codes and durations ends
the run. Exit status: 0 when every benchmark exited 0, else 1.

    .venv/bin/python bench/run_all.py            # all of them
    .venv/bin/python bench/run_all.py plan train # only bench_plan.py and bench_train.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def discover(only: list[str]) -> list[Path]:
    found = sorted(BENCH.glob("bench_*.py"))
    if not only:
        return found
    wanted = {n.removeprefix("bench_").removesuffix(".py") for n in only}
    unknown = wanted - {p.stem.removeprefix("bench_") for p in found}
    if unknown:
        names = ", ".join(p.stem.removeprefix("bench_") for p in found)
        raise SystemExit(f"no benchmark named {', '.join(sorted(unknown))} (have: {names})")
    return [p for p in found if p.stem.removeprefix("bench_") in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("only", nargs="*", help="benchmark names (plan, train, ...); default all")
    args = parser.parse_args(argv)

    results: list[tuple[str, int, float]] = []
    for path in discover(args.only):
        rel = path.relative_to(ROOT)
        print(f"\n{'=' * 100}\n{rel}\n{'=' * 100}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, str(path)], cwd=ROOT, check=False).returncode
        results.append((str(rel), code, time.perf_counter() - t0))

    print(f"\n{'=' * 100}\nsummary")
    for rel, code, seconds in results:
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  {rel:32}{seconds:>8.1f} s  {status}")
    total = sum(s for _, _, s in results)
    print(f"  {'total':32}{total:>8.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
