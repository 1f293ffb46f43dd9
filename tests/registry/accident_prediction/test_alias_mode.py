"""The workload in alias mode (`policy.use_stages: false`): champion replaces Production,
training proposes `challenger`. Tiny: one trained template, one small training run."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from accident_prediction.cli import main
from tests.support.accident import EXAMPLES, LR, REPO, SAMPLE, XGB, Registry, split_ref

ALIAS_ONLY = """\
apiVersion: regops/v1
policy:
  use_stages: false
  aliases:
    challenger: {require_tags: {validation_status: passed}}
models: {}
"""


def accident(*args: str) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(main, list(args))


@pytest.fixture
def served(serving_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """LR v1 and XGBoost v1 in Production (the stage era); champion is LR's weak v2 and
    XGBoost v1. The working directory holds an alias-only state once `alias_only()` runs."""
    reg = serving_registry
    monkeypatch.chdir(tmp_path)
    versions = reg.template.versions
    for role, roc_auc in (("logistic_regression", "0.71"), ("xgboost", "0.74")):
        name, version = split_ref(versions[role])
        reg.set_stage(name, version, "Production")
        reg.set_tag(name, version, "validation.roc_auc", roc_auc)
    _, weak = split_ref(versions["weak"])
    reg.set_tag(LR, weak, "validation.roc_auc", "0.52")
    reg.set_alias(LR, weak, "champion")
    reg.set_alias(XGB, split_ref(versions["xgboost"])[1], "champion")
    return reg


def alias_only(root: Path) -> None:
    (root / "registry-state").mkdir(exist_ok=True)
    (root / "registry-state" / "accident_prediction.yaml").write_text(ALIAS_ONLY)


def used(result: Result) -> tuple[str, str, str]:
    assert result.exit_code == 0, result.output
    model = json.loads(result.stdout)["model"]
    return model["name"], model["version"], model["source"]


def test_predict_follows_champion_when_stages_are_off(served: Registry, tmp_path: Path) -> None:
    config = ("--config", str(served.config_path))
    lr1 = split_ref(served.template.versions["logistic_regression"])[1]
    weak = split_ref(served.template.versions["weak"])[1]
    # Stage era: Production wins.
    assert used(accident("predict", str(EXAMPLES), *config, "--model-name", LR)) == (
        LR,
        lr1,
        "stage Production",
    )
    alias_only(tmp_path)
    assert used(accident("predict", str(EXAMPLES), *config, "--model-name", LR)) == (
        LR,
        weak,
        "alias champion",
    )
    name, _version, source = used(
        accident("predict", str(EXAMPLES), *config, "--use-mlflow-production")
    )
    assert (name, source) == (XGB, "alias champion")
    name, _version, source = used(accident("predict", str(EXAMPLES), *config, "--use-best-model"))
    assert (name, source) == (XGB, "best of 2 by validation.roc_auc=0.7400 (alias champion)")


def test_validate_compares_against_the_champion_alias(served: Registry, tmp_path: Path) -> None:
    alias_only(tmp_path)
    lr1 = split_ref(served.template.versions["logistic_regression"])[1]
    weak = split_ref(served.template.versions["weak"])[1]
    result = accident("validate", "--config", str(served.config_path), "--model-name", LR,
                      "--version", lr1)  # fmt: skip
    assert f"champion={weak}" in result.output, result.output


@pytest.mark.slow
def test_training_proposes_challenger_in_an_alias_only_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    monkeypatch.chdir(tmp_path)
    data = yaml.safe_load((REPO / "config" / "model_config.yaml").read_text(encoding="utf-8"))
    data["training"]["n_jobs"] = 1
    data["mlflow"]["tracking_uri"] = sqlite_uri
    data["mlflow"]["log_artifacts"] = False
    data["mlflow"]["model_registry"]["auto_transition_to_staging"] = True
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "model_config.yaml").write_text(yaml.safe_dump(data))
    alias_only(tmp_path)
    result = accident("train", "--models", "logistic_regression", "--sample", str(SAMPLE))
    assert result.exit_code == 0, result.output
    name = "Accident_Prediction_Logistic_Regression"
    assert f"{name} v1 -> alias challenger" in result.output
    state = (tmp_path / "registry-state" / "accident_prediction.yaml").read_text()
    assert state.startswith(ALIAS_ONLY.replace("models: {}\n", "models:\n"))
    assert f'  {name}:\n    versions:\n      "1": {{aliases: [challenger]}}\n' in state
    assert "stage" not in state.split("models:", 1)[1]
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
