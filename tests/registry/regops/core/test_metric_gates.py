"""`require_metrics` gates: real runs with real logged metrics in a real registry (sqlite;
one test on a real `mlflow server`), planned and reconciled through the CLI."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops import api
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.cli import cli
from regops.core.audit import MetricEvidence, Stamp
from regops.core.plan import Plan
from regops.files import SCHEMAS
from regops.settings import Settings
from tests.support.repo import Repo, write_state
from tests.support.servers import MlflowServer

PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())

# champion must log auc >= 0.7 and beat the champion's by 0.005, and loss <= 0.6 and not
# be worse than the champion's (minimize, margin 0).
GATED = """\
apiVersion: regops/v1
policy:
  use_stages: false
  aliases:
    champion:
      require_metrics:
        auc: {min: 0.7, beats: champion, by: 0.005}
        loss: {goal: minimize, max: 0.6, beats: champion}
models:
  MODEL:
    versions:
      "1": {aliases: [champion]}
      "2": {}
"""


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", "registry-state"])


def new_version(uri: str, name: str, metrics: dict[str, float] | None) -> str:
    """A version of `name` whose source run logged `metrics` (None: a version without a
    run). Metrics are logged twice, a stale value first: the gate reads the latest."""
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if not c.search_registered_models(filter_string=f"name = '{name}'"):
            c.create_registered_model(name)
        run_id = None
        if metrics is not None:
            exp = c.get_experiment_by_name(name) or None
            exp_id = exp.experiment_id if exp else c.create_experiment(name)
            run = c.create_run(exp_id)
            run_id = run.info.run_id
            for key, value in metrics.items():
                c.log_metric(run_id, key, -1.0, step=0)
                c.log_metric(run_id, key, value, step=1)
            c.set_terminated(run_id)
        mv = c.create_model_version(name, source=f"s3://bucket/{name}", run_id=run_id)
    return str(mv.version)


def set_alias(uri: str, name: str, alias: str, version: str) -> None:
    MlflowClient(tracking_uri=uri, registry_uri=uri).set_registered_model_alias(
        name, alias, version
    )


def aliases(uri: str, name: str) -> dict[str, str]:
    m = MlflowClient(tracking_uri=uri, registry_uri=uri).get_registered_model(name)
    return {a: str(v) for a, v in m.aliases.items()}


def state(tmp_path: Path, text: str, name: str = "Fraud") -> Path:
    return write_state(tmp_path / "registry-state", text.replace("MODEL", name))


def champion_to(tmp_path: Path, version: str) -> None:
    path = tmp_path / "registry-state" / "models.yaml"
    text = path.read_text()
    text = text.replace("{aliases: [champion]}", "{}")
    text = text.replace(f'"{version}": {{}}', f'"{version}": {{aliases: [champion]}}')
    path.write_text(text)


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    monkeypatch.chdir(tmp_path)
    return sqlite_uri


def plan_json(uri: str) -> tuple[int, dict[str, object]]:
    result = regops(uri, "plan", "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def gate_rows(doc: dict[str, object]) -> list[dict[str, object]]:
    (change,) = doc["changes"]  # type: ignore[misc]
    return list(change["metrics"])  # type: ignore[index]


def start(uri: str, tmp_path: Path, v2: dict[str, float] | None) -> None:
    """Fraud v1 (auc 0.80, loss 0.40) holds champion live; v2 logged `v2`; the state moves
    champion to v2."""
    new_version(uri, "Fraud", {"auc": 0.80, "loss": 0.40})
    new_version(uri, "Fraud", v2)
    set_alias(uri, "Fraud", "champion", "1")
    state(tmp_path, GATED)
    champion_to(tmp_path, "2")


def test_better_candidate_passes_and_applies(uri: str, tmp_path: Path) -> None:
    start(uri, tmp_path, {"auc": 0.82, "loss": 0.35})
    code, doc = plan_json(uri)
    assert code == 0, doc
    rows = gate_rows(doc)
    assert [(r["metric"], r["passed"], r["candidate"], r["incumbent"]) for r in rows] == [
        ("auc", True, 0.82, 0.80),
        ("loss", True, 0.35, 0.40),
    ]
    assert rows[0]["incumbent_version"] == "1"
    assert (rows[0]["min"], rows[0]["by"], rows[1]["max"], rows[1]["goal"]) == (
        0.7,
        0.005,
        0.6,
        "minimize",
    )
    jsonschema.validate(doc, PLAN_SCHEMA)
    assert Plan.from_dict(doc).to_dict() == {**doc, "summary": Plan.from_dict(doc).summary()}
    # A saved plan carries the numbers and is applied as saved.
    assert regops(uri, "plan", "--out", "plan.json").exit_code == 0
    assert json.loads(Path("plan.json").read_text())["changes"][0]["metrics"] == rows
    result = regops(uri, "reconcile", "--plan", "plan.json")
    assert result.exit_code == 0, result.output
    assert aliases(uri, "Fraud") == {"champion": "2"}


def test_worse_candidate_is_blocked_and_nothing_written(uri: str, tmp_path: Path) -> None:
    start(uri, tmp_path, {"auc": 0.79, "loss": 0.45})
    code, doc = plan_json(uri)
    assert code == 1
    (change,) = doc["changes"]  # type: ignore[misc]
    assert change["action"] == "blocked"
    details = [g["detail"] for g in change["gates"] if g["gate"] == "require_metrics"]
    assert details == [
        "auc (maximize) for champion: 0.79 >= min 0.7; 0.01 worse than champion "
        "(version 1: 0.8); needs 0.005",
        "loss (minimize) for champion: 0.45 <= max 0.6; 0.05 worse than champion "
        "(version 1: 0.4); needs 0",
    ]
    assert [r["passed"] for r in gate_rows(doc)] == [False, False]
    assert regops(uri, "reconcile").exit_code == 1
    assert aliases(uri, "Fraud") == {"champion": "1"}


@pytest.mark.parametrize(
    ("auc", "passes"),
    [(0.805, True), (0.8049, False), (0.9, True)],
    ids=["exactly-at-margin", "just-under-margin", "well-above"],
)
def test_margin_edge(uri: str, tmp_path: Path, auc: float, passes: bool) -> None:
    start(uri, tmp_path, {"auc": auc, "loss": 0.40})  # loss equal: margin 0 passes
    code, doc = plan_json(uri)
    rows = gate_rows(doc)
    assert [r["passed"] for r in rows] == [passes, True]
    assert code == (0 if passes else 1)


def test_missing_metric_is_blocked_saying_which(uri: str, tmp_path: Path) -> None:
    start(uri, tmp_path, {"auc": 0.9})
    code, doc = plan_json(uri)
    assert code == 1
    rows = gate_rows(doc)
    assert rows[0]["passed"] is True
    assert rows[1]["passed"] is False
    assert rows[1]["candidate"] is None
    assert "of version 2 has no metric loss" in str(rows[1]["detail"])


def test_version_without_run_is_blocked(uri: str, tmp_path: Path) -> None:
    start(uri, tmp_path, None)
    result = regops(uri, "plan")
    assert result.exit_code == 1
    assert "version 2 has no source run: auc cannot be read" in result.output
    assert "version 2 has no source run: loss cannot be read" in result.output


def test_no_incumbent_passes_and_says_so(uri: str, tmp_path: Path) -> None:
    new_version(uri, "Fraud", {"auc": 0.80, "loss": 0.40})
    new_version(uri, "Fraud", {"auc": 0.75, "loss": 0.50})
    state(tmp_path, GATED)
    champion_to(tmp_path, "2")  # nothing holds champion live
    code, doc = plan_json(uri)
    assert code == 0, doc
    rows = gate_rows(doc)
    assert all(r["passed"] and r["incumbent"] is None for r in rows)
    assert "no incumbent: nothing holds champion, beats passes" in str(rows[0]["detail"])


def test_minimum_applies_even_without_incumbent(uri: str, tmp_path: Path) -> None:
    new_version(uri, "Fraud", {"auc": 0.60, "loss": 0.70})
    state(tmp_path, GATED.replace('      "2": {}\n', ""))
    code, doc = plan_json(uri)
    assert code == 1
    assert [r["detail"].split(";")[0] for r in gate_rows(doc)] == [  # type: ignore[union-attr]
        "0.6 is below min 0.7",
        "0.7 is above max 0.6",
    ]


STAGED = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_metrics:
        auc: {beats: Production, by: 0.01}
models:
  MODEL:
    versions:
      "1": {stage: Production}
      "2": {stage: Staging}
"""


@pytest.mark.parametrize(("auc", "code"), [(0.81, 0), (0.805, 1)], ids=["beats", "short"])
def test_stage_incumbent(uri: str, tmp_path: Path, auc: float, code: int) -> None:
    new_version(uri, "Fraud", {"auc": 0.80})
    new_version(uri, "Fraud", {"auc": auc})
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c.transition_model_version_stage("Fraud", "1", "Production")
        c.transition_model_version_stage("Fraud", "2", "Staging")
    path = state(tmp_path, STAGED)
    assert regops(uri, "plan", "--detailed-exitcode").exit_code == 0
    path.write_text(
        path.read_text()
        .replace('"1": {stage: Production}', '"1": {stage: Archived}')
        .replace('"2": {stage: Staging}', '"2": {stage: Production}')
    )
    result = regops(uri, "plan", "--format", "json")
    assert result.exit_code == code, result.output
    doc = json.loads(result.stdout)
    (gated,) = [c for c in doc["changes"] if c.get("metrics")]
    assert (gated["version"], gated["after"]) == ("2", "Production")
    (row,) = gated["metrics"]
    assert (row["incumbent_version"], row["incumbent"], row["candidate"]) == ("1", 0.80, auc)


def test_rollback_skips_beats_but_keeps_bounds(uri: str, tmp_path: Path) -> None:
    """champion 1 -> 2 under regops, then back to 1 (a `git revert`): 1 is worse than 2,
    but it held champion under regops, so beats is skipped; min and max still apply."""
    new_version(uri, "Fraud", {"auc": 0.80, "loss": 0.40})
    new_version(uri, "Fraud", {"auc": 0.85, "loss": 0.30})
    state(tmp_path, GATED)
    assert regops(uri, "reconcile").exit_code == 0  # champion on 1, by regops
    champion_to(tmp_path, "2")
    assert regops(uri, "reconcile").exit_code == 0
    assert aliases(uri, "Fraud") == {"champion": "2"}
    state(tmp_path, GATED)  # the revert
    code, doc = plan_json(uri)
    assert code == 0, doc
    rows = gate_rows(doc)
    assert all(r["passed"] for r in rows)
    assert all(r["incumbent"] is None for r in rows)  # not compared
    assert "rollback: version 1 held champion under regops before: beats champion skipped" in (
        str(rows[0]["detail"])
    )
    # Bounds still hold on a rollback.
    state(tmp_path, GATED.replace("min: 0.7", "min: 0.81"))
    code, doc = plan_json(uri)
    assert code == 1
    assert "0.8 is below min 0.81" in str(gate_rows(doc)[0]["detail"])


def test_version_that_is_the_incumbent_is_not_compared_with_itself(
    uri: str, tmp_path: Path
) -> None:
    """A stage change of the champion itself, gated by beats: champion: v1 holds it."""
    new_version(uri, "Fraud", {"auc": 0.80})
    set_alias(uri, "Fraud", "champion", "1")
    state(
        tmp_path,
        """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_metrics:
        auc: {beats: champion, by: 0.5}
models:
  MODEL:
    versions:
      "1": {stage: Production, aliases: [champion]}
""",
    )
    code, doc = plan_json(uri)
    assert code == 0, doc
    (row,) = gate_rows(doc)
    assert row["detail"] == "version 1 holds champion: not compared with itself"


def test_metric_reads_cost_two_calls_and_none_without_gates(uri: str, tmp_path: Path) -> None:
    """The runs a plan needs are read in one experiments page and one runs page (up to
    100 runs); a plan with nothing gated pending reads no run at all."""
    start(uri, tmp_path, {"auc": 0.82, "loss": 0.35})
    settings = Settings(tracking_uri_flag=uri, state_dir=tmp_path / "registry-state")

    def calls(text: str) -> int:
        state(tmp_path, text)
        champion_to(tmp_path, "2")
        registry = MlflowRegistry(uri)
        api.run_plan(settings, registry=registry)
        return registry.calls

    gated = calls(GATED)
    ungated = GATED.split("    champion:\n")[0] + "    champion: {protected: true}\nmodels:"
    plain = calls(ungated + GATED.split("models:")[1])
    assert gated - plain == 2, (gated, plain)
    state(tmp_path, GATED)  # in sync: champion stays on 1, nothing gated is pending
    registry = MlflowRegistry(uri)
    api.run_plan(settings, registry=registry)
    assert registry.calls == plain


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("auc: {by: 0.1}", "by is the margin of beats"),
        ("auc: {min: 0.9, max: 0.1}", "min 0.9 is above max 0.1: no value can pass"),
        ("auc: {goal: maximise}", "'maximise' is not one of: maximize, minimize"),
        ("auc: {min: high}", "expected number, got str 'high'"),
        ("auc: {min: .nan}", "min must be a finite number"),
        ("auc: {by: -1, beats: champion}", "-1 is less than the minimum of 0"),
        ("'bad\\tkey': {}", "metric 'bad\\\\tkey' in policy.aliases.champion.require_metrics"),
    ],
    ids=["by-without-beats", "min-above-max", "bad-goal", "string-bound", "nan", "neg-by", "key"],
)
def test_bad_policy_is_reported_at_its_line(
    uri: str, tmp_path: Path, entry: str, message: str
) -> None:
    text = f"""\
apiVersion: regops/v1
policy:
  aliases:
    champion:
      require_metrics:
        {entry}
models: {{}}
"""
    state(tmp_path, text)
    result = regops(uri, "validate")
    assert result.exit_code == 1, result.output
    assert "models.yaml:6: " in result.output, result.output
    assert message in result.output, result.output


def test_gate_on_a_real_mlflow_server(mlflow_server: MlflowServer, tmp_path: Path) -> None:
    """The same reads over REST: a worse candidate blocked, a better one applied."""
    uri = mlflow_server.url
    name = f"MetricGated_{tmp_path.name[-12:]}".replace("-", "_")
    new_version(uri, name, {"auc": 0.80, "loss": 0.40})
    new_version(uri, name, {"auc": 0.70, "loss": 0.40})
    new_version(uri, name, {"auc": 0.90, "loss": 0.20})
    set_alias(uri, name, "champion", "1")
    state(tmp_path, GATED.replace('      "2": {}\n', '      "2": {}\n      "3": {}\n'), name)
    champion_to(tmp_path, "2")
    result = CliRunner().invoke(
        cli, ["plan", "--tracking-uri", uri, "--state-dir", str(tmp_path / "registry-state")]
    )
    assert result.exit_code == 1, result.output
    assert "0.1 worse than champion (version 1: 0.8); needs 0.005" in result.output
    state(tmp_path, GATED.replace('      "2": {}\n', '      "2": {}\n      "3": {}\n'), name)
    champion_to(tmp_path, "3")
    result = CliRunner().invoke(
        cli, ["reconcile", "--tracking-uri", uri, "--state-dir", str(tmp_path / "registry-state")]
    )
    assert result.exit_code == 0, result.output
    assert aliases(uri, name) == {"champion": "3"}


# ---- what a user sees: the plan's table, the PR comment, the stamp, history -----------------


def test_plan_text_shows_a_table_per_gated_change(uri: str, tmp_path: Path) -> None:
    start(uri, tmp_path, {"auc": 0.799, "loss": 0.35})
    result = regops(uri, "plan")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    at = lines.index("  ! alias champion: version 1 -> 2  [BLOCKED]")
    assert lines[at + 1 : at + 6] == [
        "      metric      candidate  incumbent  bound   margin                          verdict",
        "      auc (max)   0.799      0.8 (v1)   >= 0.7  -0.001 (by 0.005, vs champion)  FAIL",
        "        auc: 0.799 >= min 0.7; 0.001 worse than champion (version 1: 0.8); needs 0.005",
        "      loss (min)  0.35       0.4 (v1)   <= 0.6  +0.05 (by 0, vs champion)       ok",
        "        loss: 0.35 <= max 0.6; 0.05 better than champion (version 1: 0.4); margin 0",
    ]


def test_markdown_report_renders_the_table_escaped(uri: str, tmp_path: Path) -> None:
    """Metric keys may hold characters markdown reads (`_` for emphasis, `:` and `/` for
    links): escaped in the PR comment; each row keeps its six cells."""
    key = "__val_auc__ www.x.io:8/y"
    new_version(uri, "Fraud", {key: 0.9})
    new_version(uri, "Fraud", {key: 0.95})
    set_alias(uri, "Fraud", "champion", "1")
    state(
        tmp_path,
        f"""\
apiVersion: regops/v1
policy:
  aliases:
    champion:
      require_metrics:
        "{key}": {{beats: champion}}
models:
  MODEL:
    versions:
      "1": {{}}
      "2": {{aliases: [champion]}}
""",
    )
    result = regops(uri, "plan", "--format", "markdown")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    at = lines.index("#### Metric gates")
    assert lines[at + 2] == "`Fraud` alias champion: version 1 -> 2"
    assert lines[at + 4] == "| Metric | Candidate | Incumbent | Bound | Margin | Verdict |"
    row = lines[at + 6]
    assert row.startswith(f"| `{key} (max)` |"), row  # code span: nothing in it is markup
    verdict = row.rsplit(" | ", 1)[1]
    assert verdict.startswith("✅ ")
    assert "__val" not in verdict  # escaped where it is text
    assert "www.x.io" not in verdict  # no autolink
    assert row.count(" | ") == 5
    assert "require_metrics: 1 of 1 passed (table below)" in result.output


def stamp_doc(uri: str, version: str) -> dict[str, object]:
    tags = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("Fraud", version)
    raw = tags.tags["regops.audit"]
    assert len(raw) <= 5000
    doc: dict[str, object] = json.loads(raw)
    return doc


def test_stamp_and_history_keep_the_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    uri = sqlite_uri
    new_version(uri, "Fraud", {"auc": 0.80, "loss": 0.40})
    new_version(uri, "Fraud", {"auc": 0.82, "loss": 0.35})
    write_state(repo.root / "registry-state", GATED.replace("MODEL", "Fraud"))
    repo.commit("champion: Fraud v1", who="alice")
    assert regops(uri, "reconcile").exit_code == 0
    assert stamp_doc(uri, "1")["metrics"] == [  # no incumbent: the bounds and the words
        {
            "for": "champion",
            "metric": "auc",
            "value": 0.8,
            "min": 0.7,
            "note": "0.8 >= min 0.7; no incumbent: nothing holds champion, beats passes",
        },
        {
            "for": "champion",
            "metric": "loss",
            "value": 0.4,
            "goal": "minimize",
            "max": 0.6,
            "note": "0.4 <= max 0.6; no incumbent: nothing holds champion, beats passes",
        },
    ]
    path = repo.root / "registry-state" / "models.yaml"
    path.write_text(
        path.read_text()
        .replace('"1": {aliases: [champion]}', '"1": {}')
        .replace('"2": {}', '"2": {aliases: [champion]}')
    )
    promotion = repo.commit("champion: Fraud v2", who="bob")
    assert regops(uri, "reconcile").exit_code == 0
    auc = stamp_doc(uri, "2")["metrics"][0]  # type: ignore[index]
    assert auc == {
        "for": "champion",
        "metric": "auc",
        "value": 0.82,
        "incumbent": 0.8,
        "incumbent_version": "1",
        "min": 0.7,
        "by": 0.005,
        "note": "0.82 >= min 0.7; 0.02 better than champion (version 1: 0.8); margin 0.005",
    }
    result = regops(uri, "history", "--format", "json")
    assert result.exit_code == 0, result.output
    (entry,) = [e for e in json.loads(result.stdout)["entries"] if e["commit"] == promotion]
    (change,) = entry["changes"]
    assert change["applied"]["status"] == "applied"
    assert change["applied"]["metrics"] == [
        "champion: auc 0.82 (maximize): 0.82 >= min 0.7; 0.02 better than champion "
        "(version 1: 0.8); margin 0.005",
        "champion: loss 0.35 (minimize): 0.35 <= max 0.6; 0.05 better than champion "
        "(version 1: 0.4); margin 0",
    ]
    text = regops(uri, "history").output
    assert (
        "        metric gate passed: champion: auc 0.82 (maximize): 0.82 >= min 0.7; "
        "0.02 better than champion (version 1: 0.8); margin 0.005"
    ) in text
    # A later change to v2 without gates of its own keeps the numbers on its stamp.
    path.write_text(path.read_text().replace('"1": {}', '"1": {aliases: [old]}'))
    path.write_text(
        path.read_text().replace('"2": {aliases: [champion]}', '"2": {aliases: [champion, b]}')
    )
    repo.commit("b: Fraud v2", who="carol")
    assert regops(uri, "reconcile").exit_code == 0
    assert stamp_doc(uri, "2")["metrics"][0] == auc  # type: ignore[index]


def test_stamp_with_many_metrics_stays_within_mlflows_limit() -> None:
    many = tuple(
        MetricEvidence(
            "champion", f"metric_{i:03d}_" + "x" * 40, 0.5, incumbent=0.4,
            incumbent_version="7", by=0.01, note="n" * 120,
        )
        for i in range(200)
    )  # fmt: skip
    stamp = Stamp(commit="a" * 40, held=frozenset({"@champion"}), aliases=("champion",))
    raw = replace(stamp, metrics=many).dump()
    assert len(raw) <= 5000
    back = Stamp.from_tags({"regops.audit": raw})[0]
    assert back is not None
    assert back.held == {"@champion"}
    assert 0 < len(back.metrics) < 200
    assert back.metrics == tuple(replace(m, note="") for m in many[: len(back.metrics)])


@pytest.mark.parametrize(
    "metrics",
    ['"x"', '[{"for": "champion"}]', '[{"for": "c", "metric": "m", "value": "0.9"}]'],
    ids=["not-a-list", "no-value", "string-value"],
)
def test_a_stamp_with_foreign_metrics_is_not_read(metrics: str) -> None:
    raw = '{"commit": "abc1234", "held": ["@champion"], "metrics": ' + metrics + "}"
    stamp, problems = Stamp.from_tags({"regops.audit": raw})
    assert stamp is None
    assert problems == [
        "tag regops.audit is not a stamp regops wrote (metrics must list metric verdicts "
        f"(for, metric, value): {raw[:60]!r})"
    ]


def test_plan_against_a_snapshot_blocks_and_says_why(uri: str, tmp_path: Path) -> None:
    """A snapshot (`plan --live`, fork pull requests) holds no runs: the gate cannot be
    judged there, and says so rather than passing."""
    start(uri, tmp_path, {"auc": 0.9, "loss": 0.1})
    assert regops(uri, "snapshot", "--out", "snap.json").exit_code == 0
    result = CliRunner().invoke(
        cli, ["plan", "--live", "snap.json", "--state-dir", "registry-state", "--format", "json"]
    )
    assert result.exit_code == 1, result.output
    rows = gate_rows(json.loads(result.stdout))
    assert [r["passed"] for r in rows] == [False, False]
    assert rows[0]["detail"].startswith("run metrics were not read (a snapshot holds no runs)")  # type: ignore[union-attr]
