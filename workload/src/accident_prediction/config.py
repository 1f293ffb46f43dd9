"""Load and validate config/model_config.yaml, once, at the edge.

YAML syntax, JSON Schema (`schemas/model-config.schema.json`) and the classifier parameters are
all checked before anything is read or trained; every problem is reported as `FILE:LINE: message`
in one ConfigError. Past this module nothing re-checks the config.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from accident_prediction.errors import ConfigError
from accident_prediction.features import MODEL_TYPES, REGISTERED_SUFFIX
from regops.files import yamlio

DEFAULT_CONFIG = Path("config/model_config.yaml")
SCHEMA_FILE = Path(__file__).parent / "schemas" / "model-config.schema.json"

KeyPath = tuple[str | int, ...]


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Config:
    """A validated model config: the plain data plus where each key was written."""

    path: Path
    data: Mapping[str, Any]
    lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False)

    def where(self, *keys: str | int) -> str:
        """`FILE:LINE` of a key (or of its nearest written parent), for error messages."""
        path: KeyPath = tuple(keys)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.path}:{self.lines.get(path, 1)}"

    # The settings the pipeline reads, named once here.
    @property
    def mlflow(self) -> Mapping[str, Any]:
        section: Mapping[str, Any] = self.data["mlflow"]  # the schema made it a mapping
        return section

    @property
    def registry(self) -> Mapping[str, Any]:
        section: Mapping[str, Any] = self.mlflow["model_registry"]  # the schema made it a mapping
        return section

    @property
    def training(self) -> Mapping[str, Any]:
        section: Mapping[str, Any] = self.data["training"]  # the schema made it a mapping
        return section

    @property
    def primary_metric(self) -> str:
        return str(self.training["primary_metric"])

    @property
    def default_models(self) -> list[str]:
        return list(self.training["models"])

    @property
    def auto_transition_to_staging(self) -> bool:
        return bool(self.registry.get("auto_transition_to_staging", False))

    def model_settings(self, model_type: str) -> Mapping[str, Any]:
        """`params` and `grid` of one model type (empty when the config leaves it out)."""
        settings: Mapping[str, Any] = self.data["models"].get(model_type) or {}
        return settings

    def registered_model_name(self, model_type: str) -> str:
        """`Accident_Prediction_XGBoost` and so on, from the configured base name."""
        return f"{self.registry['registered_model_name']}_{REGISTERED_SUFFIX[model_type]}"


def load_config(path: Path | str = DEFAULT_CONFIG) -> Config:
    """Read and validate a model config; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the model config: {exc.strerror or exc}") from exc
    # The one YAML reader (regops.files.yamlio): keys as written, no aliases, bounded nesting,
    # and a value YAML cannot construct is a problem at its line, never a crash.
    doc = yamlio.read(text, what="the model config")
    if doc.problems:
        problems = [f"{path}:{line}: {message}" for line, message in sorted(doc.problems)]
        raise ConfigError(
            f"invalid model config ({len(problems)} problem(s)):\n" + "\n".join(problems)
        )
    data, lines = doc.data, dict(doc.lines)
    config = Config(path, data if isinstance(data, dict) else {}, lines)
    problems = [f"{config.where(*p)}: {m}" for p, m in _schema_problems(data)]
    if not problems:
        problems = [f"{config.where(*p)}: {m}" for p, m in _param_problems(config)]
    if problems:
        raise ConfigError(
            f"invalid model config ({len(problems)} problem(s)):\n" + "\n".join(problems)
        )
    return config


def _schema_problems(data: Any) -> Iterator[tuple[KeyPath, str]]:
    errors = sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.path])
    for err in errors:
        yield from _explain(err)


def _explain(err: ValidationError) -> Iterator[tuple[KeyPath, str]]:
    path: KeyPath = tuple(err.absolute_path)
    where = ".".join(map(str, path)) or "the top level"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        for key in sorted(k for k in err.instance if k not in allowed):
            hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
            yield (*path, key), f"unknown key {key!r} in {where}{hint}"
        return
    if "propertyNames" in err.relative_schema_path:
        yield (*path, err.instance), f"{err.instance!r} in {where} is not a known metric"
    elif err.validator == "required":
        yield path, f"{where}: {err.message.replace('is a required property', 'is required')}"
    elif err.validator in ("enum", "const"):
        allowed = err.validator_value if err.validator == "enum" else [err.validator_value]
        yield path, f"{where}: {err.instance!r} is not one of: {', '.join(map(str, allowed))}"
    elif err.validator == "type":
        got = f"{type(err.instance).__name__} {err.instance!r}"
        yield path, f"{where}: expected {err.validator_value}, got {got}"
    else:
        yield path, f"{where}: {err.message}"


def _param_problems(config: Config) -> Iterator[tuple[KeyPath, str]]:
    """Classifier parameter names the classes do not know, found by building each one."""
    # Imported here: the schema checks above must not pay for sklearn/xgboost imports.
    from accident_prediction.models import unknown_params

    for model_type in MODEL_TYPES:
        settings = config.model_settings(model_type)
        for section in ("params", "grid"):
            for name in unknown_params(model_type, settings.get(section) or {}):
                yield (
                    ("models", model_type, section, name),
                    f"models.{model_type}.{section}: {name!r} is not a parameter of the "
                    f"{model_type} classifier",
                )
