"""Versions declared by where they come from: `dev@7` is "the copy of dev's version 7". Pure.

In an environment's state a version key `ENV@N` (or `ENV/MODEL@N` for another model
name) names a version of another environment. `resolve()` turns such keys into what
the planner understands:

- a copy already in the target registry is found by its lineage tag
  (`regops.copied_from`, written in the same call that creates the version, so a
  version never exists without it) and the key becomes that version's number;
- a key with no copy yet becomes a placeholder version carrying the source's evidence
  tags (so gates are evaluated on the source's evidence), and a COPY change that
  reconcile runs before the placeholder's stage and alias changes.

A version copied from a version that holds a stage there may enter a stage whose
`require_from` lists it: the gate reads the source's stage (`origin_stage`).
No I/O here: the caller reads the registries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from regops.core import jsonio
from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.live import AUDIT_PREFIX, AppliedRecord, LiveModel, LiveState, LiveVersion
from regops.core.plan import Action, Change, ChangeKind, Plan
from regops.core.state import DesiredState, ModelSpec, VersionSpec, version_key
from regops.errors import JsonInputError

COPY_KEY = re.compile(
    r"^(?P<env>[A-Za-z][A-Za-z0-9_-]*)(?:/(?P<model>[^@]+))?@(?P<version>[0-9]+)$"
)
# Tags that describe where a version lives, not what it is: never copied.
NOT_COPIED_PREFIXES = (AUDIT_PREFIX, "mlflow.")


@dataclass(frozen=True)
class CopyRef:
    """A version of another environment: env, model, version."""

    env: str
    model: str
    version: str

    @property
    def ref(self) -> str:
        """`dev/Model@7`: the full form, whatever the state file abbreviated."""
        return f"{self.env}/{self.model}@{self.version}"

    def describe(self) -> str:
        return f"{self.env} {self.model} v{self.version}"


def parse_key(key: str, model: str) -> CopyRef | None:
    """`dev@7` or `dev/Other@7` in model `model`'s versions; None for a plain number."""
    m = COPY_KEY.match(key)
    if m is None:
        return None
    return CopyRef(m["env"], m["model"] or model, m["version"])


def parse_ref(ref: str) -> CopyRef:
    """The inverse of CopyRef.ref."""
    parsed = parse_key(ref, "")
    if parsed is None or not parsed.model:
        raise ValueError(f"not a copy reference: {ref!r}")
    return parsed


def _is_copy_of(lineage: Lineage | None, ref: CopyRef) -> bool:
    if lineage is None:
        return False
    return (lineage.env, lineage.model, lineage.version) == (ref.env, ref.model, ref.version)


def lineage_of(version: LiveVersion) -> Lineage | None:
    return Lineage.parse(version.tags.get(LINEAGE_TAG))


def find_copy(lm: LiveModel | None, ref: CopyRef) -> str | None:
    """The target version that is the copy of `ref` (the oldest, should there be two)."""
    if lm is None:
        return None
    found = [v for v, lv in lm.versions.items() if _is_copy_of(lineage_of(lv), ref)]
    return min(found, key=version_key) if found else None


def copy_in(lm: LiveModel, key: str) -> LiveVersion | None:
    """The version of `lm` that a state key such as `dev@7` names, once copied."""
    ref = parse_key(key, lm.name)
    found = find_copy(lm, ref) if ref is not None else None
    return lm.versions.get(found) if found is not None else None


def lineage_rows(live: LiveState, models: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Every copied version of `models` (all when None) with where it came from."""
    rows = []
    for name in sorted(live.models):
        if models is not None and name not in models:
            continue
        lm = live.models[name]
        for ver in sorted(lm.versions, key=version_key):
            lin = lineage_of(lm.versions[ver])
            if lin is not None:
                rows.append(
                    {
                        "model": name,
                        "version": ver,
                        "source_env": lin.env,
                        "source_model": lin.model,
                        "source_version": lin.version,
                        "source_run_id": lin.run_id,
                        "commit": lin.commit,
                    }
                )
    return rows


def copied_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The source's evidence, as it is copied onto the new version."""
    return {k: v for k, v in tags.items() if not k.startswith(NOT_COPIED_PREFIXES)}


def copy_refs(desired: DesiredState) -> dict[tuple[str, str], CopyRef]:
    """(model, key) -> reference, for every `ENV@N` key in the state."""
    out = {}
    for name, spec in desired.models.items():
        for key in spec.versions:
            ref = parse_key(key, name)
            if ref is not None:
                out[(name, key)] = ref
    return out


@dataclass(frozen=True)
class Resolution:
    desired: DesiredState  # copy keys of existing copies replaced by their version numbers
    live: LiveState  # plus one placeholder version per copy still to make
    copies: tuple[Change, ...]  # one COPY change per placeholder
    errors: tuple[str, ...]
    resolved: Mapping[tuple[str, str], str]  # (model, key) -> target version found by lineage


def resolve(
    desired: DesiredState,
    live: LiveState,
    sources: Mapping[tuple[str, str], LiveModel | None],
    *,
    env: str,
    known_envs: tuple[str, ...],
    source_runs: Mapping[str, Mapping[str, float]] | None = None,
) -> Resolution:
    """Replace copy keys by versions (found by lineage) or placeholders (to copy).

    `sources` maps (environment, model) to that model in the environment's registry
    (None when it is not there) for every reference in `desired`. `source_runs` (run id
    -> metrics, read in the source registries) are a copy's numbers for its gates: a
    placeholder's run is its source's, and a copy made already falls back on its
    source's run for a metric its own run (in this registry) lacks.
    """
    run_metrics: dict[str, Mapping[str, float]] = {}
    models: dict[str, ModelSpec] = dict(desired.models)
    live_models: dict[str, LiveModel] = dict(live.models)
    copies: list[Change] = []
    errors: list[str] = []
    resolved: dict[tuple[str, str], str] = {}
    for name, spec in desired.models.items():
        versions: dict[str, VersionSpec] = {}
        placeholders: dict[str, LiveVersion] = {}
        lm = live.models.get(name)
        seen: dict[CopyRef, str] = {}
        for key, vs in spec.versions.items():
            ref = parse_key(key, name)
            if ref is None:
                versions[key] = vs
                continue
            where = f"{spec.file}:{vs.line}: {key}"
            problem = _check_ref(ref, key, env, known_envs, seen, sources)
            seen.setdefault(ref, key)
            if problem:
                errors.append(f"{where}: {problem}")
                continue
            src = sources[(ref.env, ref.model)]
            assert src is not None
            source = src.versions[ref.version]
            if vs.run_id is not None and vs.run_id != source.run_id:
                errors.append(
                    f"{where}: {ref.describe()} has run_id {source.run_id} in {ref.env}, "
                    f"not {vs.run_id}"
                )
                continue
            origin = replace(vs, run_id=None)  # the copy's run is the target's own
            numbers = source_runs.get(source.run_id) if source_runs and source.run_id else None
            found = find_copy(lm, ref)
            if found is not None:
                if found in spec.versions:
                    errors.append(
                        f"{where}: is version {found} here, which the file also lists as "
                        f'"{found}"; keep one of the two keys'
                    )
                    continue
                resolved[(name, key)] = found
                versions[found] = replace(origin, version=found)
                assert lm is not None
                copy_run = lm.versions[found].run_id
                if copy_run and numbers is not None:
                    run_metrics[copy_run] = numbers
                placeholders[found] = replace(
                    lm.versions[found], origin_stage=source.stage, origin=ref.describe()
                )
                continue
            versions[key] = origin
            if source.run_id and numbers is not None:
                run_metrics[source.run_id] = numbers
            placeholders[key] = LiveVersion(
                version=key,
                stage="None",
                run_id=source.run_id,  # the copy's numbers are its source run's until made
                tags=MappingProxyType(copied_tags(source.tags)),
                origin_stage=source.stage,
                origin=ref.describe(),
            )
            copies.append(Change(name, key, ChangeKind.COPY, before=ref.ref, after=env))
        models[name] = replace(spec, versions=MappingProxyType(versions))
        if placeholders:
            base = lm or LiveModel(name=name, versions=MappingProxyType({}))
            live_models[name] = replace(
                base, versions=MappingProxyType({**base.versions, **placeholders})
            )
    if source_runs is not None:
        live = replace(
            live, run_metrics=MappingProxyType({**(live.run_metrics or {}), **run_metrics})
        )
    return Resolution(
        desired=replace(desired, models=MappingProxyType(models)),
        live=replace(live, models=MappingProxyType(live_models)),
        copies=tuple(copies),
        errors=tuple(errors),
        resolved=MappingProxyType(resolved),
    )


def _check_ref(
    ref: CopyRef,
    key: str,
    env: str,
    known_envs: tuple[str, ...],
    seen: Mapping[CopyRef, str],
    sources: Mapping[tuple[str, str], LiveModel | None],
) -> str | None:
    if ref.env == env:
        return f"a version of this environment ({env}) is declared by its number, not as {key}"
    if ref.env not in known_envs:
        return f"no environment {ref.env!r} in regops.yaml (declared: {', '.join(known_envs)})"
    if ref in seen:
        return f"names the same version as {seen[ref]}"
    src = sources.get((ref.env, ref.model))
    if src is None:
        return f"model {ref.model} is not in {ref.env}'s registry"
    if ref.version not in src.versions:
        latest = max(src.versions, key=version_key, default=None)
        have = f"latest is {latest}" if latest else "it has no versions"
        return f"{ref.model} version {ref.version} is not in {ref.env}'s registry ({have})"
    return None


def with_copies(plan: Plan, res: Resolution, real_live: LiveState) -> Plan:
    """The planner's plan for `res`, with each COPY change first among its model's changes.

    The fingerprint is the real registry's (placeholders are not in it), so a saved
    plan and the fresh-check before the first write compare like with like.
    """
    copies_of: dict[str, list[Change]] = {}
    for c in res.copies:
        copies_of.setdefault(c.model, []).append(c)
    changes: list[Change] = []
    for c in plan.changes:
        changes.extend(copies_of.pop(c.model, []))
        changes.append(c)
    for model in sorted(copies_of):  # a copy with no stage or alias change of its own
        changes.extend(copies_of[model])
    changes.sort(key=lambda c: plan.models.index(c.model) if c.model in plan.models else 0)
    errors = tuple(plan.errors) + res.errors
    if plan.suspended:
        suspended = set(plan.suspended)
        changes = [
            replace(c, action=Action.SUSPENDED)
            if c.kind == ChangeKind.COPY and c.model in suspended
            else c
            for c in changes
        ]
    return replace(
        plan,
        changes=tuple(changes),
        errors=errors,
        live_fingerprint=real_live.fingerprint(plan.models),
    )


def rename_record(record: str, made: Mapping[str, str]) -> str | None:
    """The applied-record with each copy's placeholder key (`dev@7`) renamed to the version
    the copy made (`made`: key -> version); None while a placeholder is left (a copy that
    was not made): such a record would read as foreign and end drift detection.

    The placeholders are renamed before the record is parsed: AppliedRecord.parse reads a
    registry tag, and refuses any key that is not a version number."""
    try:
        doc = jsonio.parse_tag(record)  # the planner's own dump, or a saved plan's
    except JsonInputError:
        return None
    if not isinstance(doc, dict):
        return None
    renamed = {made.get(k, k): entry for k, entry in doc.items()}
    parsed = AppliedRecord.parse(json.dumps(renamed, separators=(",", ":")))
    return parsed.dump() if parsed is not None else None
