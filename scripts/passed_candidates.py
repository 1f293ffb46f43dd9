"""The versions the latest training run registered that passed both gates (`make candidates`).

Reads data/metrics/last_training.json (what `accident train` registered) and each
version's evidence tags in the registry (`validation_status`, `smoke_test_status`,
written by `accident validate` and `accident smoke-test`). Writes `MODEL VERSION`,
one passing version a line, to --out; says on stderr why any other was left out.
CI's train workflow adds those lines to the state with `regops transition`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from regops.errors import RegopsError
from regops.registry import MlflowRegistry
from regops.tracking import mask_uri, resolve_tracking_uri

EVIDENCE = ("validation_status", "smoke_test_status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--manifest", type=Path, default=Path("data/metrics/last_training.json"))
    parser.add_argument("--out", type=Path, default=Path("data/metrics/candidates.txt"))
    parser.add_argument("--tracking-uri", default=None)
    args = parser.parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text(encoding="utf-8"))
        trained = [(m["registered_model"], str(m["version"])) for m in manifest["models"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(
            f"error: {args.manifest}: no training manifest ({exc}); run `accident train`",
            file=sys.stderr,
        )
        return 1
    uri = resolve_tracking_uri(args.tracking_uri).uri
    try:
        live = MlflowRegistry(uri).snapshot(sorted({name for name, _ in trained}))
    except RegopsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    passed = []
    for name, version in trained:
        model = live.models.get(name)
        found = model.versions.get(version) if model else None
        tags = found.tags if found else {}
        missing = [f"{k}={tags.get(k, 'absent')}" for k in EVIDENCE if tags.get(k) != "passed"]
        if found is None:
            print(f"{name} v{version}: not in the registry at {mask_uri(uri)}", file=sys.stderr)
        elif missing:
            print(f"{name} v{version}: left out ({', '.join(missing)})", file=sys.stderr)
        else:
            print(f"{name} v{version}: passed both gates", file=sys.stderr)
            passed.append(f"{name} {version}\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(passed), encoding="utf-8")
    print(f"{len(passed)} of {len(trained)} candidate(s) passed: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
