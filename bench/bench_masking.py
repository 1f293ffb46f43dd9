"""Benchmark: masking secrets is linear in the length of the text masked.

Issue 17: a server's error body is untrusted, and every text regops shows passes through
`regops.adapters.tracking.mask_secrets` (and reports through its `mask_values` of
`report_secrets`). Before, a long run of letters (one scheme start per letter) or of `?`
(one query-key start per `?`) made it quadratic or worse: 40,000 `?` took 285 s. Each
hostile shape is masked at `base` and 10 x `base` characters; a linear masker takes
~10 x as long on the larger (quadratic: ~100 x). Prints one row per shape with the ratio
(min of 3 runs each).

Run: .venv/bin/python bench/bench_masking.py [--base 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from regops.adapters.tracking import mask_secrets, mask_values, report_secrets

# Secrets that share long prefixes with the text: every position starts a partial match.
ENV = {"A_TOKEN": "aaaaaaaaaaaaaaab", "B_PASSWORD": "aaab", "C_SECRET": "?token=a?x"}
SHAPES: dict[str, Callable[[int], str]] = {
    "letters": lambda n: "a" * n,
    "question marks": lambda n: "?" * n,
    "query keys": lambda n: "?" + "token" * (n // 5),
    "ampersands": lambda n: "&a" * (n // 2),
    "scheme then colons": lambda n: "x://" + "a:" * (n // 2),
    "credential values": lambda n: "?token=" + "a?" * (n // 2),
    "userinfo without @": lambda n: ("h://" + "u" * 50 + " ") * (n // 55),
}


def best_of(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ratios(base: int) -> dict[str, dict[str, float]]:
    """Per shape and masker: seconds at `base` and at 10 x `base`, and their ratio."""
    secrets = report_secrets(["http://aaaa:aaaab@aaaa.example:5000"], ENV.values())
    maskers: dict[str, Callable[[str], str]] = {
        "mask_secrets": lambda t: mask_secrets(t, environ=ENV),
        "redact": lambda t: mask_values(t, secrets),
    }
    out: dict[str, dict[str, float]] = {}
    for shape, make in SHAPES.items():
        small, large = make(base), make(10 * base)
        for name, mask in maskers.items():
            t1 = best_of(lambda m=mask, s=small: m(s))  # type: ignore[misc]
            t10 = best_of(lambda m=mask, s=large: m(s))  # type: ignore[misc]
            out[f"{shape} / {name}"] = {
                "chars": float(len(large)),
                "small_s": t1,
                "large_s": t10,
                "ratio": t10 / max(t1, 1e-9),
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=int, default=100_000, help="characters of the 1x text")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = ratios(args.base)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'shape / masker':44} {'10x chars':>10} {'1x s':>8} {'10x s':>8} {'ratio':>6}")
    for name, r in rows.items():
        print(
            f"{name:44} {int(r['chars']):>10} {r['small_s']:>8.4f} {r['large_s']:>8.4f} "
            f"{r['ratio']:>6.1f}"
        )


if __name__ == "__main__":
    main()
