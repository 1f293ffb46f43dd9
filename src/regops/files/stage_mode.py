"""Whether a repository's registry uses stages at all (the alias era's switch).

Stages are off when the registry has none (Unity Catalog) or when a state file
says `policy.use_stages: false`. The reference workload asks this to decide
whether to propose `challenger` instead of Staging and to follow `champion`
instead of Production. Lenient: a file that cannot be read says nothing here
(`regops validate` reports it). Never imports mlflow.
"""

from __future__ import annotations

from pathlib import Path

from regops.errors import StateError
from regops.files import yamlio
from regops.files.loader import check_state_dir, read_state_text, state_files


def stages_in_use(state_dir: Path, *, stages_supported: bool = True) -> bool:
    """False when the registry has no stages or any state file sets `use_stages: false`."""
    if not stages_supported:
        return False
    if not state_dir.is_dir():
        return True
    try:
        root = check_state_dir(state_dir)
    except StateError:
        return True
    for path in state_files(state_dir):
        try:  # the loader's guards: no FIFO, symlink out of the repository or oversize file
            doc = yamlio.read(read_state_text(path, root), lenient=True)  # never raises
        except StateError:
            continue
        data = doc.data if doc.parsed else None
        policy = data.get("policy") if isinstance(data, dict) else None
        if isinstance(policy, dict) and policy.get("use_stages") is False:
            return False
    return True
