"""Load and validate state files: YAML -> JSON Schema -> semantic checks -> DesiredState.

Validate once, at the edge: every problem in every file is collected, each as
`FILE:LINE: message`, and raised together as one StateError. Never imports mlflow
(`regops validate` needs no network and must start fast).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from regops.core.state import (
    ALIAS,
    MAXIMIZE,
    RESERVED_ALIAS,
    RUN_ID,
    STAGES,
    VERSION_KEY,
    AliasPolicy,
    DesiredState,
    FreezeWindow,
    MetricRequirement,
    ModelSpec,
    Policy,
    Rule,
    StagePolicy,
    VersionSpec,
    shown,
)
from regops.errors import Diagnostic, FileReadError, StateError
from regops.files import SCHEMAS, fileio, yamlio
from regops.files.yamlio import MAX_DEPTH, KeyPath

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "display_path",
    "load_state",
    "read_state_text",
    "read_state_texts",
    "state_files",
]

# A state file is hand-edited text; anything bigger is a mistake or an attack.
MAX_FILE_BYTES = 1 << 20
# A state file's name goes into CODEOWNERS, reports, messages and paths, none of which
# can escape all of: a leading `#` or `!`, `[ ]`, `*`, `?`, `\\`, whitespace, control
# characters, a leading `-` or `.`. The names allowed need no escaping anywhere.
NAME_CHARS = "ASCII letters, digits, '.', '_' and '-', starting with a letter or digit"
STATE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml")
PATH_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
MAX_NAME_CHARS = 255  # what most filesystems take (and `export` writes `<model>.yaml`)
MAX_MESSAGE_CHARS = 300
SCHEMA_FILE = SCHEMAS / "registry-state.schema.json"

Path_ = KeyPath
# The schema's `instant` pattern: an edge it takes that is no date (2026-13-45) is
# reported by the semantic pass, the others by the schema.
FREEZE_EDGE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:[0-9]{2}))?"
)


def _is_integer(_checker: Any, instance: Any) -> bool:
    """JSON Schema's `integer` without its `1.0 is an integer` rule: a count written as
    1.0 is a typo for YAML's float, and every reader after the loader wants an int."""
    return isinstance(instance, int) and not isinstance(instance, bool)


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    strict = validators.extend(Draft202012Validator, type_checker=checker)
    return strict(schema)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a state file's name (None when it can)."""
    if STATE_FILE_NAME.fullmatch(name) and len(name) <= MAX_NAME_CHARS:
        return None
    return (
        f"state file name {ascii(name)} is not allowed: use {NAME_CHARS} "
        f"(at most {MAX_NAME_CHARS} characters), "
        "ending in .yaml or .yml (the name goes into CODEOWNERS and reports unescaped)"
    )


def state_files(state_dir: Path) -> list[Path]:
    """The state files of a directory (every entry named *.yaml or *.yml, whatever it is:
    the loader refuses what it cannot read), in a stable order."""
    try:
        entries = list(state_dir.iterdir())
    except OSError as exc:
        raise StateError(
            [
                Diagnostic(
                    shown_path(state_dir), 0, f"cannot read the directory: {exc.strerror or exc}"
                )
            ]
        ) from exc
    return sorted(p for p in entries if p.suffix in (".yaml", ".yml"))


def display_path(path: Path) -> str:
    """`path` relative to the current directory where it lies under it; its own name is
    kept (a symlinked state file is named as the link, not as its target)."""
    try:
        where = path.parent.resolve() / path.name
        return str(where.relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def shown_path(path: Path) -> str:
    """display_path with anything but printable ASCII escaped (see core.state.shown)."""
    return shown(display_path(path))


def check_state_dir(state_dir: Path) -> Path:
    """The repository root the state directory's files must stay in; StateError when the
    directory is missing, not a directory, or a symlink leaving the repository."""
    name = shown_path(state_dir)
    root = fileio.repository_root(state_dir)
    why = fileio.symlink_problem(state_dir, root)
    if why:
        raise StateError([Diagnostic(name, 0, f"state directory refused: {why}")])
    if not state_dir.is_dir():
        if os.path.lexists(state_dir):
            raise StateError([Diagnostic(name, 0, "state directory is not a directory")])
        raise StateError([Diagnostic(name, 0, "state directory not found")])
    return root


def read_state_bytes(path: Path, root: Path) -> bytes:
    """The bytes of one state file, through every guard: its name, a symlink leaving the
    repository, anything but a regular file, the size cap. StateError (FILE:1) otherwise."""
    why = name_problem(path.name)
    if why is None:
        try:
            return fileio.read_guarded(path, root=root, max_bytes=MAX_FILE_BYTES)
        except FileReadError as exc:
            why = str(exc)
    raise StateError([Diagnostic(shown_path(path), 1, why)])


def decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise StateError(
            [Diagnostic(display_path(path), 1, f"not UTF-8 text: {exc.reason}")]
        ) from exc


def read_state_text(path: Path, root: Path) -> str:
    """One state file's text through every guard (see read_state_bytes), decoded."""
    return decode(path, read_state_bytes(path, root))


def read_state_texts(state_dir: Path) -> dict[Path, str]:
    """Every state file's text, each through the guards and parsed once by the one YAML
    reader (aliases, nesting, display characters refused), before any other parser (the
    editing commands' ruamel round trip) sees it. StateError with every problem."""
    root = check_state_dir(state_dir)
    texts: dict[Path, str] = {}
    diags: list[Diagnostic] = []
    for path in state_files(state_dir):
        try:
            text = read_state_text(path, root)
        except StateError as exc:
            diags.extend(exc.diagnostics)
            continue
        doc = yamlio.read(text)
        diags.extend(Diagnostic(display_path(path), line, msg) for line, msg in doc.problems)
        texts[path] = text
    if diags:
        raise StateError(diags)
    return texts


class _File:
    """One parsed file (through the one YAML reader, regops.files.yamlio) and its problems."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self.diags: list[Diagnostic] = []
        self.doc = yamlio.read(text)
        self.data: Any = self.doc.data
        self.parsed = self.doc.parsed
        self.lines = self.doc.lines
        for line, message in self.doc.problems:
            self.diag(line, message)

    def diag(self, line: int, message: str) -> None:
        if len(message) > MAX_MESSAGE_CHARS:  # messages quote values; a value may be 1 MiB
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters)"
        self.diags.append(Diagnostic(self.name, line, message))

    def line_of(self, path: Path_) -> int:
        return self.doc.line_of(path)

    def written(self, path: Path_, value: Any) -> str:
        """How a value was written, when YAML typed it into something else (`017` -> 15)."""
        text = self.doc.written.get(path)
        if text is None or text == str(value) or isinstance(value, str):
            return ""
        return f" (written {text!r})"


_where = yamlio.where


# A version entry of the usual shape, checked without jsonschema: at 20,000 versions the
# generic validator costs seconds. Accepts only what the schema accepts (no stricter
# check passes what it would refuse); everything else still goes through the schema.
_VERSION_FIELDS = frozenset({"stage", "aliases", "run_id"})


def _plain_version(key: Any, spec: Any) -> bool:
    if type(key) is not str or not VERSION_KEY.fullmatch(key) or type(spec) is not dict:
        return False
    if not _VERSION_FIELDS.issuperset(spec):
        return False
    stage = spec.get("stage", "None")
    if type(stage) is not str or stage not in STAGES:
        return False
    run_id = spec.get("run_id", "x")
    if type(run_id) is not str or not RUN_ID.fullmatch(run_id):
        return False
    aliases = spec.get("aliases", [])
    return type(aliases) is list and all(type(a) is str and ALIAS.fullmatch(a) for a in aliases)


def _freeze_as_text(data: Any) -> Any:
    """`data` with the YAML timestamps of policy.freeze (`from: 2026-12-20T00:00:00Z`,
    unquoted, reads as a datetime) written back as text, for the schema and the parser."""
    policy = data.get("policy") if isinstance(data, dict) else None
    windows = policy.get("freeze") if isinstance(policy, dict) else None
    if not isinstance(windows, list):
        return data
    out = []
    for w in windows:
        if isinstance(w, dict):
            w = {k: v.isoformat() if isinstance(v, (date, datetime)) else v for k, v in w.items()}
        out.append(w)
    return {**data, "policy": {**_dict(policy), "freeze": out}}


def instant(text: str) -> float | None:
    """Epoch seconds of a freeze window's edge (the schema's `instant`), None when it is
    not one: a date is midnight UTC; a time needs Z or an offset."""
    # Python 3.10's fromisoformat takes 3 or 6 digits of a second's fraction: pad them.
    iso = re.sub(r"\.([0-9]{1,6})", lambda m: "." + m.group(1).ljust(6, "0"), text)
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    if len(text) == len("2026-12-20"):
        when = when.replace(tzinfo=timezone.utc)  # noqa: UP017 (3.10)
    if when.tzinfo is None:
        return None
    return when.timestamp()


def utc_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def _for_schema(data: Any) -> Any:
    """`data` with the plain version entries (see _plain_version) left out."""
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return data
    slim = {}
    for name, model in models.items():
        versions = model.get("versions") if isinstance(model, dict) else None
        if isinstance(versions, dict):
            rest = {k: v for k, v in versions.items() if not _plain_version(k, v)}
            model = {**model, "versions": rest}
        slim[name] = model
    return {**data, "models": slim}


def _schema_diags(f: _File) -> None:
    errors = _validator().iter_errors(_for_schema(f.data))
    for err in sorted(errors, key=lambda e: list(map(str, e.path))):
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
        elif path and path[-1] == "require_metrics":
            yield (
                line,
                f"metric {ascii(key)} in {where} is not an MLflow metric key (ASCII letters, "
                "digits, '_', '-', '.', ' ', ':', '/'; at most 250)",
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
    elif err.validator == "pattern" and len(path) >= 3 and path[-3] == "freeze":
        yield (
            line,
            f"{where}: {err.instance!r} is not a UTC instant: write 2026-12-20T00:00:00Z, "
            "an explicit offset (+01:00) or a date (freeze windows are UTC; a time "
            "without Z or an offset is refused)",
        )
    elif err.validator == "pattern" and len(path) >= 2 and path[-2] == "require_from":
        yield line, f"{where}: {ascii(err.instance)} is not an alias or stage name"
    elif err.validator == "type":
        got = f"{type(err.instance).__name__} {err.instance!r}{f.written(path, err.instance)}"
        yield line, f"{where}: expected {err.validator_value}, got {got}"
    else:
        yield line, f"{where}: {err.message}"


def _build_metrics(raw: Any, at: Path_, f: _File | None) -> tuple[MetricRequirement, ...]:
    """`require_metrics` (already validated) as typed requirements, in the file's order."""
    out = []
    for metric, req in (raw or {}).items():
        req = req or {}
        out.append(
            MetricRequirement(
                metric=metric,
                goal=req.get("goal", MAXIMIZE),
                min=float(req["min"]) if "min" in req else None,
                max=float(req["max"]) if "max" in req else None,
                beats=req.get("beats"),
                by=float(req.get("by", 0)),
                line=f.line_of((*at, "require_metrics", metric)) if f is not None else 0,
            )
        )
    return tuple(out)


def _build_policy(
    raw: Mapping[str, Any] | None, *, stages_supported: bool, f: _File | None = None
) -> Policy:
    raw = raw or {}
    aliases = {
        alias: AliasPolicy(
            require_from=tuple(ap["require_from"]) if "require_from" in ap else None,
            require_tags=MappingProxyType(dict(ap.get("require_tags", {}))),
            protected=bool(ap.get("protected", False)),
            require_metrics=_build_metrics(
                ap.get("require_metrics"), ("policy", "aliases", alias), f
            ),
        )
        for alias, ap in (raw.get("aliases") or {}).items()
    }
    stages = {
        stage: StagePolicy(
            max_versions=sp.get("max_versions"),
            require_from=tuple(sp["require_from"]) if "require_from" in sp else None,
            require_tags=MappingProxyType(dict(sp.get("require_tags", {}))),
            require_metrics=_build_metrics(
                sp.get("require_metrics"), ("policy", "stages", stage), f
            ),
        )
        for stage, sp in (raw.get("stages") or {}).items()
    }
    windows = []
    for i, w in enumerate(raw.get("freeze") or []):
        start, end = instant(w["from"]), instant(w["to"])
        assert start is not None  # validated
        assert end is not None
        windows.append(
            FreezeWindow(
                start=start,
                end=end,
                reason=w["reason"],
                allow_rollback=bool(w.get("allow_rollback", False)),
                text=f"from {utc_text(start)} to {utc_text(end)}",
                line=f.line_of(("policy", "freeze", i)) if f is not None else 0,
            )
        )
    rules = tuple(
        Rule(
            name=r["name"],
            expr=r["expr"],
            level=r.get("level", "hard"),
            message=r.get("message", ""),
            line=f.line_of(("policy", "rules", i, "expr")) if f is not None else 0,
        )
        for i, r in enumerate(raw.get("rules") or [])
    )
    return Policy(
        unlisted_versions=raw.get("unlisted_versions", "ignore"),
        drift=raw.get("drift", "correct"),
        stages=MappingProxyType(stages),
        aliases=MappingProxyType(aliases),
        use_stages=bool(raw.get("use_stages", True)) and stages_supported,
        freeze=tuple(windows),
        rules=rules,
    )


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _limits(data: Any) -> dict[str, int]:
    """stage -> max_versions, for the well-typed limits of a file (semantic pass)."""
    stages = _dict(_dict(_dict(data).get("policy")).get("stages"))
    return {
        stage: sp["max_versions"]
        for stage, sp in stages.items()
        if isinstance(sp, dict) and _is_integer(None, sp.get("max_versions"))
    }


def _policy_diags(f: _File, *, stages_supported: bool) -> None:
    """Checks of the policy block that the schema cannot express."""
    raw = _dict(_dict(f.data).get("policy"))
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
    for alias in _dict(raw.get("aliases")):
        if RESERVED_ALIAS.fullmatch(alias):
            f.diag(
                f.line_of(("policy", "aliases", alias)),
                f"alias {alias!r} is reserved by MLflow ('latest', 'v<digits>')",
            )
    for kind in ("aliases", "stages"):
        for key, gate in _dict(raw.get(kind)).items():
            _metric_diags(f, ("policy", kind, key, "require_metrics"), _dict(gate))
    _rule_diags(f, raw.get("rules"))
    windows = raw.get("freeze")
    for i, w in enumerate(windows if isinstance(windows, list) else []):
        w = _dict(w)
        edges = {k: v for k in ("from", "to") if isinstance(v := w.get(k), str)}
        if len(edges) < 2:
            continue  # the schema says what is wrong
        start, end = instant(edges["from"]), instant(edges["to"])
        for key, at in (("from", start), ("to", end)):
            if at is None and FREEZE_EDGE.fullmatch(edges[key]):
                f.diag(
                    f.line_of(("policy", "freeze", i, key)),
                    f"policy.freeze[{i}].{key}: {edges[key]!r} is not a date or time",
                )
        if start is not None and end is not None and end <= start:
            f.diag(
                f.line_of(("policy", "freeze", i, "to")),
                f"policy.freeze[{i}]: to ({edges['to']}) must be after from ({edges['from']}): "
                "the window is empty",
            )


def _rule_diags(f: _File, rules: Any) -> None:
    """Each rule's CEL compiled (cel-python is imported only for a file that has rules):
    one that does not compile, or names an unknown variable, is an error at its line."""
    if not isinstance(rules, list) or not rules:
        return
    from regops.core import rules as cel

    seen: dict[str, int] = {}
    for i, r in enumerate(rules):
        r = _dict(r)
        name, expr = r.get("name"), r.get("expr")
        if isinstance(name, str):
            line = f.line_of(("policy", "rules", i, "name"))
            if name in seen:
                f.diag(line, f"policy.rules[{i}]: rule {name!r} is also rule {seen[name]}")
            seen.setdefault(name, i)
        if not isinstance(expr, str) or not expr:
            continue  # the schema says what is wrong
        try:
            why = cel.compile_problem(expr)
        except cel.RulesUnavailable as exc:
            f.diag(f.line_of(("policy", "rules")), str(exc))
            return
        if why is not None:
            f.diag(
                f.line_of(("policy", "rules", i, "expr")),
                f"policy.rules[{i}] ({shown(str(name))}): the expression {why}",
            )


def _metric_diags(f: _File, at: Path_, gate: dict[str, Any]) -> None:
    """`require_metrics` entries the schema accepts but that cannot be meant."""
    for metric, req in _dict(gate.get("require_metrics")).items():
        req = _dict(req)
        where = f"{_where(at)}.{metric}"
        for key in ("min", "max", "by"):
            value = req.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                f.diag(f.line_of((*at, metric, key)), f"{where}: {key} must be a finite number")
        lo, hi = req.get("min"), req.get("max")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and lo > hi:
            f.diag(
                f.line_of((*at, metric, "max")),
                f"{where}: min {lo} is above max {hi}: no value can pass",
            )
        if "by" in req and "beats" not in req:
            f.diag(
                f.line_of((*at, metric, "by")),
                f"{where}: by is the margin of beats; name the alias or stage to beat "
                "(beats: champion)",
            )


def _semantic_diags(f: _File, *, stages_supported: bool) -> None:
    """Checks the schema cannot express. Run even when the schema pass found problems
    (every problem at once), so they read the data defensively: a part with the wrong
    shape has its schema problem already and is skipped here."""
    _policy_diags(f, stages_supported=stages_supported)
    use_stages = _dict(_dict(f.data).get("policy")).get("use_stages") is not False
    limits = _limits(f.data)
    for name, raw in _dict(_dict(f.data).get("models")).items():
        seen_alias: dict[str, str] = {}
        holders: dict[str, list[str]] = {}
        for ver, spec in _dict(_dict(raw).get("versions")).items():
            spec = _dict(spec)
            vpath: Path_ = ("models", name, "versions", ver)
            if "stage" in spec and not stages_supported:
                f.diag(
                    f.line_of((*vpath, "stage")),
                    f"model {name} version {ver}: this registry has no stages "
                    "(e.g. Unity Catalog); use aliases only",
                )
            elif "stage" in spec and not use_stages:
                f.diag(
                    f.line_of((*vpath, "stage")),
                    f"model {name} version {ver}: stage is not allowed with "
                    "policy.use_stages: false (alias-only); use aliases",
                )
            if isinstance(spec.get("stage"), str):
                holders.setdefault(spec["stage"], []).append(ver)
            aliases = spec.get("aliases")
            for i, alias in enumerate(aliases if isinstance(aliases, list) else []):
                if not isinstance(alias, str):
                    continue
                line = f.line_of((*vpath, "aliases", i))
                if RESERVED_ALIAS.fullmatch(alias):
                    f.diag(line, f"alias {alias!r} is reserved by MLflow ('latest', 'v<digits>')")
                elif alias in seen_alias and seen_alias[alias] != ver:
                    f.diag(
                        line,
                        f"alias {alias!r} is on two versions of {name} "
                        f"({seen_alias[alias]} and {ver}); an alias names one version",
                    )
                else:
                    seen_alias.setdefault(alias, ver)
        for stage, limit in limits.items():
            held = holders.get(stage, [])
            if len(held) > limit:
                f.diag(
                    f.line_of(("models", name)),
                    f"model {name} has {len(held)} versions in {stage} "
                    f"({', '.join(held)}); policy allows at most {limit}",
                )


def _build_models(f: _File, policy: Policy) -> list[ModelSpec]:
    """The typed models of a file that passed every check."""
    models: list[ModelSpec] = []
    for name, raw in (f.data.get("models") or {}).items():
        versions: dict[str, VersionSpec] = {}
        for ver, spec in (raw.get("versions") or {}).items():
            spec = spec or {}
            versions[ver] = VersionSpec(
                version=ver,
                stage=spec.get("stage"),
                aliases=tuple(spec.get("aliases", [])),
                run_id=spec.get("run_id"),
                line=f.line_of(("models", name, "versions", ver)),
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
    Raises StateError listing every problem found, in every file: YAML, schema and
    semantic checks all run, so one `validate` shows them all.
    """
    overrides = dict(overrides or {})
    root = check_state_dir(state_dir)
    paths = sorted(set(state_files(state_dir)) | {p for p in overrides})
    diags: list[Diagnostic] = []
    digest = hashlib.sha256()
    models: dict[str, ModelSpec] = {}
    declared: dict[str, tuple[str, int]] = {}  # model -> (file, line) where first declared
    policies: dict[str, Policy] = {}
    for path in paths:
        name = display_path(path)
        try:
            if path in overrides:  # an edit's text: the name still has to be a state file's
                if why := name_problem(path.name):
                    raise StateError([Diagnostic(shown_path(path), 1, why)])
                raw = overrides[path].encode("utf-8")
            else:
                raw = read_state_bytes(path, root)
            digest.update(name.encode() + b"\0" + raw + b"\0")
            text = decode(path, raw)
        except StateError as exc:
            diags.extend(exc.diagnostics)
            continue
        f = _File(name, text)
        if f.parsed and not isinstance(f.data, dict):
            f.diag(1, "expected a mapping with apiVersion and models")
        elif f.parsed:
            f.data = _freeze_as_text(f.data)
            _schema_diags(f)
            _semantic_diags(f, stages_supported=stages_supported)
            for model in _dict(f.data.get("models")):
                line = f.line_of(("models", model))
                if model in declared:
                    first_file, first_line = declared[model]
                    f.diag(
                        line,
                        f"model {model} is also declared in {first_file}:{first_line}; "
                        "declare each model in one file",
                    )
                else:
                    declared[model] = (name, line)
        if f.parsed and not f.diags:
            policy = _build_policy(f.data.get("policy"), stages_supported=stages_supported, f=f)
            policies[name] = policy
            for spec in _build_models(f, policy):
                models[spec.name] = spec
        diags.extend(f.diags)
    if diags:
        raise StateError(diags)
    return DesiredState(
        models=MappingProxyType(dict(sorted(models.items()))),
        files=tuple(display_path(p) for p in paths),
        digest=digest.hexdigest(),
        policies=MappingProxyType(policies),
    )
