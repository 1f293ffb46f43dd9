"""What `regops init` writes into a repository, and how it compares with what is there.

The texts come from the templates shipped in the package (files/templates/) and from
the live registry's export; nothing here reads the registry. `compare` sorts each file
into created / unchanged / conflicting without writing: the caller refuses the whole
run when a file that exists would change (unless forced), then writes all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from regops.files.codeowners import DEFAULT_FILE as CODEOWNERS_FILE

TEMPLATES = Path(__file__).parent / "templates"
WORKFLOWS = ("regops-plan.yml", "regops-apply.yml", "regops-drift.yml")
PRECOMMIT_FILE = Path(".pre-commit-config.yaml")
CONFIG_FILE = Path("regops.yaml")
EMPTY_STATE_NAME = "models.yaml"
HOOKS_REPO = "https://github.com/regops/regops"
ACTION_REPO = "regops/regops"
# The lines of CODEOWNERS that init owns: a block of its own, beside the one that
# `regops codeowners` keeps (per-model owners), never touching any other line.
CODEOWNERS_BEGIN = "# BEGIN regops init: who approves a change of the desired registry state"
CODEOWNERS_END = "# END regops init"
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")  # schemas/regops-config.schema.json
OWNER = re.compile(r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9._-]{1,100})?")
MAX_COMPARED_BYTES = 4 << 20
SECRET_NAMES = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",  # a bearer token (Databricks, DagsHub, a proxy) instead
)


@dataclass(frozen=True)
class Comparison:
    """Each planned file (relative to the repository root) against what is on disk."""

    create: tuple[Path, ...] = ()
    unchanged: tuple[Path, ...] = ()
    conflicts: tuple[Path, ...] = ()  # exists with other content: written only when forced
    texts: Mapping[Path, str] = field(default_factory=dict)


def env_variable(env: str) -> str:
    """The variable (and repository secret) holding an environment's tracking URI."""
    return "MLFLOW_TRACKING_URI_" + re.sub(r"[^A-Za-z0-9]", "_", env).upper()


def state_dir_of(env: str) -> str:
    return f"registry-state/{env}"


def alias_only_policy(text: str) -> str:
    """`text` (a state file that has no policy) with `policy: {use_stages: false}` added."""
    head, sep, rest = text.partition("apiVersion: regops/v1\n")
    return (
        head + sep + "policy:\n  use_stages: false  # alias-only (regops init --aliases)\n" + rest
    )


def empty_state(*, aliases: bool) -> str:
    text = (
        "# The desired state of the model registry (regops init). Declare a model's versions\n"
        "# here once training has registered them; `regops export` writes them from a registry.\n"
        "apiVersion: regops/v1\n"
        "models: {}\n"
    )
    return alias_only_policy(text) if aliases else text


def config_text(envs: Sequence[str]) -> str:
    lines = [
        "# The environments of this repository (regops init): one registry and state",
        "# directory each; `regops --env NAME plan`. URIs come from variables, never this file.",
        "apiVersion: regops/v1",
        "environments:",
    ]
    for env in envs:
        lines += [
            f"  {env}:",
            f"    tracking_uri: ${{{env_variable(env)}}}",
            f"    state_dir: {state_dir_of(env)}",
        ]
    return "\n".join(lines) + "\n"


def workflow_text(name: str, *, state_dir: str, envs: Sequence[str], version: str,
                  action: str, branch: str, pin_version: bool = True) -> str:  # fmt: skip
    """One workflow from its template: the whole state directory, or one job per env.

    `pin_version`: the Action installs this version from the package index (the default
    Action, whose tag is this version); otherwise it installs its own checkout, so the
    one version is the one the `--action` reference names.
    """
    text = (TEMPLATES / "workflows" / name).read_text(encoding="utf-8")
    if envs:
        matrix = (
            "\n    strategy:\n      fail-fast: false\n      matrix:\n"
            f"        env: [{', '.join(envs)}]"
        )
        secrets = [
            f"      {env_variable(e)}: ${{{{ secrets.{env_variable(e)} }}}}" for e in envs
        ] + [f"      {s}: ${{{{ secrets.{s} }}}}" for s in SECRET_NAMES[1:]]
        target = "\n          env: ${{ matrix.env }}"
        paths = '"registry-state/**", "regops.yaml"'
    else:
        matrix = ""
        secrets = [f"      {s}: ${{{{ secrets.{s} }}}}" for s in SECRET_NAMES]
        target = f"\n          state-dir: {state_dir}"
        paths = f'"{state_dir}/**"'
    for key, value in (
        ("__MATRIX__", matrix),
        ("__SECRETS__", "\n".join(secrets)),
        ("__TARGET__", target),
        ("__PIN__", f'\n          version: "{version}"' if pin_version else ""),
        ("__PATHS__", paths),
        ("__ACTION__", action + _unpinned_note(action)),
        ("__BRANCH__", branch),
        ("__VERSION__", version),
    ):
        text = text.replace(key, value)
    return text


def _unpinned_note(action: str) -> str:
    """zizmor's finding on a tag, answered where it is made: a commit SHA needs none."""
    if re.fullmatch(r"[^@\s]+@[0-9a-f]{40}", action):
        return ""
    return " # zizmor: ignore[unpinned-uses] a release tag (regops init); pin its commit SHA"


def precommit_text(version: str, *, envs: Sequence[str] = ()) -> str:
    text = (TEMPLATES / "pre-commit-config.yaml").read_text(encoding="utf-8")
    text = text.replace("__HOOKS_REPO__", HOOKS_REPO).replace("__VERSION__", version)
    if envs:  # `regops codeowners` maps one state directory: not a repository of several
        text = text.replace(
            "      - id: regops-codeowners\n",
            "      # regops-codeowners is left out: it maps one state directory, and this\n"
            "      # repository has one per environment (" + ", ".join(envs) + ").\n",
        )
    return text


def codeowners_block(state_dirs: Sequence[str], owners: Sequence[str]) -> str:
    who = " ".join(owners)
    lines = [CODEOWNERS_BEGIN]
    if not owners:
        lines.append("# Name the team that approves state changes (regops init --owner @org/team):")
    for d in state_dirs:
        lines.append(f"/{d}/ {who}" if owners else f"# /{d}/ @your-org/your-team")
    lines.append(CODEOWNERS_END)
    return "\n".join(lines) + "\n"


def codeowners_text(before: str | None, block: str) -> tuple[str, bool]:
    """(the file's text with init's block, whether the block was already there)."""
    if before is None:
        return block, False
    start = before.find(CODEOWNERS_BEGIN)
    end = before.find(CODEOWNERS_END, start)
    if start >= 0 and end >= 0:  # init's own block, replaced in place (the rest kept)
        tail = before[end + len(CODEOWNERS_END) :]
        return before[:start] + block + tail.removeprefix("\n"), True
    # Before any other block: in CODEOWNERS the last match wins, so regops codeowners'
    # per-model lines (appended at the end) stay in force after this one.
    sep = "" if not before or before.endswith("\n") else "\n"
    return block + "\n" + before + sep if before else block, False


def compare(root: Path, texts: Mapping[Path, str]) -> Comparison:
    """Sort the planned files against the disk; reads, never writes."""
    create: list[Path] = []
    same: list[Path] = []
    conflicts: list[Path] = []
    for rel, text in texts.items():
        path = root / rel
        if not path.exists() and not path.is_symlink():
            create.append(rel)
            continue
        try:  # a file far larger than any text init writes differs from it: not read
            small = path.is_file() and path.stat().st_size <= MAX_COMPARED_BYTES
            current = path.read_text(encoding="utf-8") if small else None
        except (OSError, UnicodeDecodeError):
            current = None
        (same if current == text else conflicts).append(rel)
    return Comparison(tuple(create), tuple(same), tuple(conflicts), dict(texts))


def has_state(directory: Path) -> bool:
    """Whether a state directory already holds state files (init then keeps them)."""
    return directory.is_dir() and any(
        p.suffix in (".yaml", ".yml") for p in directory.rglob("*") if p.is_file()
    )


__all__ = [
    "ACTION_REPO",
    "CODEOWNERS_FILE",
    "CONFIG_FILE",
    "EMPTY_STATE_NAME",
    "ENV_NAME",
    "OWNER",
    "PRECOMMIT_FILE",
    "WORKFLOWS",
    "Comparison",
    "alias_only_policy",
    "codeowners_block",
    "codeowners_text",
    "compare",
    "config_text",
    "empty_state",
    "has_state",
    "precommit_text",
    "workflow_text",
]
