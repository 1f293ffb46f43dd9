"""Load and validate state files: YAML -> JSON Schema -> semantic checks -> DesiredState.

Validate once, at the edge: every problem in every file is collected, each as
`FILE:LINE: message`, and raised together as one StateError. Never imports mlflow
(`regops validate` needs no network and must start fast).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from jsonschema import Draft202012Validator, ValidationError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from regops.errors import Diagnostic, StateError
from regops.state import (
    STAGES,
    AliasPolicy,
    DesiredState,
    ModelSpec,
    Policy,
    StagePolicy,
    VersionSpec,
)

# A state file is hand-edited text; anything bigger is a mistake or an attack.
MAX_FILE_BYTES = 1 << 20
# Real state files nest about 7 levels; PyYAML composes recursively, so a deeper file
# would end in a RecursionError (a crash) rather than a diagnostic.
MAX_DEPTH = 64
MAX_MESSAGE_CHARS = 300
PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
RESERVED_ALIAS = re.compile(r"^(latest|v[0-9]+)$", re.IGNORECASE)
SCHEMA_FILE = Path(__file__).parent / "schemas" / "registry-state.schema.json"

Path_ = tuple[str | int, ...]


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses YAML aliases, so a billion-laughs file cannot expand,
    and nesting deeper than MAX_DEPTH, so a `[[[[...` file cannot exhaust the stack."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not allowed in state files",
                problem_mark=event.start_mark,
            )
        if self._depth >= MAX_DEPTH:
            raise yaml.MarkedYAMLError(
                problem=f"nested deeper than {MAX_DEPTH} levels",
                problem_mark=self.peek_event().start_mark,
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        assert node is not None
        return node


def state_files(state_dir: Path) -> list[Path]:
    """The state files of a directory, in a stable order."""
    return sorted(p for p in state_dir.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class _File:
    """One parsed file: data, a path -> line map, and its problems."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.lines: dict[Path_, int] = {}
        self.diags: list[Diagnostic] = []
        self.data: Any = None
        self.parsed = False
        self._parse(text)

    def diag(self, line: int, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # messages quote values; a value may be 1 MiB
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters)"
        self.diags.append(Diagnostic(self.name, line, message))

    def line_of(self, path: Path_) -> int:
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def _parse(self, text: str) -> None:
        try:
            loader = _NoAliasLoader(text)  # checks every character up front
        except yaml.reader.ReaderError as exc:
            line = text.count("\n", 0, exc.position) + 1
            char = exc.character if isinstance(exc.character, int) else ord(exc.character)
            self.diag(line, f"YAML error: unacceptable character #x{char:04x}: {exc.reason}")
            return
        try:
            node = loader.get_single_node()
            if node is None:
                self.diag(1, "file is empty (expected apiVersion and models)")
                return
            self.data = self._convert(loader, node, ())
            self.parsed = True
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            self.diag(line, f"YAML error: {exc.problem or exc.context}")
            self.data = None
        finally:
            loader.dispose()

    def _convert(self, loader: yaml.SafeLoader, node: Node, path: Path_) -> Any:
        # A mapping entry points at its key's line, not at where its value starts.
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in PLAIN_TAGS:
            # Scalars with unknown tags fail in construct_object; collections would
            # otherwise be read as plain ones with their tag (!!python/..., !!set) ignored.
            tag = node.tag.replace("tag:yaml.org,2002:", "!!", 1)
            self.diag(node.start_mark.line + 1, f"YAML tag {tag} is not allowed in state files")
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, ScalarNode):
                    self.diag(key_node.start_mark.line + 1, "mapping keys must be plain scalars")
                    continue
                key = key_node.value  # raw text: "01" stays "01", never octal 1
                key_path: Path_ = (*path, key)
                if key in out:
                    first = self.lines[key_path]
                    self.diag(
                        key_node.start_mark.line + 1,
                        f"duplicate key {ascii(key)} in {_where(path)} (first at line {first})",
                    )
                    continue
                self.lines[key_path] = key_node.start_mark.line + 1
                out[key] = self._convert(loader, value_node, key_path)
            return out
        if isinstance(node, SequenceNode):
            return [self._convert(loader, n, (*path, i)) for i, n in enumerate(node.value)]
        return loader.construct_object(node, deep=True)


def _where(path: Path_) -> str:
    return ".".join(str(p) for p in path) or "the top level"


def _schema_diags(f: _File) -> None:
    for err in sorted(_validator().iter_errors(f.data), key=lambda e: list(map(str, e.path))):
        for line, message in _explain(f, err):
            f.diag(line, message)


def _explain(f: _File, err: ValidationError) -> Iterator[tuple[int, str]]:
    """Turn a jsonschema error into user-facing messages that point at the right line."""
    path: Path_ = tuple(err.absolute_path)
    where = _where(path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        for key in sorted(k for k in err.instance if k not in allowed):
            hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
            place = "at the top level" if not path else f"in {where}"
            yield f.line_of((*path, key)), f"unknown key {ascii(key)} {place}{hint}"
        return
    if "propertyNames" in err.relative_schema_path:
        key = err.instance
        line = f.line_of((*path, key)) if isinstance(key, str) else f.line_of(path)
        if path and path[-1] == "versions":
            yield (
                line,
                f"version key {ascii(key)} must be a version number (digits, no leading zero) "
                "or ENV@N / ENV/MODEL@N (the copy of another environment's version)",
            )
        elif path == ("models",):
            yield (
                line,
                (
                    f"model name {ascii(key)} is not allowed: "
                    "use ASCII letters, digits, '_', '.', '-'"
                ),
            )
        elif path and path[-1] == "stages":
            yield line, f"{ascii(key)} is not a stage (one of: {', '.join(STAGES)})"
        elif path == ("policy", "aliases"):
            yield (
                line,
                f"alias {ascii(key)} in policy.aliases has characters that are not allowed "
                "(use ASCII letters, digits, '_' and '-')",
            )
        else:
            yield line, f"key {ascii(key)} in {where}: {err.message}"
        return
    line = f.line_of(path)
    if err.validator == "required":
        yield line, f"{where}: {err.message.replace('is a required property', 'is required')}"
    elif err.validator == "const" and path == ("apiVersion",):
        yield line, f"apiVersion must be 'regops/v1', not {err.instance!r}"
    elif err.validator == "enum" and path and (path[-1] == "stage" or isinstance(path[-1], int)):
        yield line, f"{where}: {ascii(err.instance)} is not a stage (one of: {', '.join(STAGES)})"
    elif err.validator == "enum":
        choices = ", ".join(map(str, err.validator_value))
        yield line, f"{where}: {err.instance!r} is not one of: {choices}"
    elif err.validator == "pattern" and len(path) >= 2 and path[-2] == "aliases":
        yield (
            line,
            (
                f"alias {ascii(err.instance)} has characters that are not allowed "
                "(use ASCII letters, digits, '_' and '-')"
            ),
        )
    elif err.validator == "pattern" and len(path) >= 2 and path[-2] == "owners":
        yield (
            line,
            f"{where}: owner {ascii(err.instance)} is not a GitHub @user, @org/team "
            "or an e-mail address",
        )
    elif err.validator == "pattern" and len(path) >= 2 and path[-2] == "require_from":
        yield line, f"{where}: {ascii(err.instance)} is not an alias or stage name"
    elif err.validator == "type":
        got = f"{type(err.instance).__name__} {err.instance!r}"
        yield line, f"{where}: expected {err.validator_value}, got {got}"
    else:
        yield line, f"{where}: {err.message}"


def _build_policy(raw: Mapping[str, Any] | None, *, stages_supported: bool) -> Policy:
    raw = raw or {}
    aliases = {
        alias: AliasPolicy(
            require_from=tuple(ap["require_from"]) if "require_from" in ap else None,
            require_tags=MappingProxyType(dict(ap.get("require_tags", {}))),
            protected=bool(ap.get("protected", False)),
        )
        for alias, ap in (raw.get("aliases") or {}).items()
    }
    stages = {
        stage: StagePolicy(
            max_versions=sp.get("max_versions"),
            require_from=tuple(sp["require_from"]) if "require_from" in sp else None,
            require_tags=MappingProxyType(dict(sp.get("require_tags", {}))),
        )
        for stage, sp in (raw.get("stages") or {}).items()
    }
    return Policy(
        unlisted_versions=raw.get("unlisted_versions", "ignore"),
        drift=raw.get("drift", "correct"),
        stages=MappingProxyType(stages),
        aliases=MappingProxyType(aliases),
        use_stages=bool(raw.get("use_stages", True)) and stages_supported,
    )


def _policy_diags(f: _File, *, stages_supported: bool) -> None:
    """Checks of the policy block that the schema cannot express."""
    raw = f.data.get("policy") or {}
    if raw.get("use_stages") is True and not stages_supported:
        f.diag(
            f.line_of(("policy", "use_stages")),
            "policy.use_stages is true, but this registry has no stages (e.g. Unity Catalog)",
        )
    if raw.get("use_stages") is False and raw.get("stages"):
        f.diag(
            f.line_of(("policy", "stages")),
            "policy.stages has no effect with use_stages: false (alias-only); "
            "gate aliases under policy.aliases",
        )
    for alias in raw.get("aliases") or {}:
        if RESERVED_ALIAS.match(alias):
            f.diag(
                f.line_of(("policy", "aliases", alias)),
                f"alias {alias!r} is reserved by MLflow ('latest', 'v<digits>')",
            )


def _build_models(f: _File, *, stages_supported: bool) -> list[ModelSpec]:
    """Semantic checks the schema cannot express, then the typed models."""
    _policy_diags(f, stages_supported=stages_supported)
    policy = _build_policy(f.data.get("policy"), stages_supported=stages_supported)
    models: list[ModelSpec] = []
    for name, raw in (f.data.get("models") or {}).items():
        versions: dict[str, VersionSpec] = {}
        seen_alias: dict[str, str] = {}
        for ver, spec in (raw.get("versions") or {}).items():
            spec = spec or {}
            vpath: Path_ = ("models", name, "versions", ver)
            if "stage" in spec and not stages_supported:
                f.diag(
                    f.line_of((*vpath, "stage")),
                    f"model {name} version {ver}: this registry has no stages "
                    "(e.g. Unity Catalog); use aliases only",
                )
            elif "stage" in spec and not policy.use_stages:
                f.diag(
                    f.line_of((*vpath, "stage")),
                    f"model {name} version {ver}: stage is not allowed with "
                    "policy.use_stages: false (alias-only); use aliases",
                )
            for i, alias in enumerate(spec.get("aliases", [])):
                line = f.line_of((*vpath, "aliases", i))
                if RESERVED_ALIAS.match(alias):
                    f.diag(line, f"alias {alias!r} is reserved by MLflow ('latest', 'v<digits>')")
                elif alias in seen_alias:
                    f.diag(
                        line,
                        f"alias {alias!r} is on two versions of {name} "
                        f"({seen_alias[alias]} and {ver}); an alias names one version",
                    )
                else:
                    seen_alias[alias] = ver
            versions[ver] = VersionSpec(
                version=ver,
                stage=spec.get("stage"),
                aliases=tuple(spec.get("aliases", [])),
                run_id=spec.get("run_id"),
                line=f.line_of(vpath),
            )
        for stage, sp in policy.stages.items():
            holders = [v.version for v in versions.values() if v.stage == stage]
            if sp.max_versions is not None and len(holders) > sp.max_versions:
                f.diag(
                    f.line_of(("models", name)),
                    f"model {name} has {len(holders)} versions in {stage} "
                    f"({', '.join(holders)}); policy allows at most {sp.max_versions}",
                )
        models.append(
            ModelSpec(
                name=name,
                versions=MappingProxyType(versions),
                policy=policy,
                description=raw.get("description"),
                suspend=bool(raw.get("suspend", False)),
                owners=tuple(raw.get("owners", [])),
                file=f.name,
                line=f.line_of(("models", name)),
            )
        )
    return models


def load_state(
    state_dir: Path,
    *,
    stages_supported: bool = True,
    overrides: Mapping[Path, str] | None = None,
) -> DesiredState:
    """Load, validate and merge every state file of `state_dir`.

    `overrides` replaces the text of some files (or adds files): the state
    editing commands validate an edit this way before writing it.
    Raises StateError listing every problem found.
    """
    overrides = dict(overrides or {})
    if not state_dir.is_dir():
        raise StateError([Diagnostic(str(state_dir), 0, "state directory not found")])
    paths = sorted(set(state_files(state_dir)) | {p for p in overrides})
    diags: list[Diagnostic] = []
    digest = hashlib.sha256()
    models: dict[str, ModelSpec] = {}
    for path in paths:
        name = display_path(path)
        if path in overrides:
            raw = overrides[path].encode("utf-8")
        else:
            # Read at most one byte past the limit: st_size lies for /proc files and the
            # like (a symlinked /proc/self/pagemap reports 0 and never ends).
            try:
                with path.open("rb") as fh:
                    raw = fh.read(MAX_FILE_BYTES + 1)
            except OSError as exc:
                diags.append(Diagnostic(name, 1, f"cannot read the file: {exc.strerror or exc}"))
                continue
            if len(raw) > MAX_FILE_BYTES:
                diags.append(Diagnostic(name, 1, f"file is larger than {MAX_FILE_BYTES} bytes"))
                continue
        digest.update(name.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            diags.append(Diagnostic(name, 1, f"not UTF-8 text: {exc.reason}"))
            continue
        f = _File(name, text)
        if f.parsed and not isinstance(f.data, dict):
            f.diag(1, "expected a mapping with apiVersion and models")
        elif f.parsed:
            _schema_diags(f)
        if f.parsed and not f.diags:
            for model in _build_models(f, stages_supported=stages_supported):
                if model.name in models:
                    first = models[model.name]
                    f.diag(
                        model.line,
                        f"model {model.name} is also declared in {first.file}:{first.line}; "
                        "declare each model in one file",
                    )
                else:
                    models[model.name] = model
        diags.extend(f.diags)
    if diags:
        raise StateError(diags)
    return DesiredState(
        models=MappingProxyType(dict(sorted(models.items()))),
        files=tuple(display_path(p) for p in paths),
        digest=digest.hexdigest(),
    )
