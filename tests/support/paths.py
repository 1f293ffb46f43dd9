"""Where the repository's files are, for a test at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"  # state files: valid, invalid, hostile, hostile_json
GOLDEN = ROOT / "tests" / "golden"  # the read commands' byte-exact outputs
SCHEMAS = ROOT / "schemas"
WORKLOAD = ROOT / "workload"  # the reference workload's own distribution (pyproject.toml, src/)
