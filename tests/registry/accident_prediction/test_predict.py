"""`accident predict`: every way of choosing the model, and every bad input's message."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from accident_prediction.cli import main
from accident_prediction.features import FEATURES
from tests.support.accident import BROKEN, EXAMPLES, LR, XGB, Registry, split_ref

RECORDS = json.loads(EXAMPLES.read_text())


def predict(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["predict", *args], env=env)


@pytest.fixture
def served(serving_registry: Registry) -> Registry:
    """What the reconciler would have set up: LR and XGBoost in Production (XGBoost the
    better by its recorded validation), LR's weak v2 in Staging as `challenger`."""
    reg = serving_registry
    versions = reg.template.versions
    for role, roc_auc in (("logistic_regression", "0.71"), ("xgboost", "0.74")):
        name, version = split_ref(versions[role])
        reg.set_stage(name, version, "Production")
        reg.set_tag(name, version, "validation.roc_auc", roc_auc)
    _, weak = split_ref(versions["weak"])
    reg.set_stage(LR, weak, "Staging")
    reg.set_alias(LR, weak, "challenger")
    return reg


def model_used(result: Result) -> dict[str, str]:
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    predictions = payload["predictions"]
    assert [p["record"] for p in predictions] == list(range(len(RECORDS)))
    for p in predictions:
        assert p["predicted_class"] in (0, 1)
        assert 0.0 <= p["probability_severe"] <= 1.0
        # Both come from the same pipeline: the class is the more likely one.
        assert p["predicted_class"] == int(p["probability_severe"] > 0.5)
    return payload["model"]  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- choosing the model


@pytest.mark.parametrize(
    ("args", "env", "expected", "source"),
    [
        (["--model-name", LR, "--stage", "Production"], {}, (LR, "1"), "stage Production"),
        (["--model-name", LR, "--stage", "staging"], {}, (LR, "2"), "stage Staging"),
        (["--model-name", LR, "--version", "2"], {}, (LR, "2"), "version 2"),
        (["--model-name", LR, "--alias", "challenger"], {}, (LR, "2"), "alias challenger"),
        (["--model-name", LR], {}, (LR, "1"), "stage Production"),
        (["--use-best-model"], {}, (XGB, "1"), "best of 2 by validation.roc_auc=0.7400"),
        (["--use-mlflow-production"], {}, (XGB, "1"), "stage Production"),
        ([], {"USE_BEST_MODEL": "true"}, (XGB, "1"), "best of 2"),
        ([], {"USE_MLFLOW_PRODUCTION": "TRUE"}, (XGB, "1"), "stage Production"),
        (["--model-name", LR, "--version", "1"], {"USE_BEST_MODEL": "true"}, (LR, "1"), "version"),
    ],
    ids=[
        "stage", "stage-any-case", "version", "alias", "name-alone-is-its-champion",
        "best-model", "mlflow-production", "env-best-model", "env-mlflow-production",
        "flags-beat-env",
    ],
)  # fmt: skip
def test_each_option_serves_the_expected_model(
    served: Registry, args: list[str], env: dict[str, str], expected: tuple[str, str], source: str
):
    result = predict(str(EXAMPLES), "--config", str(served.config_path), *args, env=env)
    model = model_used(result)
    assert (model["name"], model["version"]) == expected
    assert model["source"].startswith(source)
    assert model["uri"] == f"models:/{expected[0]}/{expected[1]}"
    assert result.stderr == ""


def test_best_model_follows_the_recorded_validation_metric(served: Registry):
    name, version = split_ref(served.template.versions["logistic_regression"])
    served.set_tag(name, version, "validation.roc_auc", "0.90")
    model = model_used(predict(str(EXAMPLES), "--config", str(served.config_path),
                               "--use-best-model"))  # fmt: skip
    assert (model["name"], model["version"]) == (LR, version)


def test_best_model_by_a_lower_is_better_metric(served: Registry):
    from accident_prediction.model_source import best_production

    for role, loss in (("logistic_regression", "0.52"), ("xgboost", "0.55")):
        served.set_tag(*split_ref(served.template.versions[role]), "validation.log_loss", loss)
    ref = best_production(served.client, ("validation.log_loss",), higher_is_better=False)
    assert (ref.name, ref.source) == (
        LR,
        "best of 2 by validation.log_loss=0.5200 (stage Production)",
    )


def test_mlflow_production_falls_back_to_the_champion_alias(served: Registry):
    """Registries without stages (Unity Catalog) mark the serving version by alias."""
    name, version = split_ref(served.template.versions["xgboost"])
    served.set_stage(name, version, "Archived")
    served.set_alias(name, version, "champion")
    model = model_used(predict(str(EXAMPLES), "--config", str(served.config_path),
                               "--use-mlflow-production"))  # fmt: skip
    assert (model["name"], model["version"], model["source"]) == (XGB, version, "alias champion")


def test_model_path_loads_the_joblib_file_and_warns_it_is_a_pickle(served: Registry):
    path = served.template.joblib_paths["xgboost"]
    result = predict(str(EXAMPLES), "--model-path", str(path))
    model = model_used(result)
    assert model["version"] is None
    assert model["source"] == f"file {path}"
    assert "development only" in result.stderr
    assert "pickles" in result.stderr
    # The same pipeline through the registry predicts the same.
    registry = predict(str(EXAMPLES), "--config", str(served.config_path),
                       "--use-mlflow-production")  # fmt: skip
    assert json.loads(registry.stdout)["predictions"] == json.loads(result.stdout)["predictions"]


def test_one_record_and_csv_inputs(served: Registry, tmp_path: Path):
    single = tmp_path / "one.json"
    single.write_text(json.dumps(RECORDS[0]))
    table = tmp_path / "records.csv"
    with table.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(FEATURES))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in RECORDS)
    config = ["--config", str(served.config_path), "--model-name", LR, "--version", "1"]

    one = json.loads(predict(str(single), *config).stdout)["predictions"]
    from_csv = predict(str(table), *config)
    model_used(from_csv)
    from_json = json.loads(predict(str(EXAMPLES), *config).stdout)["predictions"]

    assert len(one) == 1
    assert one[0] == from_json[0]
    assert json.loads(from_csv.stdout)["predictions"] == from_json


def test_output_file(served: Registry, tmp_path: Path):
    out = tmp_path / "predictions.json"
    result = predict(str(EXAMPLES), "--config", str(served.config_path),
                     "--use-mlflow-production", "--output", str(out))  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["model"]["name"] == XGB


def test_output_file_that_cannot_be_written(served: Registry, tmp_path: Path):
    out = tmp_path / "missing" / "predictions.json"
    result = predict(str(EXAMPLES), "--config", str(served.config_path),
                     "--use-mlflow-production", "--output", str(out))  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot write {out}: No such file or directory")
    assert "Traceback" not in result.output
    assert not out.parent.exists()


# --------------------------------------------------------------------------- bad input


def _records(**changes: object) -> list[dict[str, object]]:
    """The examples with record 1 changed (a None value removes the field)."""
    records = [dict(r) for r in RECORDS]
    for key, value in changes.items():
        if value is None:
            del records[1][key]
        else:
            records[1][key] = value
    return records


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (_records(ageOFocc=None), ".json", "record 1: missing field 'ageOFocc'"),
        (_records(ageOFocc="forty"), ".json",
         "record 1: field 'ageOFocc' must be an integer, got \"forty\""),
        (_records(yearVeh="1990"), ".json",
         "record 1: field 'yearVeh' must be a number or null, got \"1990\""),
        (_records(dvcat="30-40"), ".json", "record 1: field 'dvcat' must be one of"),
        (_records(seatbelt=True), ".json", "record 1: field 'seatbelt' must be one of"),
        (_records(ageOFocc=200), ".json", "record 1: field 'ageOFocc' must be at most 120"),
        (_records(speed=50), ".json", "record 1: unknown field 'speed'"),
        ([], ".json", "no records"),
        ([1, 2], ".json", "record 0: expected an object of features, got 1"),
        ("not json", ".json", "not valid JSON (line 1, column 1)"),
        ("dvcat,airbag\n10-24,none\n", ".csv", "missing column(s) seatbelt, frontal"),
        ("CSV-BAD-AGE", ".csv", "record 1 (line 3): field 'ageOFocc' must be an integer"),
    ],
    ids=[
        "missing-field", "text-for-integer", "text-for-number", "unknown-category",
        "bool-for-category", "out-of-range", "unknown-field", "empty-list", "not-objects",
        "not-json", "csv-missing-columns", "csv-bad-cell",
    ],
)  # fmt: skip
def test_bad_input_names_the_record_and_field(
    tmp_path: Path, content: object, suffix: str, message: str
):
    path = tmp_path / f"input{suffix}"
    if content == "CSV-BAD-AGE":
        rows = [{k: ("" if v is None else v) for k, v in r.items()} for r in RECORDS]
        rows[1]["ageOFocc"] = "forty"
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(FEATURES))
            writer.writeheader()
            writer.writerows(rows)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    # Input is checked before any registry is contacted: no registry needed here.
    result = predict(str(path), "--model-name", LR, "--version", "1",
                     "--config", str(tmp_path / "absent.yaml"))  # fmt: skip
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_missing_features_file(tmp_path: Path):
    result = predict(str(tmp_path / "nope.json"), "--use-best-model")
    assert result.exit_code == 1
    assert "nope.json: no such file" in result.stderr


# --------------------------------------------------------------------------- bad model choice


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-name", "Nope"],
         f"no registered model 'Nope'; registered models: {BROKEN}, {LR}, {XGB}"),
        (["--model-name", LR, "--version", "9"],
         f"{LR} has no version '9'; its versions: 1 (Production), "
         "2 (Staging; aliases challenger)"),
        (["--model-name", LR, "--stage", "Prod"],
         "unknown stage 'Prod'; stages are None, Staging, Production, Archived"),
        (["--model-name", LR, "--stage", "Archived"], f"{LR} has no version in stage Archived"),
        (["--model-name", LR, "--alias", "champion"],
         f"{LR} has no alias 'champion'; its aliases: challenger -> 2"),
        (["--model-name", BROKEN],
         f"{BROKEN} has no version in stage Production and no alias 'champion'; its versions: "
         "1 (None), 2 (None), 3 (None)"),
        (["--model-name", BROKEN, "--version", "3"],
         f"cannot load models:/{BROKEN}/3 (version 3): FileNotFoundError"),
        (["--model-name", BROKEN, "--version", "2"],
         f"models:/{BROKEN}/2 (version 2) is not a severity classifier: it returned 0.3"),
    ],
    ids=[
        "unknown-model", "unknown-version", "unknown-stage", "empty-stage", "unknown-alias",
        "no-champion", "unloadable", "not-a-classifier",
    ],
)  # fmt: skip
def test_bad_model_choice_says_what_exists(served: Registry, args: list[str], message: str):
    result = predict(str(EXAMPLES), "--config", str(served.config_path), *args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr


def test_best_model_without_production_models(serving_registry: Registry):
    result = predict(str(EXAMPLES), "--config", str(serving_registry.config_path),
                     "--use-best-model")  # fmt: skip
    assert result.exit_code == 1
    assert "no Production model to choose from among Accident_Prediction_*" in result.stderr


def test_model_path_that_is_not_a_model(tmp_path: Path):
    junk = tmp_path / "xgboost_model.joblib"
    junk.write_bytes(b"not a pickle")
    result = predict(str(EXAMPLES), "--model-path", str(junk))
    assert result.exit_code == 1
    assert f"cannot load {junk}: " in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say which model"),
        (["--stage", "Production"], "--stage needs --model-name"),
        (["--model-name", LR, "--stage", "Staging", "--version", "1"], "are exclusive"),
        (["--use-best-model", "--model-path", "m.joblib"], "are exclusive"),
        (["--use-mlflow-production", "--model-name", LR, "--alias", "a"], "are exclusive"),
    ],
    ids=["nothing", "stage-alone", "stage-and-version", "two-modes", "production-and-alias"],
)
def test_usage_errors(args: list[str], message: str):
    result = predict(str(EXAMPLES), *args, env={"USE_BEST_MODEL": "", "USE_MLFLOW_PRODUCTION": ""})
    assert result.exit_code == 2
    assert message in result.stderr
