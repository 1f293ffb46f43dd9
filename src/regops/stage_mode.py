"""Whether a repository's registry uses stages at all (the alias era's switch).

Stages are off when the registry has none (Unity Catalog) or when a state file
says `policy.use_stages: false`. The reference workload asks this to decide
whether to propose `challenger` instead of Staging and to follow `champion`
instead of Production. Lenient: a file that cannot be read says nothing here
(`regops validate` reports it). Never imports mlflow.
"""

from __future__ import annotations

from pathlib import Path

from regops import yamlio
from regops.loader import MAX_FILE_BYTES, state_files


def stages_in_use(state_dir: Path, *, stages_supported: bool = True) -> bool:
    """False when the registry has no stages or any state file sets `use_stages: false`."""
    if not stages_supported:
        return False
    if not state_dir.is_dir():
        return True
    for path in state_files(state_dir):
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                continue
            doc = yamlio.read(raw.decode("utf-8"), lenient=True)  # never raises
        except (OSError, UnicodeDecodeError):
            continue
        data = doc.data if doc.parsed else None
        policy = data.get("policy") if isinstance(data, dict) else None
        if isinstance(policy, dict) and policy.get("use_stages") is False:
            return False
    return True
