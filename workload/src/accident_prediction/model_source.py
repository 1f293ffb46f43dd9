"""Which registered version to use: by version, stage, alias, champion, or best in Production.

Every lookup ends in a concrete `models:/NAME/N` URI, so what is reported is what was loaded
even if the registry moves meanwhile. A lookup that finds nothing says what does exist.
Stages are read from `search_model_versions` (not the deprecated stage APIs); aliases from
the registered model, because OSS `search_model_versions` returns them empty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accident_prediction.errors import ModelNotFoundError, ServingError
from regops.adapters.tracking import stages_supported
from regops.api import STAGES, search_models, search_versions

__all__ = ["stages_supported"]  # re-exported: callers ask this module

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

MODEL_PREFIX = "Accident_Prediction_"
DEFAULT_MODEL = "Accident_Prediction_XGBoost"  # what --use-mlflow-production serves
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"  # what training proposes when the state is alias-only
PRODUCTION = "Production"


@dataclass(frozen=True)
class ModelRef:
    """One registered model version and how it was chosen."""

    name: str
    version: str
    source: str  # e.g. "stage Production", "alias champion", "version 3"
    run_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelListing:
    """A registered model's versions (ascending) and aliases, read in two calls."""

    name: str
    versions: tuple[ModelVersion, ...]
    aliases: dict[str, str]  # alias -> version

    def aliases_of(self, version: str) -> list[str]:
        return sorted(a for a, v in self.aliases.items() if v == version)

    def describe(self) -> str:
        """`its versions: 1 (Archived), 2 (Production; aliases champion)`."""
        if not self.versions:
            return "it has no versions"
        parts = []
        for mv in self.versions:
            version = str(mv.version)
            extra = [mv.current_stage or "None"]
            if aliases := self.aliases_of(version):
                extra.append("aliases " + ", ".join(aliases))
            parts.append(f"{version} ({'; '.join(extra)})")
        return "its versions: " + ", ".join(parts)

    def ref(self, mv: ModelVersion, source: str) -> ModelRef:
        return ModelRef(self.name, str(mv.version), source, mv.run_id, dict(mv.tags or {}))


def list_models(client: MlflowClient, prefix: str = "") -> list[str]:
    """Names of registered models (starting with `prefix`), paged, sorted.

    The prefix is matched here, not in a LIKE filter, where `_` would be a wildcard.
    """
    return sorted(m.name for m in search_models(client) if m.name.startswith(prefix))


def listing(client: MlflowClient, name: str) -> ModelListing:
    """The model's versions and aliases; ModelNotFoundError listing the models if absent."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = list_models(client)
        shown = ", ".join(known[:50]) + (" ..." if len(known) > 50 else "") if known else "none"
        raise ModelNotFoundError(
            f"no registered model {name!r}; registered models: {shown}"
        ) from None
    versions = _all_versions(client, name)
    aliases = {alias: str(v) for alias, v in (model.aliases or {}).items()}
    return ModelListing(name, tuple(versions), aliases)


def by_version(client: MlflowClient, name: str, version: str) -> ModelRef:
    """A given version number."""
    found = listing(client, name)
    for mv in found.versions:
        if str(mv.version) == str(version).strip():
            return found.ref(mv, f"version {mv.version}")
    raise ModelNotFoundError(f"{name} has no version {version!r}; {found.describe()}")


def by_stage(client: MlflowClient, name: str, stage: str, *, stages: bool = True) -> ModelRef:
    """The latest version holding `stage` (case-insensitive: production == Production)."""
    canonical = {s.lower(): s for s in STAGES}.get(stage.strip().lower())
    if canonical is None:
        raise ModelNotFoundError(f"unknown stage {stage!r}; stages are {', '.join(STAGES)}")
    if not stages:
        raise ModelNotFoundError(
            "this registry has no stages (Unity Catalog): select the version with --alias"
        )
    found = listing(client, name)
    holders = [mv for mv in found.versions if (mv.current_stage or "None") == canonical]
    if not holders:
        raise ModelNotFoundError(f"{name} has no version in stage {canonical}; {found.describe()}")
    return found.ref(holders[-1], f"stage {canonical}")


def by_alias(client: MlflowClient, name: str, alias: str) -> ModelRef:
    """The version an alias points to."""
    found = listing(client, name)
    version = found.aliases.get(alias)
    if version is None:
        known = ", ".join(f"{a} -> {v}" for a, v in sorted(found.aliases.items())) or "none"
        raise ModelNotFoundError(f"{name} has no alias {alias!r}; its aliases: {known}")
    for mv in found.versions:
        if str(mv.version) == version:
            return found.ref(mv, f"alias {alias}")
    raise ModelNotFoundError(f"{name}: alias {alias!r} points to missing version {version}")


def champion(client: MlflowClient, name: str, *, stages: bool = True) -> ModelRef | None:
    """The model's champion: its Production version, else its `champion` alias; None if neither."""
    return _champion_of(listing(client, name), stages=stages)


def production_or_champion(client: MlflowClient, name: str, *, stages: bool = True) -> ModelRef:
    """Like `champion`, but a model without one is an error that lists what exists."""
    found = listing(client, name)
    ref = _champion_of(found, stages=stages)
    if ref is None:
        raise ModelNotFoundError(
            f"{name} has no version in stage {PRODUCTION} and no alias {CHAMPION_ALIAS!r}; "
            + found.describe()
        )
    return ref


def best_production(
    client: MlflowClient,
    score_tags: Sequence[str] = ("validation.roc_auc", "metric.roc_auc"),
    *,
    prefix: str = MODEL_PREFIX,
    stages: bool = True,
    higher_is_better: bool = True,
) -> ModelRef:
    """The champion with the best score across `prefix*` models.

    The score is the first of `score_tags` the version carries: the validation figure
    first; a version validated before the gates existed may only carry the training figure
    (`metric.<name>`). It still counts, and the source says which tag was used.
    """
    names = list_models(client, prefix)
    if not names:
        raise ModelNotFoundError(f"no registered models named {prefix}*")
    scored: list[tuple[float, str, ModelRef, str]] = []
    unscored: list[str] = []
    without: list[str] = []
    for name in names:
        ref = _champion_of(listing(client, name), stages=stages)
        if ref is None:
            without.append(name)
            continue
        for key in score_tags:
            value = _as_float(ref.tags.get(key))
            if value is not None:
                scored.append((value, name, ref, key))
                break
        else:
            unscored.append(f"{name} v{ref.version}")
    if not scored:
        detail = []
        if unscored:
            detail.append(f"without a {score_tags[0]} tag: {', '.join(unscored)}")
        if without:
            detail.append(f"without a Production version or champion alias: {', '.join(without)}")
        raise ModelNotFoundError(
            f"no Production model to choose from among {prefix}*; " + "; ".join(detail)
        )
    # Highest score wins; ties go to the alphabetically first name, so the choice is stable.
    sign = 1.0 if higher_is_better else -1.0  # log_loss: lower wins
    value, _, ref, key = max(scored, key=lambda s: (sign * s[0], _reverse(s[1])))
    return ModelRef(
        ref.name,
        ref.version,
        f"best of {len(scored)} by {key}={value:.4f} ({ref.source})",
        ref.run_id,
        ref.tags,
    )


def latest_training_versions(
    client: MlflowClient, manifest: Path, prefix: str = MODEL_PREFIX
) -> list[tuple[str, str]]:
    """(model, version) registered by the latest `accident train`.

    From the manifest training writes (data/metrics/last_training.json) when present, else
    from the newest `training_run_group` tag among the `prefix*` models' versions.
    """
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ServingError(f"{manifest}: not valid JSON: {exc}") from None
        if isinstance(entries, dict):  # {"models": [...]} as training writes it, or a bare list
            entries = entries.get("models") or []
        # Entries without a version: training ran with registration off.
        return [
            (str(e["registered_model"]), str(e["version"]))
            for e in entries
            if isinstance(e, dict) and e.get("registered_model") and e.get("version")
        ]
    newest: tuple[int, str] | None = None
    tagged: list[tuple[str, str, str]] = []
    for name in list_models(client, prefix):
        for mv in listing(client, name).versions:
            group = (mv.tags or {}).get("training_run_group")
            if group:
                tagged.append((name, str(mv.version), group))
                stamp = (int(mv.creation_timestamp or 0), group)
                newest = stamp if newest is None or stamp > newest else newest
    if newest is None:
        raise ServingError(
            f"no {manifest} and no version tagged training_run_group: train first "
            "(accident train) or name the version (--model-name, --version)"
        )
    return [(n, v) for n, v, g in tagged if g == newest[1]]


def _champion_of(found: ModelListing, *, stages: bool) -> ModelRef | None:
    if stages:
        in_production = [mv for mv in found.versions if mv.current_stage == PRODUCTION]
        if in_production:
            return found.ref(in_production[-1], f"stage {PRODUCTION}")
    version = found.aliases.get(CHAMPION_ALIAS)
    for mv in found.versions:
        if str(mv.version) == version:
            return found.ref(mv, f"alias {CHAMPION_ALIAS}")
    return None


def _all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    # Paged and quoted by the one MLflow adapter; versions come back int from sqlite and str
    # over REST: sort numerically.
    return sorted(search_versions(client, [name]), key=lambda mv: int(mv.version))


def _as_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _reverse(name: str) -> tuple[int, ...]:
    return tuple(-ord(c) for c in name)
