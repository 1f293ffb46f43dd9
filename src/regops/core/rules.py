"""Policy as code: `policy.rules`, CEL expressions judged on every change. Pure.

Each rule of a file is judged on every change of its models that gives a version a stage
or an alias (stage changes, alias sets and moves; not alias removals or descriptions; a
copy from another environment is judged through the stage or alias change that makes it
serve, where `version.source_env` says it is one), with these variables (README "Rules"):

- `model`: {name, tags}
- `version`: {number, tags, run_id, metrics, source, created, source_env,
  source_version}: the version the change concerns; `metrics` are its source run's
  (latest value per key; read only when a rule of the file names `metrics`), `created`
  a timestamp, `source_env`/`source_version` the environment and version it is a copy
  of (null when it is not a copy).
- `incumbent`: the same shape, for the version that holds the alias (or, for a stage
  change, the highest-numbered version in the stage) live now; null when none does or
  when it is the version itself.
- `change`: {kind, stage, alias, from, to, reason, rollback}
- `env` (the environment's name, "" without regops.yaml), `actor` (who runs regops), `now`
  (a timestamp: when the plan was made).

A rule whose expression is true passes. False fails; an evaluation error (a missing key,
a wrong type) fails too, saying why. A failed `hard` rule blocks the change (and so the
plan); a failed `soft` rule blocks unless overridden (`--override NAME --reason TEXT`,
recorded with the actor in the version's stamp); a failed `advisory` rule is reported
only. A hard rule cannot be overridden: an override naming one is refused in its verdict.

Why CEL (cel-python): an expression language that cannot loop or touch the outside,
evaluated in-process from the package index; OPA/Rego would need a Go binary (or a
server) in every CI job. cel-python is imported only when a state file has rules.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.live import LiveModel, LiveState, LiveVersion
from regops.core.metric_gates import incumbent, is_rollback
from regops.core.plan import Action, Change, ChangeKind, GateVerdict, RuleVerdict
from regops.core.promotion import parse_key
from regops.core.state import ADVISORY, HARD, SOFT, STAGES, DesiredState, ModelSpec, Rule

GATE = "rule"
VARIABLES = ("model", "version", "incumbent", "change", "env", "actor", "now")
MACROS = ("all", "exists", "exists_one", "map", "filter")
# CEL's type names, which an expression may name as values (`type(x) == string`)
TYPE_NAMES = frozenset(
    [
        "bool",
        "bytes",
        "double",
        "duration",
        "dyn",
        "int",
        "list",
        "map",
        "null_type",
        "string",
        "timestamp",
        "type",
        "uint",
    ]
)
MAX_DETAIL_CHARS = 300
INSTALL_HINT = "policy.rules needs cel-python: pip install 'regops[rules]'"
UNREAD = (
    "run metrics were not read: the version has no source run, or the plan is against a "
    "snapshot (plan --live)"
)
JUDGED = (ChangeKind.STAGE, ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE)


class RulesUnavailable(Exception):
    """cel-python is not installed."""


@dataclass(frozen=True)
class RuleContext:
    """What a plan's rules see besides the registry: the environment, who runs regops,
    and the overrides given (rule -> reason) with who gave them."""

    env: str = ""
    actor: str = ""
    overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    override_actor: str = ""


def _celpy() -> Any:
    try:
        import celpy
    except ImportError as exc:  # the `rules` extra is not installed
        raise RulesUnavailable(INSTALL_HINT) from exc
    return celpy


@lru_cache(maxsize=256)
def _compiled(expr: str) -> Any:
    """The CEL program of `expr` (raises celpy.CELParseError); compiled once per process."""
    celpy = _celpy()
    env = celpy.Environment()
    return env.program(env.compile(expr), functions={"_!=_": _not_equal})


def _not_equal(a: Any, b: Any) -> Any:
    """`!=` that takes null on either side (`incumbent != null`): cel-python 0.5 has no
    overload of `!=` for a map and null, though `==` has one."""
    from celpy import celtypes, evaluation

    if a is None or b is None:
        return celtypes.BoolType(a is not b)
    return evaluation.base_functions["_!=_"](a, b)


def compile_problem(expr: str) -> str | None:
    """Why `expr` is not a rule regops can judge (does not compile, names an unknown
    variable), or None. Raises RulesUnavailable without cel-python."""
    celpy = _celpy()
    try:
        tree = celpy.Environment().compile(expr)
    except celpy.CELParseError as exc:
        text = str(exc.args[0]).splitlines()[0] if exc.args else expr
        return f"does not compile (column {getattr(exc, 'column', '?')}): {text}"
    except Exception as exc:  # noqa: BLE001 (lark's own errors: said, never a traceback)
        return f"does not compile: {_short(str(exc))}"
    unknown = sorted(_free_names(tree) - set(VARIABLES) - TYPE_NAMES)
    if unknown:
        return f"names unknown variable(s) {', '.join(unknown)} (rules see: {', '.join(VARIABLES)})"
    _compiled(expr)
    return None


def _free_names(tree: Any) -> set[str]:
    """Identifiers the expression reads, less the variables its macros bind (`x` of
    `list.all(x, ...)`; bound names are allowed anywhere, which never refuses a good rule)."""
    names: set[str] = set()
    bound: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data == "primary":
            for child in node.children:
                if getattr(child, "data", None) == "ident":
                    names.add(str(child.children[0]))
        if node.data == "member_dot_arg" and len(node.children) >= 3:
            macro, args = node.children[1], node.children[2]
            if str(macro) in MACROS and getattr(args, "children", None):
                first = args.children[0]
                for sub in first.iter_subtrees():
                    if sub.data == "ident":
                        bound.add(str(sub.children[0]))
    return names - bound


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL_CHARS else text[:MAX_DETAIL_CHARS] + "..."


# ---- the variables ------------------------------------------------------------------------


def _timestamp(epoch: float | None) -> Any:
    if epoch is None:
        return None
    from datetime import datetime, timezone

    celtypes = _celpy().celtypes
    when = datetime.fromtimestamp(epoch, timezone.utc)  # noqa: UP017 (3.10)
    return celtypes.TimestampType(when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _version_doc(
    lm: LiveModel, key: str | None, runs: Mapping[str, Mapping[str, float]] | None
) -> dict[str, Any] | None:
    lv: LiveVersion | None = lm.versions.get(key or "")
    if lv is None or key is None:
        return None
    metrics = dict(runs.get(lv.run_id, {})) if runs is not None and lv.run_id else {}
    source_env, source_version = _origin(lm.name, key, lv)
    return {
        "number": int(key) if key.isdigit() else None,
        "tags": dict(lv.tags),
        "run_id": lv.run_id,
        "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
        "source": lv.source,
        "created": lv.created_ms / 1000 if lv.created_ms is not None else None,
        "source_env": source_env,
        "source_version": source_version,
    }


def _origin(model: str, key: str, lv: LiveVersion) -> tuple[str | None, int | None]:
    """(environment, version) a copy was made from: its state key (`dev@7`, a copy not
    made yet) or the lineage tag of one made; (None, None) for a version of its own."""
    ref = parse_key(key, model)
    if ref is None:
        raw = lv.tags.get(LINEAGE_TAG)
        lineage = Lineage.parse(raw)
        if lineage is None:
            return None, None
        env, version = lineage.env, str(lineage.version)
    else:
        env, version = ref.env, ref.version
    return env, int(version) if version.isdigit() else None


def _target(c: Change) -> tuple[str | None, str | None]:
    """(version key the change concerns, the alias or stage it enters)."""
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE):
        return c.after, c.alias
    if c.kind == ChangeKind.STAGE:
        return c.version, c.after
    return c.version, None


def variables(
    c: Change,
    spec: ModelSpec,
    lm: LiveModel,
    runs: Mapping[str, Mapping[str, float]] | None,
    ctx: RuleContext,
    now: float | None,
    has_stages: bool = True,
) -> dict[str, Any]:
    """The variables a rule sees for change `c` (plain Python; `activation` makes them CEL)."""
    version, target = _target(c)
    holder: str | None = None
    if c.kind in (ChangeKind.ALIAS_SET, ChangeKind.ALIAS_MOVE):
        holder = c.before
    elif c.kind == ChangeKind.STAGE and target in STAGES:
        holders = [v for v in incumbent(lm, target, has_stages) if v != version]
        holder = holders[-1] if holders else None
    rollback = is_rollback(c, lm, version or "") if c.kind != ChangeKind.COPY else None
    return {
        "model": {"name": spec.name, "tags": dict(lm.tags)},
        "version": _version_doc(lm, version, runs),
        "incumbent": _version_doc(lm, holder, runs) if holder != version else None,
        "change": {
            "kind": c.kind.value,
            "stage": c.after if c.kind == ChangeKind.STAGE else None,
            "alias": c.alias,
            "from": c.before,
            "to": c.after,
            "reason": c.reason,
            "rollback": rollback is not None,
        },
        "env": ctx.env,
        "actor": ctx.actor,
        "now": now,
    }


def activation(doc: Mapping[str, Any]) -> dict[str, Any]:
    """`variables` as CEL values: timestamps for `now` and `created`."""
    celpy = _celpy()

    def version(v: Any) -> Any:
        if v is None:
            return None
        cel = celpy.json_to_cel({k: x for k, x in v.items() if k != "created"})
        cel[celpy.celtypes.StringType("created")] = _timestamp(v["created"])
        return cel

    return {
        "model": celpy.json_to_cel(doc["model"]),
        "version": version(doc["version"]),
        "incumbent": version(doc["incumbent"]),
        "change": celpy.json_to_cel(doc["change"]),
        "env": celpy.celtypes.StringType(doc["env"]),
        "actor": celpy.celtypes.StringType(doc["actor"]),
        "now": _timestamp(doc["now"]),
    }


def evaluate(
    rule: Rule, doc: Mapping[str, Any], cel: Mapping[str, Any] | None = None
) -> tuple[str, str]:
    """(pass | fail | error, detail) of `rule` on the variables `doc` (`cel`: the same, as
    `activation` made them, to make them once for every rule of a change)."""
    celpy = _celpy()
    try:
        value = _compiled(rule.expr).evaluate(dict(cel) if cel is not None else activation(doc))
    except celpy.CELEvalError as exc:
        return "error", f"could not be evaluated: {_eval_message(exc)}"
    except Exception as exc:  # noqa: BLE001 (hostile data must not crash a plan)
        return "error", f"could not be evaluated: {type(exc).__name__}: {_short(str(exc))}"
    if isinstance(value, celpy.CELEvalError):
        return "error", f"could not be evaluated: {_eval_message(value)}"
    if not isinstance(value, (bool, celpy.celtypes.BoolType)):
        return "error", f"evaluated to {_short(_cel_text(value))}, not true or false"
    return ("pass" if bool(value) else "fail"), rule.message or rule.expr


def _cel_text(value: Any) -> str:
    """A CEL value as the rule's author wrote it (`2`, `'x'`), not its Python repr."""
    return repr(value) if isinstance(value, str) else str(value)


def _eval_message(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return _short(text.split(" (in activation", 1)[0])


def gate_rules(
    changes: Iterable[Change],
    spec: ModelSpec,
    lm: LiveModel,
    runs: Mapping[str, Mapping[str, float]] | None,
    ctx: RuleContext,
    now: float | None,
    has_stages: bool = True,
) -> list[Change]:
    """`changes` with their rule verdicts; BLOCKED where a hard rule or an unoverridden
    soft rule fails."""
    rules = spec.policy.rules
    out = []
    for c in changes:
        if not rules or c.kind not in JUDGED or c.action not in (Action.APPLY, Action.BLOCKED):
            out.append(c)
            continue
        doc = variables(c, spec, lm, runs, ctx, now, has_stages)
        try:
            cel: Mapping[str, Any] | None = activation(doc)
        except Exception:  # noqa: BLE001 (each rule then says why, from evaluate)
            cel = None
        verdicts = tuple(_judge(r, doc, ctx, cel) for r in rules)
        if runs is None:  # say why a rule reading metrics found none
            verdicts = tuple(
                replace(v, detail=f"{v.detail} ({UNREAD})")
                if v.result == "error" and r.reads_metrics()
                else v
                for r, v in zip(rules, verdicts, strict=True)
            )
        gates = tuple(
            GateVerdict(GATE, not v.blocks, f"{v.rule} ({v.level}): {v.result}: {v.detail}")
            for v in verdicts
        )
        action = Action.BLOCKED if any(v.blocks for v in verdicts) else c.action
        out.append(replace(c, gates=(*c.gates, *gates), rules=verdicts, action=action))
    return out


def _judge(
    rule: Rule, doc: Mapping[str, Any], ctx: RuleContext, cel: Mapping[str, Any] | None
) -> RuleVerdict:
    result, detail = evaluate(rule, doc, cel)
    base = RuleVerdict(rule.name, rule.level, result, False, detail)
    if result == "pass" or rule.level == ADVISORY:
        return base if result == "pass" else replace(base, detail=f"{detail} (advisory: reported)")
    reason = ctx.overrides.get(rule.name)
    if rule.level == SOFT and reason is not None:
        return replace(base, override_reason=reason, override_actor=ctx.override_actor or None)
    if rule.level == HARD and reason is not None:
        detail = f"{detail} (--override refused: a hard rule cannot be overridden)"
    return replace(base, blocks=True, detail=detail)


def rule_names(desired: DesiredState, names: Collection[str] | None = None) -> set[str]:
    """The rules of the files of `names` (every model when None)."""
    return {
        r.name
        for n, spec in desired.models.items()
        if names is None or n in names
        for r in spec.policy.rules
    }


def runs_to_read(
    desired: DesiredState, live: LiveState, names: Collection[str] | None = None
) -> frozenset[str]:
    """Run ids whose metrics the rules of a plan of `names` may read: the versions a
    pending change gives a stage or alias, and the live holders of those, in models
    whose file has a rule naming `metrics`. Empty when none does (no read at all)."""
    run_ids: set[str] = set()
    for name, spec in desired.models.items():
        if names is not None and name not in names:
            continue
        if not any(r.reads_metrics() for r in spec.policy.rules):
            continue
        lm = live.models.get(name)
        if lm is None:
            continue
        wanted: set[str] = set()
        for v, vs in spec.versions.items():
            lv = lm.versions.get(v)
            if lv is None:
                continue
            if vs.stage is not None and lv.stage != vs.stage:
                wanted.add(v)
                wanted.update(incumbent(lm, vs.stage, live.has_stages))
            for alias in vs.aliases:
                if lm.aliases.get(alias) != v:
                    wanted.add(v)
                    wanted.update(incumbent(lm, alias, False))
        for v in wanted:
            lv = lm.versions.get(v)
            if lv is not None and lv.run_id:
                run_ids.add(lv.run_id)
    return frozenset(run_ids)
