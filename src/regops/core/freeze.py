"""Freeze windows: `policy.freeze`, judged on every change of a plan made inside one. Pure.

A window runs from `from` (inclusive) to `to` (exclusive), in UTC. Inside it every change
of the file's models is refused (BLOCKED, and with it the plan: exit 1), its verdict
naming the window and its reason. With `allow_rollback: true` the changes that only undo
or take away pass: a return to an alias or stage the version held under regops (a
rollback, as `require_from` recognises it), the restoring of a value changed outside
git, a stage change to None or Archived, the removal of an alias (a `git revert` of a
promotion needs the newer version to leave as the older one returns).

"Now" is the time the plan was made (its `created_at`); a plan saved before a window and
applied inside it is judged again when it is applied (api.run_reconcile).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timezone

from regops.core.live import LiveModel
from regops.core.metric_gates import is_rollback
from regops.core.plan import Action, Change, ChangeKind, GateVerdict
from regops.core.state import FreezeWindow, ModelSpec

GATE = "freeze"
TAKEN_AWAY = ("None", "Archived")


def epoch(created_at: str) -> float | None:
    """A plan's `created_at` (`2026-12-20T00:00:00Z`) in seconds, None when absent."""
    if not created_at:
        return None
    try:
        when = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc).timestamp()  # noqa: UP017 (3.10)


def windows_at(spec: ModelSpec, now: float | None) -> list[FreezeWindow]:
    """The windows of the model's file that cover `now`."""
    if now is None:
        return []
    return [w for w in spec.policy.freeze if w.covers(now)]


def undoes(change: Change, lm: LiveModel | None) -> str | None:
    """Why `change` only undoes or takes away (what allow_rollback lets through), or None."""
    if change.kind == ChangeKind.ALIAS_DELETE:
        return f"removes alias {change.alias}"
    if change.kind == ChangeKind.STAGE and change.after in TAKEN_AWAY:
        return f"takes version {change.version} out of service (stage {change.after})"
    if lm is None or change.kind not in (
        ChangeKind.STAGE,
        ChangeKind.ALIAS_SET,
        ChangeKind.ALIAS_MOVE,
    ):
        return None
    target = change.version if change.kind == ChangeKind.STAGE else change.after
    return is_rollback(change, lm, target or "")


def gate_freeze(
    changes: Iterable[Change], spec: ModelSpec, lm: LiveModel | None, now: float | None
) -> list[Change]:
    """`changes` with a `freeze` verdict per window covering `now`; BLOCKED when refused."""
    windows = windows_at(spec, now)
    if not windows:
        return list(changes)
    out = []
    for c in changes:
        if c.action not in (Action.APPLY, Action.BLOCKED):
            out.append(c)  # suspended, or drift only reported: nothing is written anyway
            continue
        why = undoes(c, lm)
        verdicts = []
        for w in windows:
            frozen = f"frozen {w.text} (UTC): {w.reason}"
            if why and w.allow_rollback:
                verdicts.append(GateVerdict(GATE, True, f"{frozen}; {why}: allow_rollback"))
            elif why:
                verdicts.append(
                    GateVerdict(GATE, False, f"{frozen}; {why}, but allow_rollback is not set")
                )
            else:
                verdicts.append(GateVerdict(GATE, False, f"{frozen}; forward changes refused"))
        action = Action.BLOCKED if any(not v.passed for v in verdicts) else c.action
        out.append(replace(c, gates=(*c.gates, *verdicts), action=action))
    return out
