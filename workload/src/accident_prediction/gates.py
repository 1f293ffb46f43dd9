"""The two promotion gates and their evidence on the model version.

validation: `mlflow.models.evaluate` on the held-out test split, then
`mlflow.validate_evaluation_results` with the configured `MetricThreshold`s against the
absolute floors and the current champion (Production version, else `champion` alias).
smoke test: load `models:/NAME/N` as a pyfunc here, predict on example records, check that
the signature rejects bad input, check output shape and labels, time single-row calls.

Each gate returns a `GateResult`; `record_result` writes it as tags (`validation_status`,
`smoke_test_status` and the figures) plus a JSON report in the version's run. The
reconciler reads only the tags.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from accident_prediction.errors import ModelLoadError, describe_exception
from accident_prediction.features import FEATURES, TARGET
from accident_prediction.model_source import ModelRef, by_version, champion
from accident_prediction.predict import load_registered

if TYPE_CHECKING:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models import EvaluationResult

PASSED, FAILED = "passed", "failed"
# Figures recorded as `validation.<metric>` whatever the thresholds are.
REPORTED_METRICS = (
    "roc_auc",
    "f1_score",
    "accuracy_score",
    "precision_score",
    "recall_score",
    "log_loss",
    "precision_recall_auc",
)
LABELS = {0, 1}
LOWER_IS_BETTER = {"log_loss"}
_METRIC_ALIASES = {
    "f1": "f1_score",
    "accuracy": "accuracy_score",
    "precision": "precision_score",
    "recall": "recall_score",
    "pr_auc": "precision_recall_auc",
}
_TAG_MAX = 5000  # MLflow's limit on a tag value


@dataclass(frozen=True)
class Threshold:
    """One metric's gate, in MLflow's MetricThreshold terms."""

    metric: str
    threshold: float | None = None  # absolute floor (ceiling if lower is better)
    min_absolute_change: float | None = None  # vs champion; MLflow requires > 0
    min_relative_change: float | None = None  # vs champion; 0.0 = not worse than it
    greater_is_better: bool = True


@dataclass(frozen=True)
class ValidationSettings:
    """The `validation` block of config/model_config.yaml, in MLflow's metric names."""

    primary_metric: str = "roc_auc"  # recorded on the version; ranks models for --use-best-model
    thresholds: tuple[Threshold, ...] = (Threshold("roc_auc", 0.70),)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ValidationSettings:
        """Read `validation: {thresholds: {metric: floor}, champion: {metric, min_*_change}}`.

        Floors apply always; the champion margins only when there is a champion. Metric
        names may be the short ones of the training report (`f1`) or MLflow's (`f1_score`).
        """
        block = config.get("validation") or {}
        floors = {
            mlflow_metric_name(str(k)): float(v) for k, v in (block.get("thresholds") or {}).items()
        }
        champ = block.get("champion") or {}
        compared = mlflow_metric_name(str(champ.get("metric", "roc_auc")))
        margins = {
            "min_absolute_change": _opt_float(champ.get("min_absolute_change")),
            "min_relative_change": _opt_float(champ.get("min_relative_change")),
        }
        if not floors and not block:
            return cls()
        thresholds = tuple(
            Threshold(
                metric,
                threshold=floors.get(metric),
                greater_is_better=metric not in LOWER_IS_BETTER,
                **(margins if metric == compared else {}),
            )
            for metric in dict.fromkeys([*floors, compared])
        )
        training = config.get("training") or {}
        primary = mlflow_metric_name(str(training.get("primary_metric", compared)))
        return cls(primary, thresholds)


def mlflow_metric_name(name: str) -> str:
    """`f1` -> `f1_score`: the training report's short names, as mlflow.evaluate names them."""
    return _METRIC_ALIASES.get(name, name)


@dataclass
class GateResult:
    """One gate's verdict on one version, with the evidence to record."""

    gate: str  # "validation" | "smoke_test"
    name: str
    version: str
    run_id: str | None
    passed: bool
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # -> `<gate>.<key>` tags
    report: dict[str, Any] = field(default_factory=dict)  # -> `<gate>/report.json`

    @property
    def status(self) -> str:
        return PASSED if self.passed else FAILED

    def summary(self) -> str:
        """One line per version for the command output."""
        head = f"{self.name} v{self.version}: {self.gate.replace('_', ' ')} {self.status}"
        if self.gate == "validation":
            shown = [f"{k}={v}" for k, v in self.figures.items() if k in REPORTED_METRICS[:2]]
            shown.append(f"champion={self.figures.get('champion_version', 'none')}")
        else:
            shown = [f"{k}={self.figures[k]}" for k in ("p50_ms", "p95_ms") if k in self.figures]
        text = f"{head} ({', '.join(shown)})" if shown else head
        return "\n".join([text, *(f"  - {f}" for f in self.failures)])


# --------------------------------------------------------------------------- validation


def validate_version(
    client: MlflowClient,
    name: str,
    version: str,
    eval_data: pd.DataFrame,
    settings: ValidationSettings,
    *,
    stages: bool = True,
    data_fingerprint: str | None = None,
) -> GateResult:
    """Evaluate a version on `eval_data` (FEATURES + TARGET) and gate it (no tags written)."""
    import mlflow
    from mlflow.models.evaluation.validation import ModelValidationFailedException

    candidate = by_version(client, name, version)
    champ = champion(client, name, stages=stages)
    notes: list[str] = []
    if champ is not None and champ.version == candidate.version:
        notes.append(f"v{candidate.version} is itself the champion: thresholds only")
        champ = None
    result = GateResult("validation", name, candidate.version, candidate.run_id, passed=False)
    experiment_id = _experiment_of(client, candidate)
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"validate {name} v{candidate.version}",
        tags={"gate": "validation", "model_name": name, "model_version": candidate.version},
    ) as run:
        result.figures["run_id"] = run.info.run_id
        try:
            cand_eval = _evaluate(candidate, eval_data)
        except Exception as exc:  # the candidate's own failure is a verdict, not a crash
            result.failures.append(f"candidate could not be evaluated: {describe_exception(exc)}")
            cand_eval = None
        base_eval = None
        if champ is not None and cand_eval is not None:
            with mlflow.start_run(
                nested=True,
                experiment_id=experiment_id,
                run_name=f"champion {name} v{champ.version}",
            ):
                try:
                    base_eval = _evaluate(champ, eval_data)
                except Exception as exc:
                    # An unloadable champion must not block its replacement: floors only.
                    notes.append(
                        f"champion v{champ.version} could not be evaluated "
                        f"({describe_exception(exc)}): thresholds only"
                    )
        if cand_eval is not None:
            thresholds = _metric_thresholds(settings, with_champion=base_eval is not None)
            try:
                mlflow.validate_evaluation_results(thresholds, cand_eval, base_eval)
                result.passed = True
            except ModelValidationFailedException as exc:
                result.failures.extend(
                    line.strip() for line in str(exc.message).splitlines() if line.strip()
                )
        compared = champ if base_eval is not None else None
        _fill_validation_evidence(
            result, settings, _metrics(cand_eval), _metrics(base_eval), compared, eval_data,
            data_fingerprint, notes,
        )  # fmt: skip
        result.report["evaluation_run_id"] = run.info.run_id
        mlflow.log_dict(result.report, "validation/report.json")
        mlflow.set_tag("validation_status", result.status)
    return result


def _fill_validation_evidence(
    result: GateResult,
    settings: ValidationSettings,
    cand_metrics: dict[str, float],
    base_metrics: dict[str, float],
    champ: ModelRef | None,
    eval_data: pd.DataFrame,
    data_fingerprint: str | None,
    notes: list[str],
) -> None:
    """The figures (future tags) and the JSON report of one validation."""
    gated = [t.metric for t in settings.thresholds]
    for metric in dict.fromkeys([*REPORTED_METRICS, *gated]):
        if metric in cand_metrics:
            result.figures[metric] = round(cand_metrics[metric], 6)
    result.figures["champion_version"] = champ.version if champ is not None else "none"
    for metric in gated:
        if metric in base_metrics:
            result.figures[f"champion.{metric}"] = round(base_metrics[metric], 6)
    result.figures["test_rows"] = len(eval_data)
    if data_fingerprint:
        result.figures["data_fingerprint"] = data_fingerprint
    result.report = {
        "gate": "validation",
        "model": result.name,
        "version": result.version,
        "model_run_id": result.run_id,
        "status": result.status,
        "failures": result.failures,
        "notes": notes,
        "champion": (
            {"version": champ.version, "source": champ.source, "metrics": base_metrics}
            if champ is not None
            else None
        ),
        "candidate_metrics": cand_metrics,
        "thresholds": [t.__dict__ for t in settings.thresholds],
        "primary_metric": settings.primary_metric,
        "test_rows": len(eval_data),
        "data_fingerprint": data_fingerprint,
    }


def _evaluate(ref: ModelRef, eval_data: pd.DataFrame) -> EvaluationResult:
    import mlflow

    result: EvaluationResult = mlflow.models.evaluate(
        model=ref.uri,
        data=eval_data,
        targets=TARGET,
        model_type="classifier",
        env_manager="local",
        # label_list: a weak model may predict one class only; the metrics still need both.
        evaluator_config={"log_model_explainability": False, "pos_label": 1, "label_list": [0, 1]},
    )
    return result


def _metric_thresholds(settings: ValidationSettings, *, with_champion: bool) -> dict[str, Any]:
    from mlflow.models import MetricThreshold

    out: dict[str, Any] = {}
    for t in settings.thresholds:
        absolute = t.min_absolute_change if with_champion else None
        relative = t.min_relative_change if with_champion else None
        if t.threshold is None and absolute is None and relative is None:
            continue  # a champion-only rule with no champion: nothing to check
        out[t.metric] = MetricThreshold(
            threshold=t.threshold,
            min_absolute_change=absolute,
            min_relative_change=relative,
            greater_is_better=t.greater_is_better,
        )
    return out


def _metrics(evaluation: EvaluationResult | None) -> dict[str, float]:
    if evaluation is None:
        return {}
    out = {}
    for key, value in evaluation.metrics.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isnan(number):
            out[key] = number
    return out


# --------------------------------------------------------------------------- smoke test


def smoke_test_version(
    client: MlflowClient, name: str, version: str, examples: pd.DataFrame, *, runs: int = 100
) -> GateResult:
    """Load the version as a pyfunc and exercise it on `examples` (no tags written)."""
    ref = by_version(client, name, version)
    result = GateResult("smoke_test", name, ref.version, ref.run_id, passed=False)
    checks: dict[str, str] = {}  # check -> "ok" | why it failed
    result.figures["model_uri"] = ref.uri
    result.figures["examples"] = len(examples)
    started = time.perf_counter()
    try:
        model = load_registered(ref)
    except ModelLoadError as exc:
        checks["load"] = str(exc)
        return _finish_smoke(result, checks)
    checks["load"] = "ok"
    result.figures["load_s"] = round(time.perf_counter() - started, 3)
    pyfunc = model.predictor

    if pyfunc.metadata.get_input_schema() is None:
        checks["signature"] = "the model has no input signature: bad input would reach it unchecked"
    else:
        checks["signature"] = "ok"
        for check, bad in _bad_inputs(examples).items():
            checks[check] = _expect_rejected(pyfunc, bad)

    try:
        output = pyfunc.predict(examples)
    except Exception as exc:
        checks["predict"] = f"prediction on the examples failed: {describe_exception(exc)}"
        return _finish_smoke(result, checks)
    checks["predict"] = "ok"
    checks["shape"], checks["labels"] = _check_output(output, len(examples))

    # Single-row latency after load: what one request costs, schema enforcement included.
    rows = [examples.iloc[[i % len(examples)]] for i in range(runs)]
    for row in rows[:5]:
        pyfunc.predict(row)  # warm-up: first calls pay lazy initialisation
    timings = []
    for row in rows:
        tick = time.perf_counter()
        pyfunc.predict(row)
        timings.append((time.perf_counter() - tick) * 1000)
    cuts = statistics.quantiles(timings, n=100, method="inclusive")
    result.figures["p50_ms"] = round(statistics.median(timings), 3)
    result.figures["p95_ms"] = round(cuts[94], 3)
    result.figures["latency_runs"] = runs
    return _finish_smoke(result, checks)


def _bad_inputs(examples: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Inputs a signature must refuse: a missing column, and text where a number belongs."""
    numeric = next(c for c, k in FEATURES.items() if k == "int")
    category = next(c for c, k in FEATURES.items() if k == "category")
    return {
        "rejects_missing_column": examples.drop(columns=[numeric]),
        "rejects_text_for_number": examples.assign(**{numeric: "forty"}),
        "rejects_number_for_category": examples.assign(**{category: 7}),
    }


def _expect_rejected(pyfunc: Any, bad: pd.DataFrame) -> str:
    from mlflow.exceptions import MlflowException

    try:
        pyfunc.predict(bad)
    except MlflowException as exc:
        if exc.error_class == "SCHEMA_ENFORCEMENT_FAILED" or "enforce schema" in str(exc):
            return "ok"
        return f"rejected, but not by the signature: {describe_exception(exc)}"
    except Exception as exc:
        return f"rejected, but not by the signature: {describe_exception(exc)}"
    missing = [c for c in FEATURES if c not in bad.columns]
    what = f"without column {missing[0]}" if missing else "with wrongly typed values"
    return f"input {what} was accepted"


def _check_output(output: Any, expected_rows: int) -> tuple[str, str]:
    import numpy as np

    values = np.asarray(output)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    shape = (
        "ok"
        if values.shape == (expected_rows,)
        else (f"output shape {values.shape}, expected ({expected_rows},)")
    )
    try:
        found = {v.item() if hasattr(v, "item") else v for v in values.reshape(-1)}
    except TypeError:
        return shape, "unhashable predictions"
    stray = sorted((v for v in found if v not in LABELS), key=str)
    labels = "ok" if not stray else f"predictions {stray[:5]} are outside the labels {{0, 1}}"
    return shape, labels


def _finish_smoke(result: GateResult, checks: dict[str, str]) -> GateResult:
    result.failures = [f"{check}: {why}" for check, why in checks.items() if why != "ok"]
    result.passed = not result.failures
    result.figures["checks_passed"] = ",".join(c for c, why in checks.items() if why == "ok")
    result.report = {
        "gate": "smoke_test",
        "model": result.name,
        "version": result.version,
        "model_run_id": result.run_id,
        "status": result.status,
        "checks": checks,
        "figures": dict(result.figures),
    }
    return result


# --------------------------------------------------------------------------- evidence


def record_result(client: MlflowClient, result: GateResult) -> None:
    """Write `<gate>_status`, `<gate>.<figure>` tags and `<gate>/report.json` on the version."""
    prefix = f"{result.gate}."
    tags = {f"{result.gate}_status": result.status}
    tags.update({prefix + k: _tag(v) for k, v in result.figures.items()})
    tags[prefix + "failures"] = _tag("; ".join(result.failures)) if result.failures else "none"
    if result.run_id:
        artifact = f"{result.gate}/report.json"
        client.log_dict(result.run_id, result.report, artifact)
        tags[prefix + "report"] = f"runs:/{result.run_id}/{artifact}"
    stale = [
        k
        for k in client.get_model_version(result.name, result.version).tags
        if k.startswith(prefix) and k not in tags
    ]
    for key in stale:  # figures of an earlier run of this gate would mislead (e.g. a champion)
        client.delete_model_version_tag(result.name, result.version, key)
    for key, value in tags.items():
        client.set_model_version_tag(result.name, result.version, key, value)


def _experiment_of(client: MlflowClient, ref: ModelRef) -> str | None:
    """Evaluation runs go next to the training run they judge."""
    if not ref.run_id:
        return None
    try:
        return str(client.get_run(ref.run_id).info.experiment_id)
    except Exception:  # the run may live in a store we cannot read: default experiment
        return None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _tag(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _TAG_MAX else text[: _TAG_MAX - 3] + "..."
