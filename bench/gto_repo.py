"""The GTO equivalent of a bench registry: a git repository whose annotated tags say
what the registry holds, in GTO's own tag format (https://mlem.ai/doc/gto).

Per model: one registration tag per version (`model@v1.0.K`) and one assignment tag
per current Production / Staging holder (`model#prod#1`, `model#staging#1`): 1,000
models x 20 versions = 22,000 tags. Version K of every model is registered on commit K.
Written with one `git fast-import` stream (seconds; `git tag` one at a time takes
minutes). Standard library only.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

TAGGER = "regops bench <bench@localhost> 1700000000 +0000"


def _data(text: str) -> str:
    raw = text.encode()
    return f"data {len(raw)}\n{text}"


def build_gto_repo(
    repo: Path, model_names: list[str], n_versions: int, stages: dict[int, str]
) -> int:
    """Create `repo` with the tags of `model_names` x `n_versions`; `stages` maps a version
    number to the GTO stage it holds (e.g. {20: "staging", 19: "prod"}). Returns the tag count.
    """
    repo.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    lines: list[str] = []
    for k in range(1, n_versions + 1):
        lines += [
            "commit refs/heads/main",
            f"mark :{k}",
            f"committer {TAGGER}",
            _data(f"model version {k}"),
        ]
        if k > 1:
            lines.append(f"from :{k - 1}")
        lines += ["M 644 inline version.txt", _data(str(k)), ""]
    tags = 0
    for name in model_names:
        for k in range(1, n_versions + 1):
            lines += [
                f"tag {name}@v1.0.{k}",
                f"from :{k}",
                f"tagger {TAGGER}",
                _data(f"Registering artifact {name} version v1.0.{k}"),
            ]
            tags += 1
            stage = stages.get(k)
            if stage:
                lines += [
                    f"tag {name}#{stage}#1",
                    f"from :{k}",
                    f"tagger {TAGGER}",
                    _data(f"Assigning stage {stage} to artifact {name} version v1.0.{k}"),
                ]
                tags += 1
    stream = "\n".join(lines) + "\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=stream.encode(), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
    return tags
