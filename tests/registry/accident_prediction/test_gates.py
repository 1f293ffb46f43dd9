"""The promotion gates against a real sqlite registry with small trained models."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from click.testing import CliRunner

from accident_prediction.cli import main
from accident_prediction.config import load_config
from accident_prediction.data import load_splits
from accident_prediction.features import TARGET
from accident_prediction.gates import (
    Threshold,
    ValidationSettings,
    record_result,
    smoke_test_version,
    validate_version,
)
from accident_prediction.inputs import load_records, to_frame
from tests.support.accident import EXAMPLES, LR, SAMPLE, XGB, Registry, split_ref

pytestmark = pytest.mark.slow


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def eval_data(registry: Registry):  # noqa: ANN201 - a DataFrame
    splits = load_splits(load_config(registry.config_path), sample=SAMPLE)
    return splits.X_test.assign(**{TARGET: splits.y_test.to_numpy()})


def report_of(tags: dict[str, str]) -> dict:
    """The JSON report a gate logged in the version's run, via the tag that points at it."""
    return json.loads(Path(mlflow.artifacts.download_artifacts(tags_uri(tags))).read_text())


def tags_uri(tags: dict[str, str]) -> str:
    gate = "validation" if "validation.report" in tags else "smoke_test"
    return tags[f"{gate}.report"]


# --------------------------------------------------------------------------- good candidate


def test_good_candidate_passes_both_gates_and_gets_its_evidence(serving_registry: Registry):
    reg = serving_registry
    name, version = split_ref(reg.template.versions["logistic_regression"])
    common = ["--config", str(reg.config_path), "--model-name", name, "--version", version]

    code, out, err = run("validate", *common, "--sample", str(SAMPLE))
    assert code == 0, out + err
    assert f"{name} v{version}: validation passed" in out

    code, out, err = run("smoke-test", *common)
    assert code == 0, out + err
    assert "smoke test passed" in out

    tags = reg.tags(name, version)
    assert tags["validation_status"] == "passed"
    assert tags["smoke_test_status"] == "passed"
    assert float(tags["validation.roc_auc"]) >= 0.70
    assert 0 < float(tags["validation.f1_score"]) <= 1
    assert tags["validation.champion_version"] == "none"
    assert tags["validation.failures"] == "none"
    assert float(tags["smoke_test.p50_ms"]) > 0
    assert float(tags["smoke_test.p95_ms"]) >= float(tags["smoke_test.p50_ms"])
    assert "rejects_missing_column" in tags["smoke_test.checks_passed"]
    report = report_of({k: v for k, v in tags.items() if k == "validation.report"})
    assert report["status"] == "passed"
    assert report["candidate_metrics"]["roc_auc"] == pytest.approx(
        float(tags["validation.roc_auc"])
    )
    smoke = report_of({"smoke_test.report": tags["smoke_test.report"]})
    assert set(smoke["checks"].values()) == {"ok"}


def test_candidate_as_good_as_the_champion_passes(serving_registry: Registry):
    """min_relative_change 0.0 (the config's): equal to the champion is good enough."""
    reg = serving_registry
    name, champion = split_ref(reg.template.versions["logistic_regression"])
    reg.set_stage(name, champion, "Production")
    same = reg.client.get_model_version(name, champion)
    candidate = str(reg.client.create_model_version(name, same.source, run_id=same.run_id).version)
    settings = ValidationSettings.from_config(load_config(reg.config_path).data)

    result = validate_version(reg.client, name, candidate, eval_data(reg), settings)

    assert result.passed, result.failures
    assert result.figures["champion_version"] == champion
    assert result.figures["champion.roc_auc"] == result.figures["roc_auc"]


# --------------------------------------------------------------------------- weak candidate


def test_weak_candidate_fails_validation_against_the_champion(serving_registry: Registry):
    reg = serving_registry
    name, champion = split_ref(reg.template.versions["logistic_regression"])
    _, weak = split_ref(reg.template.versions["weak"])
    reg.set_stage(name, champion, "Production")
    # No absolute floor: only the comparison with the champion can fail it.
    settings = ValidationSettings("roc_auc", (Threshold("roc_auc", min_relative_change=0.0),))

    result = validate_version(reg.client, name, weak, eval_data(reg), settings)
    record_result(reg.client, result)

    assert not result.passed
    assert any("minimum relative change check failed" in f for f in result.failures)
    tags = reg.tags(name, weak)
    assert tags["validation_status"] == "failed"
    assert tags["validation.champion_version"] == champion
    assert float(tags["validation.roc_auc"]) < float(tags["validation.champion.roc_auc"])
    assert "baseline model roc_auc" in tags["validation.failures"]


def test_weak_candidate_fails_the_command_and_regops_plan_blocks_it(
    serving_registry: Registry, tmp_path: Path
):
    """Exit 2 with the reasons; the evidence is what the reconciler's `require_tags` reads."""
    from regops.cli import cli as regops

    reg = serving_registry
    name, weak = split_ref(reg.template.versions["weak"])
    code, out, err = run(
        "validate", "--config", str(reg.config_path), "--model-name", name, "--version", weak,
        "--sample", str(SAMPLE),
    )  # fmt: skip
    assert code == 2  # a failed gate, not "could not run" (1)
    assert f"{name} v{weak}: validation failed" in out
    assert "roc_auc value threshold check failed" in out
    assert "Traceback" not in out + err
    assert reg.tags(name, weak)["validation_status"] == "failed"

    state = tmp_path / "state"
    state.mkdir()
    (state / "accident_prediction.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "regops/v1",
                "policy": {
                    "stages": {"Staging": {"require_tags": {"validation_status": "passed"}}}
                },
                "models": {name: {"versions": {weak: {"stage": "Staging"}}}},
            }
        )
    )
    result = CliRunner().invoke(
        regops, ["--tracking-uri", reg.uri, "--state-dir", str(state), "plan"]
    )
    assert result.exit_code == 1, result.output
    assert "validation_status" in result.output
    stage = reg.client.get_model_version(name, weak).current_stage
    assert stage == "None"  # plan writes nothing


def test_a_candidate_that_cannot_be_loaded_fails_validation(serving_registry: Registry):
    reg = serving_registry
    name, version = split_ref(reg.template.versions["corrupted"])
    settings = ValidationSettings.from_config(load_config(reg.config_path).data)

    result = validate_version(reg.client, name, version, eval_data(reg), settings)

    assert not result.passed
    assert result.failures[0].startswith("candidate could not be evaluated: ")
    assert "model.skops" in result.failures[0]


# --------------------------------------------------------------------------- smoke test


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("no_signature", "signature: the model has no input signature"),
        ("regressor", "outside the labels {0, 1}"),
        ("corrupted", "load: cannot load models:/Accident_Prediction_Broken/3"),
    ],
    ids=["no-signature", "scores-not-labels", "damaged-files"],
)
def test_smoke_test_rejects_a_broken_model(serving_registry: Registry, role: str, expected: str):
    reg = serving_registry
    name, version = split_ref(reg.template.versions[role])
    examples = to_frame(load_records(EXAMPLES))

    result = smoke_test_version(reg.client, name, version, examples, runs=10)
    record_result(reg.client, result)

    assert not result.passed
    assert any(expected in f for f in result.failures), result.failures
    tags = reg.tags(name, version)
    assert tags["smoke_test_status"] == "failed"
    assert expected.split(": ", 1)[-1][:30] in tags["smoke_test.failures"]


def test_smoke_test_command_exits_2_on_a_broken_model(serving_registry: Registry):
    """A failed gate exits 2 (1 is kept for "could not run"); --keep-going exits 0."""
    reg = serving_registry
    name, version = split_ref(reg.template.versions["regressor"])
    args = ["smoke-test", "--config", str(reg.config_path), "--model-name", name]
    code, out, err = run(*args, "--version", version)
    assert code == 2
    assert "smoke test failed" in out
    assert "1 of 1 failed" in err
    assert "Traceback" not in out + err
    code, out, err = run(*args, "--version", version, "--keep-going")
    assert code == 0
    assert "1 of 1 failed" in err
    assert reg.tags(name, version)["smoke_test_status"] == "failed"


def test_a_gate_that_cannot_run_exits_1(serving_registry: Registry, monkeypatch, dead_port):
    """An unreachable registry is "could not run" (1), even with --keep-going."""
    reg = serving_registry
    name, version = split_ref(reg.template.versions["regressor"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{dead_port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    code, out, err = run(
        "smoke-test", "--config", str(reg.config_path), "--model-name", name,
        "--version", version, "--keep-going",
    )  # fmt: skip
    assert code == 1, out + err
    assert "Traceback" not in out + err


# --------------------------------------------------------------------------- --all-new


def test_all_new_gates_every_version_of_the_latest_training_run(serving_registry: Registry):
    reg = serving_registry
    trained = [split_ref(reg.template.versions[t]) for t in ("logistic_regression", "xgboost")]
    config = ["--config", str(reg.config_path)]

    code, out, err = run("validate", *config, "--all-new", "--sample", str(SAMPLE))
    assert code == 0, out + err
    code, out, err = run("smoke-test", *config, "--all-new")
    assert code == 0, out + err

    for name, version in trained:
        tags = reg.tags(name, version)
        assert (tags["validation_status"], tags["smoke_test_status"]) == ("passed", "passed")
    # Versions from outside that training run are left alone.
    _, weak = split_ref(reg.template.versions["weak"])
    assert "validation_status" not in reg.tags(LR, weak)


def test_all_new_without_the_manifest_uses_the_training_run_group_tag(
    serving_registry: Registry, tmp_path: Path
):
    reg = serving_registry
    data = yaml.safe_load(reg.config_path.read_text())
    data["data"]["metrics_dir"] = str(tmp_path / "no-metrics-here")
    reg.config_path.write_text(yaml.safe_dump(data, sort_keys=False))

    code, out, err = run(
        "smoke-test", "--config", str(reg.config_path), "--all-new", "--model-name", XGB
    )
    assert code == 0, out + err
    _, version = split_ref(reg.template.versions["xgboost"])
    assert out.startswith(f"{XGB} v{version}: smoke test passed")


# --------------------------------------------------------------------------- usage and errors


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--model-name", LR], 2, "give --model-name NAME --version N, or --all-new"),
        (["--all-new", "--version", "1"], 2, "--all-new and --version are exclusive"),
        (["--model-name", "Nope", "--version", "1"], 1, "no registered model 'Nope'"),
        (["--model-name", LR, "--version", "42"], 1, "has no version '42'; its versions: 1 (None)"),
    ],
    ids=["no-version", "all-new-and-version", "unknown-model", "unknown-version"],
)
def test_gate_commands_report_bad_targets(
    serving_registry: Registry, args: list[str], code: int, message: str
):
    for command in ("validate", "smoke-test"):
        got, out, err = run(command, "--config", str(serving_registry.config_path), *args)
        assert got == code
        assert message in err
        assert "Traceback" not in out + err


def test_record_result_drops_figures_of_an_earlier_run(serving_registry: Registry):
    reg = serving_registry
    name, version = split_ref(reg.template.versions["xgboost"])
    reg.set_tag(name, version, "smoke_test.p99_ms", "12.0")  # from some older smoke test
    examples = to_frame(load_records(EXAMPLES))

    record_result(reg.client, smoke_test_version(reg.client, name, version, examples, runs=10))

    tags = reg.tags(name, version)
    assert tags["smoke_test_status"] == "passed"
    assert "smoke_test.p99_ms" not in tags


# --------------------------------------------------------------------------- settings (pure)


def test_settings_read_the_config_block_in_mlflow_metric_names():
    config = {
        "training": {"primary_metric": "roc_auc"},
        "validation": {
            "thresholds": {"roc_auc": 0.7, "f1": 0.4, "log_loss": 0.6},
            "champion": {"metric": "roc_auc", "min_absolute_change": None,
                         "min_relative_change": 0.0},
        },
    }  # fmt: skip
    settings = ValidationSettings.from_config(config)
    assert settings.primary_metric == "roc_auc"
    assert settings.thresholds == (
        Threshold("roc_auc", 0.7, None, 0.0, True),
        Threshold("f1_score", 0.4, None, None, True),
        Threshold("log_loss", 0.6, None, None, False),
    )


def test_settings_default_to_a_roc_auc_floor_when_the_block_is_absent():
    assert ValidationSettings.from_config({}).thresholds == (Threshold("roc_auc", 0.70),)
