"""`policy.rules`: CEL rules judged on real changes of a real registry (sqlite), with real
runs and metrics; levels, evaluation errors, overrides (stamp and history), compile errors
at their line. Planned and reconciled through the CLI."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result
from mlflow import MlflowClient

from regops.cli import cli
from regops.files import SCHEMAS
from tests.registry.regops.core.test_metric_gates import new_version, set_alias, stamp_doc
from tests.support.repo import Repo, write_state

PLAN_SCHEMA = json.loads((SCHEMAS / "plan.schema.json").read_text())

# Fraud v1 (auc 0.80) holds champion live; v2 (auc 0.82, tagged pii) is where git moves it.
STATE = """\
apiVersion: regops/v1
policy:
  use_stages: false
  rules:
    - name: the-rule
      expr: {expr}
      level: {level}
      message: "the rule's message"
models:
  Fraud:
    versions:
      "1": {{}}
      "2": {{aliases: [champion]}}
"""


def regops(uri: str, *args: str, cwd: Path | None = None) -> Result:
    state_dir = str(cwd / "registry-state") if cwd else "registry-state"
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", state_dir])


def build_registry(uri: str) -> None:
    new_version(uri, "Fraud", {"auc": 0.80, "loss": 0.40})
    new_version(uri, "Fraud", {"auc": 0.82, "loss": 0.35})
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    c.set_registered_model_tag("Fraud", "domain", "payments")
    c.set_model_version_tag("Fraud", "2", "pii", "yes")
    c.set_model_version_tag("Fraud", "1", "team", "risk")
    set_alias(uri, "Fraud", "champion", "1")


@pytest.fixture(scope="module")
def shared_db(tmp_path_factory: pytest.TempPathFactory, _empty_registry_db: Path) -> Path:
    """One registry for every plan-only case (a plan writes nothing)."""
    db = tmp_path_factory.mktemp("rules") / "mlflow.db"
    shutil.copyfile(_empty_registry_db, db)
    build_registry(f"sqlite:///{db}")
    return db


@pytest.fixture
def uri(shared_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGOPS_ACTOR", "alice")
    monkeypatch.delenv("REGOPS_OVERRIDE_ACTOR", raising=False)
    db = tmp_path / "mlflow.db"
    shutil.copyfile(shared_db, db)
    return f"sqlite:///{db}"


def rule_state(tmp_path: Path, expr: str, level: str = "hard") -> Path:
    return write_state(
        tmp_path / "registry-state", STATE.format(expr=json.dumps(expr), level=level)
    )


def plan(uri: str, *extra: str) -> tuple[int, dict]:
    result = regops(uri, "plan", "--format", "json", *extra)
    assert result.stdout, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, PLAN_SCHEMA)
    return result.exit_code, doc


def verdict(doc: dict) -> dict:
    (change,) = doc["changes"]
    (rule,) = change["rules"]
    return rule


# ---- every variable ---------------------------------------------------------------------

VARIABLES = [
    ("model.name", "model.name == 'Fraud'", "pass"),
    ("model.tags", "model.tags['domain'] == 'payments'", "pass"),
    ("version.number", "version.number == 2", "pass"),
    ("version.tags", "'pii' in version.tags && version.tags.pii == 'yes'", "pass"),
    ("version.tags, false", "!('pii' in version.tags)", "fail"),
    ("version.run_id", "size(version.run_id) == 32", "pass"),
    ("version.metrics", "version.metrics.auc > 0.81", "pass"),
    ("version.metrics, false", "version.metrics.auc > 0.9", "fail"),
    ("version.source", "version.source == 's3://bucket/Fraud'", "pass"),
    ("version.created", "now - version.created < duration('1h')", "pass"),
    ("version.source_env", "version.source_env == null && version.source_version == null", "pass"),
    ("incumbent.number", "incumbent != null && incumbent.number == 1", "pass"),
    ("incumbent.tags", "incumbent.tags.team == 'risk'", "pass"),
    ("incumbent.metrics", "version.metrics.auc - incumbent.metrics.auc >= 0.01", "pass"),
    ("incumbent.metrics, false", "version.metrics.loss > incumbent.metrics.loss", "fail"),
    (
        "change",
        "change.kind == 'alias_move' && change.alias == 'champion' && change.from == '1' "
        "&& change.to == '2' && change.stage == null && !change.rollback",
        "pass",
    ),
    ("env", "env == ''", "pass"),
    ("actor", "actor == 'alice'", "pass"),
    ("now", "now > timestamp('2020-01-01T00:00:00Z')", "pass"),
    ("now, weekday", "now.getDayOfWeek() >= 0 && now.getDayOfWeek() <= 6", "pass"),
    ("missing key", "version.tags.privacy_review == 'approved'", "error"),
    ("wrong type", "version.number + 'x' == 'y'", "error"),
    ("not a bool", "version.number", "error"),
    ("type names", "type(version.number) == int && type(model.name) == string", "pass"),
    ("null incumbent field", "incumbent.metrics.nope > 0.0", "error"),
]


@pytest.mark.parametrize(
    ("expr", "result"), [v[1:] for v in VARIABLES], ids=[v[0] for v in VARIABLES]
)
def test_each_variable(uri: str, tmp_path: Path, expr: str, result: str) -> None:
    rule_state(tmp_path, expr)
    code, doc = plan(uri)
    v = verdict(doc)
    assert v["result"] == result, v
    assert v["blocks"] is (result != "pass")
    assert code == (0 if result == "pass" else 1)
    if result == "error":
        assert v["detail"].startswith(("could not be evaluated:", "evaluated to")), v
        assert "activation" not in v["detail"]  # the reason, not a dump of every variable
    else:
        assert v["detail"] == "the rule's message"


# ---- levels, errors, overrides -----------------------------------------------------------

FALSE, ERROR = "version.number == 1", "version.tags.absent == 'x'"
LEVELS = [
    # (level, expr, overrides, exit code, blocks, text mark)
    ("hard", FALSE, (), 1, True, "FAIL"),
    ("soft", FALSE, (), 1, True, "FAIL"),
    ("advisory", FALSE, (), 0, False, "WARN"),
    ("hard", ERROR, (), 1, True, "FAIL"),
    ("soft", ERROR, (), 1, True, "FAIL"),
    ("advisory", ERROR, (), 0, False, "WARN"),
    ("soft", FALSE, ("--override", "the-rule", "--reason", "incident 42"), 0, False, "OVER"),
    ("soft", ERROR, ("--override", "the-rule", "--reason", "incident 42"), 0, False, "OVER"),
    ("hard", FALSE, ("--override", "the-rule", "--reason", "incident 42"), 1, True, "FAIL"),
    ("hard", "true", (), 0, False, "ok"),
]


@pytest.mark.parametrize(
    ("level", "expr", "extra", "code", "blocks", "mark"),
    LEVELS,
    ids=[
        f"{lv[0]}-{'false' if lv[1] == FALSE else 'error' if lv[1] == ERROR else 'true'}"
        f"{'-override' if lv[2] else ''}"
        for lv in LEVELS
    ],
)
def test_levels(
    uri: str,
    tmp_path: Path,
    level: str,
    expr: str,
    extra: tuple[str, ...],
    code: int,
    blocks: bool,
    mark: str,
) -> None:
    rule_state(tmp_path, expr, level)
    got, doc = plan(uri, *extra)
    assert got == code
    v = verdict(doc)
    assert v["blocks"] is blocks
    assert doc["changes"][0]["action"] == ("blocked" if blocks else "apply")
    if extra and level == "soft":
        assert v["override"] == {"reason": "incident 42", "actor": "alice"}
    elif extra:  # a hard rule: the override is refused, and the verdict says so
        assert v["override"] is None
        assert "a hard rule cannot be overridden" in v["detail"]
    text = regops(uri, "plan", *extra).output
    assert f"      {mark:<4} rule the-rule ({level}): " in text
    markdown = regops(uri, "plan", "--format", "markdown", *extra).output
    assert "rule the-rule" in markdown


def test_reconcile_obeys_the_levels(uri: str, tmp_path: Path) -> None:
    rule_state(tmp_path, FALSE, "soft")
    assert regops(uri, "reconcile").exit_code == 1
    assert MlflowClient(tracking_uri=uri).get_registered_model("Fraud").aliases["champion"] == 1
    rule_state(tmp_path, FALSE, "advisory")
    assert regops(uri, "reconcile").exit_code == 0
    assert MlflowClient(tracking_uri=uri).get_registered_model("Fraud").aliases["champion"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--override", "the-rule"), "--override needs --reason"),
        (("--reason", "why"), "--reason is the reason of an --override"),
        (("--override", "nope", "--reason", "why"), "--override names no rule"),
        (("--override", "the-rule", "--reason", "  "), "is empty"),
        (
            (
                "--override",
                "a",
                "--override",
                "b",
                "--reason",
                "x",
                "--reason",
                "y",
                "--reason",
                "z",
            ),
            "give one reason for all",
        ),
    ],
    ids=["no-reason", "no-override", "unknown-rule", "empty-reason", "reasons-mismatch"],
)
@pytest.mark.parametrize("command", ["plan", "reconcile"])
def test_override_usage_errors(
    uri: str, tmp_path: Path, command: str, args: tuple[str, ...], message: str
) -> None:
    rule_state(tmp_path, FALSE, "soft")
    result = regops(uri, command, *args)
    assert result.exit_code == 64, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_override_is_stamped_and_shown_by_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    repo = Repo(tmp_path / "repo")
    monkeypatch.chdir(repo.root)
    monkeypatch.setenv("REGOPS_ACTOR", "ci-bot")
    monkeypatch.setenv("REGOPS_OVERRIDE_ACTOR", "carol")
    uri = sqlite_uri
    build_registry(uri)
    text = STATE.format(expr=json.dumps(FALSE), level="soft").replace(
        "  rules:\n",
        "  rules:\n    - {name: signed, expr: \"'pii' in version.tags\", level: hard}\n"
        "    - {name: note, expr: 'false', level: advisory, message: just so you know}\n",
    )
    write_state(repo.root / "registry-state", text)
    commit = repo.commit("champion: Fraud v2", who="bob")
    result = regops(uri, "reconcile", "--override", "the-rule", "--reason", "incident 42")
    assert result.exit_code == 0, result.output
    rules = stamp_doc(uri, "2")["rules"]
    assert rules == [  # overrides first, then what failed, then what passed
        {
            "for": "champion",
            "rule": "the-rule",
            "level": "soft",
            "result": "fail",
            "override": {"reason": "incident 42", "actor": "carol"},
        },
        {"for": "champion", "rule": "note", "level": "advisory", "result": "fail"},
        {"for": "champion", "rule": "signed", "level": "hard", "result": "pass"},
    ]
    assert stamp_doc(uri, "2")["actor"] == "ci-bot"
    doc = json.loads(regops(uri, "history", "--format", "json").stdout)
    (entry,) = [e for e in doc["entries"] if e["commit"] == commit]
    (change,) = entry["changes"]
    assert change["applied"]["rules"] == [
        "champion: rule the-rule (soft) fail, overridden by carol: incident 42",
        "champion: rule note (advisory) fail",
        "champion: rule signed (hard) pass",
    ]
    text_out = regops(uri, "history").output
    assert "        champion: rule the-rule (soft) fail, overridden by carol: incident 42" in (
        text_out
    )
    md = regops(uri, "history", "--format", "markdown").output
    assert "overridden by carol: incident 42" in md


def test_rules_read_metrics_only_when_a_rule_names_them(
    uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule that names `metrics` reads the runs (in the batched searches of
    require_metrics); one that does not reads none."""
    from regops.adapters.mlflow.registry import MlflowRegistry

    calls: list[tuple[frozenset[str], object]] = []
    original = MlflowRegistry.run_metrics

    def counting(self: MlflowRegistry, run_ids, keys):  # type: ignore[no-untyped-def]
        calls.append((frozenset(run_ids), keys))
        return original(self, run_ids, keys)

    monkeypatch.setattr(MlflowRegistry, "run_metrics", counting)
    rule_state(tmp_path, "version.number == 2")
    assert plan(uri)[0] == 0
    assert calls == []
    rule_state(tmp_path, "version.metrics.auc > 0.5")
    assert plan(uri)[0] == 0
    ((run_ids, keys),) = calls
    assert len(run_ids) == 2  # the candidate's run and the incumbent's
    assert keys is None  # every key


# ---- the file: compile errors at their line, the extra ---------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("version.tags[", "does not compile"),
        ("1 +", "does not compile"),
        ("versoin.number == 2", "names unknown variable(s) versoin"),
        ("[1, 2].all(x, x > 0) && y", "names unknown variable(s) y"),
    ],
    ids=["unclosed", "dangling", "typo", "unbound"],
)
def test_a_rule_that_does_not_compile_is_reported_at_its_line(
    uri: str, tmp_path: Path, expr: str, message: str
) -> None:
    rule_state(tmp_path, expr)
    result = CliRunner().invoke(cli, ["validate", "--state-dir", "registry-state"])
    assert result.exit_code == 1
    assert (
        f"registry-state/models.yaml:6: policy.rules[0] (the-rule): the expression {message}"
        in (result.output)
    )
    assert regops(uri, "plan").exit_code == 1


def test_macros_bind_their_variables(uri: str, tmp_path: Path) -> None:
    rule_state(
        tmp_path, "version.tags.all(k, k != 'blocked') && model.tags.exists(t, t == 'domain')"
    )
    assert plan(uri)[0] == 0


def test_a_stage_change_sees_the_stage_incumbent(uri: str, tmp_path: Path) -> None:
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        c.transition_model_version_stage("Fraud", "1", "Production")
    write_state(
        tmp_path / "registry-state",
        """\
apiVersion: regops/v1
policy:
  rules:
    - name: stage
      expr: "change.kind == 'stage' && change.stage == 'Production' && change.from == 'None'
        && incumbent.number == 1 && version.metrics.auc > incumbent.metrics.auc"
models:
  Fraud:
    versions:
      "1": {stage: Production}
      "2": {stage: Production}
""",
    )
    code, doc = plan(uri)
    assert code == 0
    # the stage change is judged; the removal of the alias no state file declares is not
    assert [(c["kind"], [r["result"] for r in c.get("rules", [])]) for c in doc["changes"]] == [
        ("stage", ["pass"]),
        ("alias_delete", []),
    ]


@pytest.mark.usefixtures("_empty_registry_db")
def test_a_copy_sees_its_source_environment_and_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """Two real registries (regops.yaml: dev and prod): the stage and alias changes of
    prod's `dev@1` see a copy of dev's version 1, in environment prod, before the copy is
    made (number null) and after (its lineage)."""
    from tests.support.environments import PROD_STATE, run, two_environments

    repo = two_environments(tmp_path, monkeypatch, request.getfixturevalue("_empty_registry_db"))
    monkeypatch.setenv("REGOPS_ACTOR", "alice")

    def with_rule(expr: str, state: str = PROD_STATE) -> None:
        rules = f"policy:\n  rules:\n    - {{name: from-dev, expr: {json.dumps(expr)}}}\n"
        repo.write("registry-state/prod/fraud.yaml", state.replace("policy:\n", rules))

    with_rule(
        "env == 'prod' && version.source_env == 'dev' && version.source_version == 1 "
        "&& version.number == null"
    )
    result = run("--env", "prod", "plan", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    judged = [
        (c["kind"], [r["result"] for r in c["rules"]]) for c in doc["changes"] if "rules" in c
    ]
    assert judged == [("stage", ["pass"]), ("alias_set", ["pass"])]
    assert run("--env", "prod", "reconcile").exit_code == 0
    with_rule(
        "version.source_env == 'dev' && version.source_version == 1 && version.number == 1",
        PROD_STATE.replace("aliases: [champion]", "aliases: [champion, b]"),
    )
    result = run("--env", "prod", "plan", "--format", "json")
    assert result.exit_code == 0, result.output
    (change,) = json.loads(result.stdout)["changes"]
    assert [r["result"] for r in change["rules"]] == ["pass"]


def test_without_cel_python_a_file_with_rules_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The core install has no cel-python (the `rules` extra): a file with rules is a
    validation error at its `rules:` line naming the extra; a file without rules never
    imports it."""
    import sys

    from regops.core import rules

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "celpy", None)  # as if not installed: import fails
    rules._compiled.cache_clear()
    rule_state(tmp_path, "true")
    result = CliRunner().invoke(cli, ["validate", "--state-dir", "registry-state"])
    assert result.exit_code == 1
    assert (
        "registry-state/models.yaml:4: policy.rules needs cel-python: pip install 'regops[rules]'"
    ) in result.output
    write_state(tmp_path / "registry-state", STATE.split("  rules:")[0] + "models: {}\n")
    result = CliRunner().invoke(cli, ["validate", "--state-dir", "registry-state"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('{name: "a\\n", expr: "true"}', "policy.rules.0.name: 'a\\n' does not match"),
        ("{name: a, expr: 'true', level: blocker}", "policy.rules.0.level: 'blocker' is not one"),
        ("{name: a}", "policy.rules.0: 'expr' is required"),
        ("{name: a, expr: ''}", "policy.rules.0.expr: '' should be non-empty"),
    ],
    ids=["name-newline", "level", "no-expr", "empty-expr"],
)
def test_a_bad_rule_entry_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_state(
        tmp_path / "registry-state",
        f"apiVersion: regops/v1\npolicy:\n  rules:\n    - {entry}\nmodels: {{}}\n",
    )
    result = CliRunner().invoke(cli, ["validate", "--state-dir", "registry-state"])
    assert result.exit_code == 1
    assert f"registry-state/models.yaml:4: {message}" in result.output


def test_a_saved_plan_is_judged_again_by_its_rules_on_now(uri: str, tmp_path: Path) -> None:
    """`plan --out` on Thursday, `reconcile --plan` on Friday: the rules that name `now`
    are judged again when the plan is applied (the overrides it recorded still hold)."""
    from datetime import datetime, timezone

    from regops import api
    from regops.errors import PlanError
    from regops.settings import Settings

    s = Settings(tracking_uri_flag=uri, state_dir=Path("registry-state"))
    later = datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()  # noqa: UP017
    rule_state(tmp_path, "now < timestamp('2099-01-01T00:00:00Z')", "soft")
    assert regops(uri, "plan", "--out", "plan.json").exit_code == 0
    saved = api.load_plan_file(Path("plan.json"))
    desired, registry = api.load_desired(s), api.open_registry(s)
    with pytest.raises(PlanError) as refused:
        api.rules_judged_now(saved, desired, registry, s, now=later)
    assert refused.value.problems == [
        "Fraud: alias champion: version 1 -> 2: rule the-rule (soft): fail: the rule's message",
        "the saved plan's rules were judged again now; nothing was applied",
    ]
    assert api.rules_judged_now(saved, desired, registry, s).actionable == saved.actionable
    # overridden when planned: the override holds when judged again, and is stamped
    rule_state(tmp_path, "now > timestamp('2099-01-01T00:00:00Z')", "soft")
    args = ("--override", "the-rule", "--reason", "planned on a Thursday")
    assert regops(uri, "plan", "--out", "plan.json", *args).exit_code == 0
    saved, desired = api.load_plan_file(Path("plan.json")), api.load_desired(s)
    (change,) = api.rules_judged_now(saved, desired, registry, s).actionable  # fails, overridden
    assert change.rules[0].override_reason == "planned on a Thursday"
    (change,) = api.rules_judged_now(saved, desired, registry, s, now=later).actionable
    assert change.rules[0].result == "pass"
    assert regops(uri, "reconcile", "--plan", "plan.json").exit_code == 0
    assert stamp_doc(uri, "2")["rules"][0]["override"] == {
        "reason": "planned on a Thursday",
        "actor": "alice",
    }
