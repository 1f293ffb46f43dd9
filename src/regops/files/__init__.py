"""Repository files at the edge: YAML, JSON, state files, plan and snapshot files."""

from __future__ import annotations

from pathlib import Path

# The JSON Schemas (symlinks to the repository's schemas/, packaged as real files): the
# one place every reader finds them.
SCHEMAS = Path(__file__).parent / "schemas"
