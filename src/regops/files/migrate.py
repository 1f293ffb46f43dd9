"""`regops migrate-to-aliases`: rewrite the state files off stages, onto aliases.

Each state file is edited the way the editing commands edit it (edit.py: a
round-trip tree, then only the changed lines spliced back, so comments and
formatting elsewhere are kept byte for byte):

- each version's `stage: S` with S mapped to alias A becomes alias A (an alias
  names one version: when several versions hold S, the newest gets A; an alias
  the file already declares is left where it is); every other `stage` is dropped;
- `policy.stages.S` becomes `policy.aliases.A` with the same `require_tags`, and
  `require_from` mapped stage by stage to aliases. The stage names stay in
  `require_from` too: live stages are left alone, so the versions holding them
  may take their aliases in the migration's own plan (drop them once applied);
- `policy.use_stages: false`, so the plan that follows moves aliases only.

With `keep_stages` the stage lines and stage policies stay (and `use_stages` is
not set): the aliases are added beside them and stages remain managed.
All files are validated together before any is written. Never imports mlflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.tokens import CommentToken

from regops.core.state import ALIAS, RESERVED_ALIAS, STAGES, version_key
from regops.errors import EditError
from regops.files.edit import EditResult, _Doc, _load_all, write_edit
from regops.files.loader import display_path, load_state

DEFAULT_MAP = {"Production": "champion", "Staging": "challenger"}


def parse_map(pairs: tuple[str, ...]) -> dict[str, str]:
    """`Production=champion` pairs -> {stage: alias}; the default map when none is given."""
    if not pairs:
        return dict(DEFAULT_MAP)
    out: dict[str, str] = {}
    for pair in pairs:
        stage, sep, alias = pair.partition("=")
        stage, alias = stage.strip(), alias.strip()
        if not sep or stage not in STAGES:
            raise EditError(
                f"--map {pair!r}: expected STAGE=ALIAS, STAGE one of {', '.join(STAGES)}"
            )
        if not ALIAS.fullmatch(alias) or RESERVED_ALIAS.fullmatch(alias):
            raise EditError(f"--map {pair!r}: {alias!r} is not an alias regops can set")
        if stage in out:
            raise EditError(f"--map: stage {stage} is mapped twice")
        if alias in out.values():
            raise EditError(f"--map: alias {alias} is mapped from two stages")
        out[stage] = alias
    return out


def migrate_state(
    state_dir: Path,
    mapping: Mapping[str, str],
    *,
    keep_stages: bool = False,
    stages_supported: bool = True,
) -> list[EditResult]:
    """The validated rewrite of every state file (unchanged files included), not yet written."""
    if not state_dir.is_dir():
        raise EditError(f"state directory {state_dir} not found")
    docs = _load_all(state_dir, stages_supported=stages_supported)
    results = []
    for path, doc in docs.items():
        summary = _migrate_doc(doc, mapping, keep_stages=keep_stages)
        results.append(
            EditResult(path=path, before=doc.original, after=doc.render(), summary=tuple(summary))
        )
    # The result must load under the contract the plan will use (raises StateError).
    load_state(
        state_dir,
        stages_supported=stages_supported,
        overrides={r.path: r.after for r in results},
    )
    return results


def write_migration(results: list[EditResult]) -> None:
    for result in results:
        write_edit(result)


def _migrate_doc(doc: _Doc, mapping: Mapping[str, str], *, keep_stages: bool) -> list[str]:
    data = doc.data
    if not isinstance(data, CommentedMap):
        raise EditError("a state file must be a mapping with apiVersion and models")
    summary = _migrate_policy(data, mapping, keep_stages=keep_stages)
    models = data.get("models")
    for name in models if isinstance(models, CommentedMap) else ():
        versions = models[name].get("versions") if isinstance(models[name], dict) else None
        if isinstance(versions, CommentedMap):
            summary += _migrate_versions(name, versions, mapping, keep_stages=keep_stages)
    return summary


def _flow_seq(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _migrate_policy(
    data: CommentedMap, mapping: Mapping[str, str], *, keep_stages: bool
) -> list[str]:
    summary: list[str] = []
    policy = data.get("policy")
    if not isinstance(policy, CommentedMap):
        if keep_stages:
            return summary
        policy = CommentedMap()
        keys = list(data)
        data.insert(keys.index("apiVersion") + 1 if "apiVersion" in keys else 0, "policy", policy)
    stages = policy.get("stages")
    aliases = policy.get("aliases")
    new_aliases = aliases if isinstance(aliases, CommentedMap) else CommentedMap()
    for stage, rule in (stages or {}).items() if isinstance(stages, dict) else ():
        alias = mapping.get(str(stage))
        if alias is None:
            if not keep_stages:
                summary.append(f"policy.stages.{stage} dropped (stage {stage} is not mapped)")
            continue
        if alias in new_aliases:
            summary.append(f"policy.aliases.{alias} already set: policy.stages.{stage} not copied")
            continue
        new_aliases[alias] = _alias_rule(rule if isinstance(rule, dict) else {}, alias, mapping)
        summary.append(f"policy.stages.{stage} -> policy.aliases.{alias}")
    keys = list(policy)
    at = keys.index("stages") if "stages" in keys else len(keys)
    if not keep_stages:
        if "stages" in policy:
            del policy["stages"]
        if policy.get("use_stages") is not False:
            if "use_stages" in policy:
                policy["use_stages"] = False
            else:
                policy.insert(at, "use_stages", False)
                at += 1
            summary.append("policy.use_stages: false (alias-only: plans move aliases only)")
    else:
        at = at + 1 if "stages" in keys else at
    if new_aliases and "aliases" not in policy:
        policy.insert(min(at, len(policy)), "aliases", new_aliases)
    return summary


def _alias_rule(rule: Mapping[str, Any], alias: str, mapping: Mapping[str, str]) -> CommentedMap:
    out = CommentedMap()
    for key in rule:
        if key == "require_from":
            stages = [str(s) for s in rule[key] or []]
            mapped = [mapping[s] for s in stages if s in mapping and mapping[s] != alias]
            out[key] = _flow_seq(list(dict.fromkeys(mapped + stages)))
        elif key == "require_tags":
            out[key] = rule[key]  # the node itself: its flow or block style is kept
    return out


def _migrate_versions(
    model: str, versions: CommentedMap, mapping: Mapping[str, str], *, keep_stages: bool
) -> list[str]:
    summary: list[str] = []
    declared = {
        str(a): str(k)
        for k in versions
        if isinstance(versions[k], dict)
        for a in (versions[k].get("aliases") or [])
    }
    holders: dict[str, list[Any]] = {}
    for key in versions:
        spec = versions[key]
        stage = spec.get("stage") if isinstance(spec, dict) else None
        if stage is not None and str(stage) in mapping:
            holders.setdefault(mapping[str(stage)], []).append(key)
    chosen: dict[Any, str] = {}
    for target, keys in holders.items():
        newest = max(keys, key=lambda k: version_key(str(k)))
        if target in declared:
            if declared[target] != str(newest) or len(keys) > 1:
                summary.append(
                    f"{model} alias {target}: already declared on v{declared[target]}; left there"
                )
            continue
        if len(keys) > 1:
            others = ", ".join(f"v{k}" for k in keys if k != newest)
            summary.append(
                f"{model} alias {target}: v{newest} (newest of the versions in the stage; "
                f"{others} get no alias: an alias names one version)"
            )
        chosen[newest] = target
    for key in versions:
        spec = versions[key]
        if not isinstance(spec, CommentedMap):
            continue
        stage = spec.get("stage")
        alias = chosen.get(key)
        if alias is not None:
            aliases: Any = spec.get("aliases")
            if isinstance(aliases, list):
                aliases.append(alias)
            else:
                keys = list(spec)
                at = keys.index("stage") + (1 if keep_stages else 0) if "stage" in keys else 0
                spec.insert(at, "aliases", _flow_seq([alias]))
        if "stage" in spec and not keep_stages:
            _drop_key(versions, key, "stage")
            kept = [str(a) for a in spec.get("aliases") or [] if a != alias]
            what = f"alias {alias}" if alias else "no alias"
            what += f" (keeps {', '.join(kept)})" if kept else ""
            summary.append(f"{model} v{key}: stage {stage} -> {what}")
        elif alias is not None:
            summary.append(f"{model} v{key}: alias {alias} added (stage {stage} kept)")
    return summary


def _drop_key(parent: CommentedMap, pkey: Any, key: str) -> None:
    """Delete `parent[pkey][key]`, keeping the comment lines that followed its line.

    ruamel hangs the comment lines after an entry (`# Churn has one version.`
    above the next model) on that entry; deleting it would delete them too.
    """
    spec = parent[pkey]
    keys = list(spec)
    slot = spec.ca.items.get(key)
    token = slot[2] if slot and len(slot) > 2 and isinstance(slot[2], CommentToken) else None
    del spec[key]
    if not spec:
        spec.fa.set_flow_style()  # an emptied block mapping reads `{}`
    if token is None:
        return
    _eol, _nl, rest = token.value.partition("\n")  # the deleted line's own comment goes
    if not rest:
        return
    at = keys.index(key)
    if at > 0:
        owner, owner_key = spec, keys[at - 1]
    elif not spec:
        owner, owner_key = parent, pkey
    else:
        return  # comment lines between the first and the second key: rare, let them go
    other = owner.ca.items.get(owner_key)
    if other and len(other) > 2 and isinstance(other[2], CommentToken):
        other[2].value += rest
    else:
        owner.ca.items[owner_key] = [
            None,
            None,
            CommentToken("\n" + rest, token.start_mark, None),
            None,
        ]


def describe(results: list[EditResult]) -> list[str]:
    """One line per file: changed or not."""
    return [
        f"{display_path(r.path)}: {'rewritten' if r.changed else 'nothing to migrate'}"
        for r in results
    ]
