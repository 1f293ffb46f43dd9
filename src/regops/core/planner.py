"""diff(desired, live) -> Plan. Pure: no I/O, no mlflow, deterministic order.

Rules, per managed model:
- A listed version whose live stage differs from its declared stage gets a stage
  change; `unlisted_versions: archive` archives versions the file does not list.
- Aliases: a declared alias missing live is set, on another version it moves (one
  call); a live alias declared nowhere is deleted (on unlisted versions only under
  `unlisted_versions: archive`).
- Drift: regops records on each model what it last applied (`regops.applied`). A
  live value that differs from that record was changed outside git. When git
  still wants the recorded value the change is drift-only and `policy.drift`
  decides: correct (apply), warn (show, do not apply) or ignore (drop).
- Gates (`require_from`, `require_tags`, `max_versions`) are evaluated on every
  stage change; a failed gate blocks the change and, with it, the whole plan.
  Restoring a drifted value skips `require_from`, and so does returning a version
  to a stage regops put it in before (`regops.held`): neither is a new promotion,
  and the second is what `git revert` of a promotion needs.
- Alias gates (`policy.aliases.<alias>`: `require_from`, `require_tags`) are
  evaluated on every alias set or move, with the same verdicts and the same
  blocking (alias_gates.py); removing a `protected` alias is an error.
- Metric gates (`require_metrics` under an alias's or a stage's policy) judge the
  numbers of the version's source run, and of the incumbent's (metric_gates.py), on
  every alias set or move and every stage change into a gated stage.
- Rules (`policy.rules`, CEL) judge every change that gives a version a stage or an
  alias (rules.py): a failed hard rule, or soft rule not overridden, blocks it.
- Freeze windows (`policy.freeze`) covering the time the plan is made block every
  change but, with `allow_rollback`, those that only undo or take away (freeze.py). With
  `use_stages: false` (always on registries without stages) no stage change is
  ever planned.
- A version whose MLflow status is not READY (still registering, or failed) is never
  promoted: a stage change into Staging/Production or an alias pointed at it is blocked
  by the `ready` gate.
- Lost stamps: a listed version that already holds what git wants, whose live state
  differs from the model's record and whose audit stamp does not show that state, had
  a change land while its stamp was lost (a cut connection): the plan lists it in
  `restamps` and reconcile writes the stamp.
- Protected aliases: one held live by a version no state file lists, and declared on no
  version, is left alone (`unlisted_versions: ignore`) but named in the plan's warnings.
- Copies planned against a snapshot (`plan --live`, `diff_snapshot`): the snapshot
  holds no other environment, so a copy key (`dev@7`) not yet made here is a BLOCKED
  copy whose `source` verdict says why (and so is each change that needs the copy);
  one already made (found by its lineage) is planned as the version it became.
- Order: versions enter Production/Staging first, aliases move next, versions
  leave to None/Archived last, so a stage is never left empty mid-reconcile.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from types import MappingProxyType

from regops.core.alias_gates import gate_alias_change, protected_removals, protected_unlisted
from regops.core.freeze import epoch, gate_freeze
from regops.core.live import READY, AppliedRecord, LiveModel, LiveState, LiveVersion
from regops.core.metric_gates import gate_metrics
from regops.core.plan import Action, Change, ChangeKind, GateVerdict, Plan
from regops.core.promotion import find_copy, parse_key
from regops.core.rules import RuleContext, gate_rules
from regops.core.state import DesiredState, ModelSpec, VersionSpec, version_key

STAGE_RANK = {"Production": 0, "Staging": 1, "None": 2, "Archived": 3}
MAX_RECORD_CHARS = 5000  # MLflow's limit on a registered-model tag value


def diff(
    desired: DesiredState,
    live: LiveState,
    *,
    only: Collection[str] | None = None,
    registry: str = "",
    created_at: str = "",
    now: float | None = None,
    rules: RuleContext | None = None,
) -> Plan:
    """Diff the desired state against the live registry. `only` limits it to some models.

    `now` (epoch seconds; default: `created_at`) is when freeze windows and rules are
    judged; `rules` what the rules see besides the registry (env, actor, overrides)."""
    ctx = rules or RuleContext()
    when = now if now is not None else epoch(created_at)
    names = [n for n in desired.models if only is None or n in only]
    changes: list[Change] = []
    errors: list[str] = []
    records: dict[str, str] = {}
    suspended: list[str] = []
    restamps: list[tuple[str, str]] = []
    notes: list[str] = []
    for name in sorted(names):
        spec = desired.models[name]
        lm = live.models.get(name)
        if lm is None:
            errors.append(
                f"{spec.file}:{spec.line}: model {name} is not in the registry "
                "(regops governs versions that training registered; it does not create models)"
            )
            continue
        problems = _check_versions(spec, lm)
        if problems:
            errors.extend(problems)
            continue
        notes.extend(protected_unlisted(spec, lm))
        model_changes = _require_ready(
            _plan_model(spec, lm, live.has_stages and spec.policy.use_stages), lm
        )
        model_changes = gate_metrics(model_changes, spec, lm, live.run_metrics)
        model_changes = gate_rules(
            model_changes, spec, lm, live.run_metrics, ctx, when, live.has_stages
        )
        model_changes = gate_freeze(model_changes, spec, lm, when)
        removals = protected_removals(spec, model_changes)
        if removals:
            errors.extend(removals)
            continue
        if spec.suspend:
            suspended.append(name)
            model_changes = [_with(c, action=Action.SUSPENDED) for c in model_changes]
        else:
            record = _record(spec, lm)
            current = lm.applied()
            if record is not None and (current is None or current.dump() != record):
                records[name] = record
            restamps.extend(_lost_stamps(spec, lm, current, model_changes, live.has_stages))
        changes.extend(model_changes)
    return Plan(
        changes=tuple(changes),
        models=tuple(sorted(names)),
        live_fingerprint=live.fingerprint(names),
        state_digest=desired.digest,
        errors=tuple(errors),
        records=MappingProxyType(records),
        registry=registry,
        state_files=desired.files,
        created_at=created_at,
        suspended=tuple(suspended),
        restamps=tuple(restamps),
        warnings=tuple(w for w in live.warnings if any(f"model {n!r}" in w for n in names))
        + tuple(notes),
    )


def diff_snapshot(
    desired: DesiredState,
    live: LiveState,
    *,
    env: str | None,
    only: Collection[str] | None = None,
    registry: str = "",
    created_at: str = "",
    rules: RuleContext | None = None,
) -> Plan:
    """`plan` against a snapshot of this environment alone (`plan --live`), for a state
    that copies versions from other environments (`dev@7` keys).

    The snapshot holds no other environment: a copy already made here (found by its
    lineage) is planned as the version it became; every other one is a BLOCKED COPY
    change whose `source` verdict says why, and so is each change that needs it (its
    stage, an alias pointed at it), in place of gates that could not be judged.
    """
    names = [n for n in desired.models if only is None or n in only]
    models = dict(desired.models)
    live_models = dict(live.models)
    unread: dict[tuple[str, str], str] = {}  # (model, key) -> why
    copies: dict[str, list[Change]] = {}
    for name in names:
        spec, lm = desired.models[name], live.models.get(name)
        versions: dict[str, VersionSpec] = {}
        placeholders: dict[str, LiveVersion] = {}
        for key, vs in spec.versions.items():
            ref = parse_key(key, name)
            found = find_copy(lm, ref) if ref is not None else None
            if ref is None or (found is not None and found in spec.versions):
                versions[key] = vs  # (a copy listed twice is reported by the real plan)
                continue
            if found is not None:
                versions[found] = replace(vs, version=found, run_id=None)
                continue
            versions[key] = replace(vs, run_id=None)
            placeholders[key] = LiveVersion(version=key, stage="None", origin=ref.describe())
            unread[(name, key)] = (
                f"{ref.describe()} cannot be read from a snapshot: --live holds "
                f"{env or 'this environment'}'s registry only, not {ref.env}'s; the copy, "
                "the source's evidence and the gates are checked when the plan reads both "
                f"registries (regops plan --env {env or 'NAME'})"
            )
            copies.setdefault(name, []).append(
                Change(
                    name,
                    key,
                    ChangeKind.COPY,
                    before=ref.ref,
                    after=env,
                    action=Action.SUSPENDED if spec.suspend else Action.BLOCKED,
                )
            )
        models[name] = replace(spec, versions=MappingProxyType(versions))
        if placeholders:
            base = lm or LiveModel(name=name, versions=MappingProxyType({}))
            live_models[name] = replace(
                base, versions=MappingProxyType({**base.versions, **placeholders})
            )
    p = diff(
        replace(desired, models=MappingProxyType(models)),
        replace(live, models=MappingProxyType(live_models)),
        only=only,
        registry=registry,
        created_at=created_at,
        rules=rules,
    )

    def unread_by(c: Change) -> str | None:
        targets = (
            (c.version, c.after)
            if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE)
            else (c.version,)
        )
        keys = [(c.model, t) for t in targets if t is not None]
        return next((unread[k] for k in keys if k in unread), None)

    changes: list[Change] = []
    for name in sorted(names):
        for c in copies.get(name, []):
            why = unread[(name, c.version or "")]
            changes.append(_with(c, gates=(GateVerdict("source", False, why),)))
        for c in p.changes:
            if c.model != name:
                continue
            why_ = unread_by(c)
            if why_ is not None and c.action != Action.SUSPENDED:  # gates it had were guesses
                c = _with(c, action=Action.BLOCKED, gates=(GateVerdict("source", False, why_),))
            changes.append(c)
    return replace(p, changes=tuple(changes), live_fingerprint=live.fingerprint(p.models))


def _require_ready(changes: list[Change], lm: LiveModel) -> list[Change]:
    """Block every promotion of a version MLflow has not finished registering."""
    out = []
    for c in changes:
        promotes = c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE) or (
            c.kind == ChangeKind.STAGE and c.after in ("Staging", "Production")
        )
        target = c.after if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE) else c.version
        lv = lm.versions.get(target or "")
        if (
            promotes
            and lv is not None
            and lv.status != READY
            and c.action in (Action.APPLY, Action.WARN)
        ):
            gate = GateVerdict(
                "ready", False, f"version {target} is {lv.status}, not READY: it cannot serve"
            )
            c = _with(c, gates=(*c.gates, gate), action=Action.BLOCKED)
        out.append(c)
    return out


def _lost_stamps(
    spec: ModelSpec,
    lm: LiveModel,
    applied: AppliedRecord | None,
    changes: list[Change],
    has_stages: bool,
) -> list[tuple[str, str]]:
    """Listed versions that reached git's state since the record without a stamp saying so."""
    if applied is None:
        return []  # never reconciled (an adopted registry): nothing regops changed to stamp
    touched = {c.version for c in changes}
    out = []
    for v, vs in sorted(spec.versions.items(), key=lambda kv: version_key(kv[0])):
        lv = lm.versions.get(v)
        if lv is None or v in touched:
            continue
        aliases = lm.aliases_of(v)
        stage_managed = has_stages and vs.stage is not None
        if (stage_managed and lv.stage != vs.stage) or tuple(sorted(vs.aliases)) != aliases:
            continue  # not (yet) where git wants it
        rec_stage, rec_aliases = applied.versions.get(v, ("None", ()))
        moved = (stage_managed and (rec_stage or "None") != lv.stage) or tuple(
            sorted(rec_aliases)
        ) != aliases
        stamp = lv.stamp()
        shown = (
            stamp is not None
            and stamp.aliases == aliases
            and stamp.stage == (lv.stage if has_stages else None)
        )
        if moved and not shown:
            out.append((spec.name, v))
    return out


def _with(change: Change, **kw: object) -> Change:
    return replace(change, **kw)  # type: ignore[arg-type]


def _check_versions(spec: ModelSpec, lm: LiveModel) -> list[str]:
    problems = []
    latest = max(lm.versions, key=version_key, default=None)
    for ver, vs in spec.versions.items():
        lv = lm.versions.get(ver)
        where = f"{spec.file}:{vs.line}"
        if lv is None:
            have = f"latest is {latest}" if latest else "it has no versions"
            problems.append(f"{where}: {spec.name} version {ver} is not in the registry ({have})")
        elif vs.run_id is not None and vs.run_id != lv.run_id:
            problems.append(
                f"{where}: {spec.name} version {ver} has run_id {lv.run_id} in the registry, "
                f"not {vs.run_id} (was the registry recreated?)"
            )
    return problems


def _final_stages(spec: ModelSpec, lm: LiveModel) -> dict[str, str]:
    """Each live version's stage once this plan is applied."""
    final = {}
    for ver, lv in lm.versions.items():
        vs = spec.versions.get(ver)
        if vs is not None and vs.stage is not None:
            final[ver] = vs.stage
        elif vs is None and spec.policy.unlisted_versions == "archive":
            final[ver] = "Archived"
        else:
            final[ver] = lv.stage
    return final


def _plan_model(spec: ModelSpec, lm: LiveModel, has_stages: bool) -> list[Change]:
    applied = lm.applied()
    out: list[Change] = []
    if has_stages:
        final = _final_stages(spec, lm)
        for ver in sorted(lm.versions, key=version_key):
            cur: str = lm.versions[ver].stage
            target: str = final[ver]
            if cur == target:
                continue
            reason = "state" if ver in spec.versions else "unlisted"
            recorded = applied.stage_of(ver) if applied else None
            change = _stage_change(spec, lm, ver, cur, target, recorded, final, reason)
            if change is not None:
                out.append(change)

    declared = spec.alias_owner()
    for alias in sorted(declared):
        owner, holder = declared[alias], lm.aliases.get(alias)
        if holder != owner:
            kind = ChangeKind.ALIAS_MOVE if holder is not None else ChangeKind.ALIAS_SET
            change = _drift_checked(
                Change(spec.name, owner, kind, before=holder, after=owner, alias=alias),
                spec,
                applied,
                owner,
                holder,
                alias,
            )
            if change is not None:
                out.append(gate_alias_change(change, spec, lm))
    for alias, holder_ in sorted(lm.aliases.items()):
        if alias in declared:
            continue
        if holder_ in spec.versions or spec.policy.unlisted_versions == "archive":
            change = _drift_checked(
                Change(
                    spec.name,
                    holder_,
                    ChangeKind.ALIAS_DELETE,
                    before=holder_,
                    after=None,
                    alias=alias,
                ),
                spec,
                applied,
                None,
                holder_,
                alias,
            )
            if change is not None:
                out.append(change)

    if spec.description is not None and spec.description != (lm.description or ""):
        out.append(
            Change(
                spec.name,
                None,
                ChangeKind.DESCRIPTION,
                before=lm.description,
                after=spec.description,
            )
        )
    return sorted(out, key=_order)


def _drift_checked(
    change: Change,
    spec: ModelSpec,
    applied: AppliedRecord | None,
    wanted: str | None,
    live_holder: str | None,
    alias: str,
) -> Change | None:
    """Mark an alias change as drift when the live holder is not what regops last applied."""
    if applied is None:
        return change
    recorded = applied.holder_of(alias)
    if live_holder == recorded:
        return change
    return _drift_policy(change, spec, drift_only=wanted == recorded)


def _drift_policy(change: Change, spec: ModelSpec, *, drift_only: bool) -> Change | None:
    if not drift_only:
        return _with(change, drift=True)  # git moved too: apply what git says
    mode = spec.policy.drift
    if mode == "ignore":
        return None
    return _with(
        change, drift=True, reason="drift", action=Action.WARN if mode == "warn" else Action.APPLY
    )


def _stage_change(
    spec: ModelSpec,
    lm: LiveModel,
    ver: str,
    cur: str,
    target: str,
    recorded: str | None,
    final: dict[str, str],
    reason: str,
) -> Change | None:
    change: Change | None = Change(
        spec.name, ver, ChangeKind.STAGE, before=cur, after=target, reason=reason
    )
    drift_only = False
    if recorded is not None and cur != recorded:
        drift_only = target == recorded
        change = _drift_policy(change, spec, drift_only=drift_only)  # type: ignore[arg-type]
        if change is None:
            return None
    assert change is not None
    gates = _gates(spec, lm, ver, cur, target, final, skip_require_from=drift_only)
    action = change.action
    if any(not g.passed for g in gates) and action == Action.APPLY:
        action = Action.BLOCKED
    return _with(change, gates=gates, action=action)


def _gates(
    spec: ModelSpec,
    lm: LiveModel,
    ver: str,
    cur: str,
    target: str,
    final: dict[str, str],
    *,
    skip_require_from: bool,
) -> tuple[GateVerdict, ...]:
    sp = spec.policy.for_stage(target)
    verdicts = []
    if sp.require_from is not None and not skip_require_from:
        allowed = ", ".join(sp.require_from)
        if cur in sp.require_from:
            verdicts.append(
                GateVerdict("require_from", True, f"live stage {cur} may enter {target}")
            )
        elif target in lm.versions[ver].held():
            # It passed this gate once already: returning to the stage is a rollback.
            detail = f"version {ver} held {target} before (a rollback)"
            verdicts.append(GateVerdict("require_from", True, detail))
        elif lm.versions[ver].origin_stage in sp.require_from:
            # A copy from another environment: the source's stage there is the evidence.
            lv = lm.versions[ver]
            detail = f"copy of {lv.origin}, which is in {lv.origin_stage} there"
            verdicts.append(GateVerdict("require_from", True, detail))
        else:
            detail = f"live stage is {cur}; {target} requires one of: {allowed}"
            verdicts.append(GateVerdict("require_from", False, detail))
    tags = lm.versions[ver].tags
    for key, want in sorted(sp.require_tags.items()):
        have = tags.get(key)
        if have == want:
            verdicts.append(GateVerdict("require_tags", True, f"{key}={want}"))
        else:
            found = "missing" if have is None else f"{have!r}"
            verdicts.append(GateVerdict("require_tags", False, f"{key} is {found}; needs {want!r}"))
    if sp.max_versions is not None:
        holders = sorted((v for v, s in final.items() if s == target), key=version_key)
        ok = len(holders) <= sp.max_versions
        detail = (
            f"{len(holders)} version(s) in {target} after this plan "
            f"({', '.join(holders)}); at most {sp.max_versions}"
        )
        verdicts.append(GateVerdict("max_versions", ok, detail))
    return tuple(verdicts)


def _order(c: Change) -> tuple[int, int, str, int]:
    ver = version_key(c.version) if c.version else 0
    if c.kind == ChangeKind.STAGE:
        rank = STAGE_RANK.get(c.after or "None", 2)
        return (0 if rank <= 1 else 3, rank, "", ver)
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE):
        return (1, 0, c.alias or "", ver)
    if c.kind == ChangeKind.ALIAS_DELETE:
        return (2, 0, c.alias or "", ver)
    return (4, 0, "", 0)


def _record(spec: ModelSpec, lm: LiveModel) -> str | None:
    """The assignment to remember as applied; None when it cannot fit in a tag.

    Under `unlisted_versions: archive` the unlisted versions are part of it (as
    Archived), so a later out-of-band un-archiving is recognised as drift.
    """
    entries: dict[str, tuple[str | None, tuple[str, ...]]] = {
        v: (vs.stage, tuple(sorted(vs.aliases))) for v, vs in spec.versions.items()
    }
    if spec.policy.unlisted_versions == "archive" and spec.policy.use_stages and lm.versions:
        for v in lm.versions:
            entries.setdefault(v, ("Archived", ()))
    raw = AppliedRecord(MappingProxyType(entries)).dump()
    if len(raw) <= MAX_RECORD_CHARS:
        return raw
    slim = {v: e for v, e in entries.items() if e[1] or e[0] not in (None, "None")}
    raw = AppliedRecord(MappingProxyType(slim)).dump()
    return raw if len(raw) <= MAX_RECORD_CHARS else None
