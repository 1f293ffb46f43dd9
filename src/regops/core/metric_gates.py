"""Metric gates: `require_metrics` under `policy.aliases.<A>` / `policy.stages.<S>`. Pure.

Each entry names a metric of the version's source run (the latest value MLflow keeps for
that key) and what it must satisfy:

- `min` / `max`: absolute bounds (inclusive).
- `beats: A` (an alias, or a stage when A is a stage name) with margin `by` (default 0):
  the version must beat the version that holds A live now in the same model by at least
  `by` in the direction of `goal` (maximize: candidate - incumbent >= by; minimize:
  incumbent - candidate >= by). A candidate exactly at the margin passes (compared to
  within MARGIN_TOLERANCE, so 0.805 beats 0.8 by 0.005 despite binary floating point).
  Nothing holds A: passes, "no incumbent". The version holds A itself: passes, not
  compared with itself. The incumbent's run lacks the metric: passes, nothing to beat.
  Of several versions in a stage, the highest-numbered is the incumbent.
- A rollback (a return to an alias or stage the version held under regops, as
  `require_from` recognises it) or the restoring of a drifted value skips `beats`: the
  incumbent is the version being rolled back from. `min`/`max` still apply.
- No source run, a run the tracking server does not have, or a run without the metric:
  the entry fails, saying which.

A failed entry blocks its change (and so the plan), like every other gate. The runs a
plan needs are named by `runs_to_read` (candidates of pending gated changes and their
incumbents), which the adapter reads in a few batched searches.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace

from regops.core.live import LiveModel, LiveState
from regops.core.plan import Action, Change, ChangeKind, GateVerdict, MetricCheck
from regops.core.state import MINIMIZE, STAGES, DesiredState, MetricRequirement, ModelSpec
from regops.core.state import version_key as _vkey

MARGIN_TOLERANCE = 1e-9  # relative: "exactly at the margin" survives float rounding
GATE = "require_metrics"

RunMetrics = Mapping[str, Mapping[str, float]]


def num(x: float | None) -> str:
    """A metric value as shown in a plan: up to 6 significant digits."""
    if x is None:
        return "-"
    return format(x, ".6g")


def _requirements(
    change: Change, spec: ModelSpec
) -> tuple[str, str, tuple[MetricRequirement, ...]]:
    """(candidate version, the alias or stage it enters, its require_metrics) of a change."""
    if change.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE) and change.alias:
        ap = spec.policy.aliases.get(change.alias)
        return change.after or "", change.alias, ap.require_metrics if ap else ()
    if change.kind == ChangeKind.STAGE and change.after:
        sp = spec.policy.stages.get(change.after)
        return change.version or "", change.after, sp.require_metrics if sp else ()
    return "", "", ()


def is_rollback(change: Change, lm: LiveModel, version: str) -> str | None:
    """Why `change` is not a new promotion (a rollback or a drift restore), or None."""
    lv = lm.versions.get(version)
    if lv is None:
        return None
    if change.reason == "drift":
        return "restores a value changed outside git"
    if change.kind == ChangeKind.STAGE and change.after in lv.held():
        return f"rollback: version {version} held {change.after} under regops before"
    if change.alias is not None and change.alias in lv.held_aliases():
        return f"rollback: version {version} held {change.alias} under regops before"
    return None


def incumbent(lm: LiveModel, beats: str, has_stages: bool = True) -> list[str]:
    """The versions holding `beats` live now (an alias; a stage when it names one)."""
    if beats in STAGES and has_stages:
        holders = [v for v, lv in lm.versions.items() if lv.stage == beats]
        return sorted(holders, key=_vkey)
    holder = lm.aliases.get(beats)
    return [holder] if holder is not None else []


def check(
    req: MetricRequirement,
    lm: LiveModel,
    version: str,
    runs: RunMetrics | None,
    *,
    rollback: str | None,
) -> MetricCheck:
    """The verdict of one `require_metrics` entry for `version`."""
    base = MetricCheck(
        req.metric,
        req.goal,
        False,
        "",
        beats=req.beats,
        min=req.min,
        max=req.max,
        by=req.by if req.beats is not None else None,
    )
    cand, why = _value(lm, version, req.metric, runs)
    if cand is None:
        return replace(base, detail=why)
    base = replace(base, candidate=cand)
    parts: list[str] = []
    ok = True
    if req.min is not None:
        if cand < req.min:
            ok = False
            parts.append(f"{num(cand)} is below min {num(req.min)}")
        else:
            parts.append(f"{num(cand)} >= min {num(req.min)}")
    if req.max is not None:
        if cand > req.max:
            ok = False
            parts.append(f"{num(cand)} is above max {num(req.max)}")
        else:
            parts.append(f"{num(cand)} <= max {num(req.max)}")
    if req.beats is not None:
        holders = incumbent(lm, req.beats)
        inc_ver = holders[-1] if holders else None
        if rollback is not None:
            parts.append(f"{rollback}: beats {req.beats} skipped")
        elif inc_ver is None:
            parts.append(f"no incumbent: nothing holds {req.beats}, beats passes")
        elif version in holders:
            parts.append(f"version {version} holds {req.beats}: not compared with itself")
        else:
            inc, inc_why = _value(lm, inc_ver, req.metric, runs)
            base = replace(base, incumbent_version=inc_ver, incumbent=inc)
            if inc is None:
                parts.append(
                    f"incumbent version {inc_ver} ({req.beats}): {inc_why}; nothing to beat"
                )
            else:
                gain = cand - inc if req.goal != MINIMIZE else inc - cand
                beat = gain >= req.by or math.isclose(
                    gain, req.by, rel_tol=MARGIN_TOLERANCE, abs_tol=MARGIN_TOLERANCE
                )
                word = "better" if gain >= 0 else "worse"
                verdict = "needs" if not beat else "margin"
                parts.append(
                    f"{num(abs(gain))} {word} than {req.beats} (version {inc_ver}: "
                    f"{num(inc)}); {verdict} {num(req.by)}"
                )
                ok = ok and beat
    if not parts:
        parts.append(f"{num(cand)} logged")
    return replace(base, passed=ok, detail="; ".join(parts))


def _value(
    lm: LiveModel, version: str, metric: str, runs: RunMetrics | None
) -> tuple[float | None, str]:
    """The version's value of `metric`, or None and why not."""
    lv = lm.versions.get(version)
    if runs is None:
        return None, (
            "run metrics were not read (a snapshot holds no runs): plan against the "
            "registry to judge require_metrics"
        )
    if lv is None or not lv.run_id:
        return None, f"version {version} has no source run: {metric} cannot be read"
    run = runs.get(lv.run_id)
    if run is None:
        return None, f"run {lv.run_id} of version {version} was not found on the tracking server"
    value = run.get(metric)
    if value is None:
        return None, f"run {lv.run_id} of version {version} has no metric {metric}"
    if not math.isfinite(value):
        return None, f"run {lv.run_id} of version {version} logged {metric} as {value}"
    return value, ""


def gate_metrics(
    changes: Iterable[Change], spec: ModelSpec, lm: LiveModel, runs: RunMetrics | None
) -> list[Change]:
    """`changes` with the verdicts of their `require_metrics`; BLOCKED when one fails."""
    out = []
    for c in changes:
        version, target, reqs = _requirements(c, spec)
        if not reqs or version not in lm.versions:
            out.append(c)
            continue
        rollback = is_rollback(c, lm, version)
        checks = tuple(check(r, lm, version, runs, rollback=rollback) for r in reqs)
        verdicts = tuple(
            GateVerdict(GATE, m.passed, f"{m.metric} ({m.goal}) for {target}: {m.detail}")
            for m in checks
        )
        action = c.action
        if any(not m.passed for m in checks) and action == Action.APPLY:
            action = Action.BLOCKED
        out.append(replace(c, gates=(*c.gates, *verdicts), metrics=checks, action=action))
    return out


def runs_to_read(
    desired: DesiredState, live: LiveState, names: Collection[str] | None = None
) -> tuple[frozenset[str], frozenset[str]]:
    """(run ids, metric keys) the gates of a plan of `names` will read: the runs of the
    versions a gated alias or stage moves to, and of those alias's or stage's incumbents.
    Empty when no pending change is gated by `require_metrics` (no read at all)."""
    run_ids: set[str] = set()
    keys: set[str] = set()
    for name, spec in desired.models.items():
        if (names is not None and name not in names) or not spec.policy.metric_gated():
            continue
        lm = live.models.get(name)
        if lm is None:
            continue
        wanted: list[tuple[str, tuple[MetricRequirement, ...]]] = []
        owners = spec.alias_owner()
        for alias, ap in spec.policy.aliases.items():
            owner = owners.get(alias)
            if ap.require_metrics and owner is not None and lm.aliases.get(alias) != owner:
                wanted.append((owner, ap.require_metrics))
        if live.has_stages and spec.policy.use_stages:
            for stage, sp in spec.policy.stages.items():
                if not sp.require_metrics:
                    continue
                for v, vs in spec.versions.items():
                    lv = lm.versions.get(v)
                    if vs.stage == stage and lv is not None and lv.stage != stage:
                        wanted.append((v, sp.require_metrics))
        for version, reqs in wanted:
            versions = [version]
            for r in reqs:
                keys.add(r.metric)
                if r.beats is not None:
                    versions.extend(incumbent(lm, r.beats, live.has_stages))
            for v in versions:
                lv = lm.versions.get(v)
                if lv is not None and lv.run_id:
                    run_ids.add(lv.run_id)
    return frozenset(run_ids), frozenset(keys)
