"""Alias gates: `policy.aliases.<alias>` evaluated on a planned alias change. Pure.

- `require_from`: the version must hold (live) one of these aliases or stages, or
  have held one under regops (`regops.held`). Returning an alias to a version that
  held it before under regops is a rollback and passes, so `git revert` of a
  champion move works. Restoring a drifted alias skips the gate (as for stages).
- `require_tags`: the version carries these tags (the evidence CI writes).
- `protected`: the alias may move to another version but is never removed; a plan
  that would remove it is refused at validation, with the file and line. Held live by
  a version no state file lists any more (which the plan leaves alone), it is named in
  the plan's warnings: the state files no longer say who holds it.

Verdicts read exactly like the stage gates' and a failed one blocks the whole plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from regops.core.live import LiveModel
from regops.core.plan import Action, Change, ChangeKind, GateVerdict
from regops.core.state import STAGES, AliasPolicy, ModelSpec


def gate_alias_change(change: Change, spec: ModelSpec, lm: LiveModel) -> Change:
    """`change` with the verdicts of its alias's gates; BLOCKED when one fails."""
    if change.kind not in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE) or change.alias is None:
        return change
    ap = spec.policy.aliases.get(change.alias)
    if ap is None or change.after is None or change.after not in lm.versions:
        return change
    gates = alias_gates(
        ap, lm, change.after, change.alias, skip_require_from=change.reason == "drift"
    )
    action = change.action
    if any(not g.passed for g in gates) and action == Action.APPLY:
        action = Action.BLOCKED
    return replace(change, gates=gates, action=action)


def alias_gates(
    ap: AliasPolicy, lm: LiveModel, ver: str, alias: str, *, skip_require_from: bool
) -> tuple[GateVerdict, ...]:
    """The verdict of each gate of `ap` for pointing `alias` at version `ver`."""
    verdicts = []
    lv = lm.versions[ver]
    if ap.require_from is not None and not skip_require_from:
        holds = [
            x
            for x in ap.require_from
            if lm.aliases.get(x) == ver or (x in STAGES and lv.stage == x)
        ]
        held = [
            x for x in ap.require_from if x in lv.held_aliases() or (x in STAGES and x in lv.held())
        ]
        if holds:
            detail = f"version {ver} holds {holds[0]}: may take {alias}"
            verdicts.append(GateVerdict("require_from", True, detail))
        elif alias in lv.held_aliases():
            # It passed this gate once already: returning the alias is a rollback.
            detail = f"version {ver} held {alias} before (a rollback)"
            verdicts.append(GateVerdict("require_from", True, detail))
        elif held:
            detail = f"version {ver} held {held[0]} before: may take {alias}"
            verdicts.append(GateVerdict("require_from", True, detail))
        else:
            allowed = ", ".join(ap.require_from)
            detail = f"version {ver} holds none of: {allowed}; {alias} requires one of them"
            verdicts.append(GateVerdict("require_from", False, detail))
    for key, want in sorted(ap.require_tags.items()):
        have = lv.tags.get(key)
        if have == want:
            verdicts.append(GateVerdict("require_tags", True, f"{key}={want}"))
        else:
            found = "missing" if have is None else f"{have!r}"
            verdicts.append(GateVerdict("require_tags", False, f"{key} is {found}; needs {want!r}"))
    return tuple(verdicts)


def protected_removals(spec: ModelSpec, changes: Iterable[Change]) -> list[str]:
    """FILE:LINE errors for each protected alias the plan would remove."""
    errors = []
    for c in changes:
        if c.kind != ChangeKind.ALIAS_DELETE or c.alias is None or c.action == Action.WARN:
            continue
        if spec.policy.for_alias(c.alias).protected:
            errors.append(
                f"{spec.file}:{spec.line}: {spec.name}: alias {c.alias!r} is protected: it may "
                f"move to another version but never be removed (it is on version {c.before}; "
                "declare it on the version that should hold it)"
            )
    return errors


def protected_unlisted(spec: ModelSpec, lm: LiveModel) -> list[str]:
    """A warning per protected alias held live by a version the state does not list and
    declared on no version: the plan leaves it alone, and git no longer names its holder."""
    declared = spec.alias_owner()
    removes_unlisted = spec.policy.unlisted_versions == "archive"
    out = []
    for alias, holder in sorted(lm.aliases.items()):
        if alias in declared or holder in spec.versions or removes_unlisted:
            continue  # moved, kept, or removed by the plan (which protected_removals refuses)
        if spec.policy.for_alias(alias).protected:
            out.append(
                f"{spec.file}:{spec.line}: model {spec.name!r}: protected alias {alias!r} is "
                f"held by version {holder}, which no state file lists any more: the state no "
                f"longer says who holds {alias}; list version {holder} with aliases: [{alias}] "
                f"(or declare {alias} on the version that should hold it)"
            )
    return out
