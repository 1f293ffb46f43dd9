"""Environments (regops.yaml, --env, plan --all-envs) and promotion by copy, on two real
in-process sqlite registries: a version of dev declared in prod as `dev@1` is copied with
its artifacts and lineage, once."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from regops.core.audit import Stamp
from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.promotion import CopyRef, parse_key
from tests.support.environments import (
    PROD_STATE,
    Repo,
    git,
    log_model,
    run,
    two_environments,
)
from tests.support.repo import ENVS_CONFIG, client


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_registry_db: Path) -> Repo:
    return two_environments(tmp_path, monkeypatch, _empty_registry_db)


# ---- choosing an environment -------------------------------------------------------------


def test_without_env_the_command_says_which_to_pick(repo: Repo) -> None:
    result = run("plan")
    assert result.exit_code == 64
    assert "regops.yaml declares environments (dev, prod): pick one with --env NAME" in (
        result.output
    )
    assert "plan --all-envs" in result.output


def test_env_picks_registry_and_state_dir(repo: Repo) -> None:
    result = run("--env", "dev", "plan")
    assert result.exit_code == 0, result.output
    assert "registry-state/dev/fraud.yaml" in result.output
    assert "Registry: dev" in result.output  # named by its environment
    # after the command name too, like every shared option
    assert run("plan", "--env", "dev", "--format", "json").exit_code == 0


def test_an_explicit_state_dir_needs_no_env(repo: Repo) -> None:
    result = run("plan", "--state-dir", "registry-state/dev", "--tracking-uri", repo.dev)
    assert result.exit_code == 0, result.output


def test_unknown_env_and_unset_variable_are_clear(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("--env", "staging", "plan")
    assert result.exit_code == 64
    assert "no environment 'staging' in regops.yaml (declared: dev, prod)" in result.output
    monkeypatch.delenv("REGOPS_T_PROD_URI")
    result = run("--env", "prod", "plan")
    assert result.exit_code == 1
    assert "environment prod's tracking_uri needs ${REGOPS_T_PROD_URI}, which is not set" in (
        result.output
    )


def test_env_without_config_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("--env", "dev", "plan")
    assert result.exit_code == 64
    assert "no regops.yaml here or in a parent directory" in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "apiVersion: regops/v1\nenvironments:\n  dev:\n    tracking_uri: x\n"
            "    state_dir: s\n    credentials: {password: hunter2}\n",
            "regops.yaml:6: environments.dev.credentials.password: credentials must name a "
            "variable as ${VAR} (a secret never goes into git)",
        ),
        (
            "apiVersion: regops/v1\nenvironments:\n  dev:\n    tracking_uri: x\n"
            "    state_dir: s\n    colour: blue\n",
            "regops.yaml:3: environments.dev: Additional properties are not allowed",
        ),
        (
            "apiVersion: regops/v1\nenvironments:\n  dev: {tracking_uri: a, state_dir: s}\n"
            "  prod: {tracking_uri: b, state_dir: s}\n",
            "regops.yaml:4: environment prod shares state_dir s with dev",
        ),
        (
            "apiVersion: regops/v1\nenvironments:\n  dev:\n    state_dir: s\n",
            "regops.yaml:3: environments.dev: 'tracking_uri' is a required property",
        ),
    ],
    ids=["literal-secret", "unknown-key", "shared-state-dir", "missing-uri"],
)
def test_bad_config_is_reported_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "regops.yaml").write_text(text)
    result = run("--env", "dev", "plan")
    assert result.exit_code == 1
    assert expected in result.output
    assert "hunter2" not in result.output


def test_validate_covers_every_environment_and_copy_keys(repo: Repo) -> None:
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert "dev: 1 file(s) valid" in result.output
    assert "prod: 1 file(s) valid" in result.output
    repo.write("registry-state/prod/fraud.yaml", PROD_STATE.replace("dev@1", "qa@1"))
    result = run("validate")
    assert result.exit_code == 1
    assert "registry-state/prod/fraud.yaml:10: qa@1: no environment 'qa' (dev, prod)" in (
        result.output
    )


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        ("7", None),
        ("dev@7", CopyRef("dev", "M", "7")),
        ("dev/Other.Name-2@12", CopyRef("dev", "Other.Name-2", "12")),
        ("dev@", None),
        ("@7", None),
    ],
    ids=["number", "same-name", "other-name", "no-version", "no-env"],
)
def test_parse_key(key: str, ref: CopyRef | None) -> None:
    assert parse_key(key, "M") == ref


# ---- planning every environment ----------------------------------------------------------


def test_plan_all_envs_one_report_one_section_each(repo: Repo) -> None:
    result = run("plan", "--all-envs", "--detailed-exitcode")
    assert result.exit_code == 2, result.output  # prod has changes pending
    dev, prod = result.output.split("== Environment prod ==")
    assert "== Environment dev ==" in dev
    assert "No changes. Registry in sync" in dev
    assert "+ copy dev Fraud v1 -> prod (new version)" in prod
    assert "~ version dev@1 stage: None -> Production" in prod
    assert "ok   require_from: copy of dev Fraud v1, which is in Staging there" in prod
    assert "ok   require_tags: validation_status=passed" in prod
    assert "+ alias champion: set on version dev@1" in prod

    md = run("plan", "--all-envs", "--format", "markdown")
    assert md.exit_code == 0
    assert "### regops plan: `dev`" in md.output
    assert "### regops plan: `prod`" in md.output
    doc = json.loads(run("plan", "--all-envs", "--format", "json").stdout)
    assert list(doc["environments"]) == ["dev", "prod"]
    kinds = [c["kind"] for c in doc["environments"]["prod"]["changes"]]
    assert kinds == ["copy", "stage", "alias_set"]


def test_gates_read_the_source_evidence(repo: Repo) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        client(repo.dev).set_model_version_tag("Fraud", "1", "validation_status", "failed")
    result = run("--env", "prod", "reconcile")
    assert result.exit_code == 1
    assert "FAIL require_tags: validation_status is 'failed'; needs 'passed'" in result.output
    assert "Fraud" not in [m.name for m in client(repo.prod).search_registered_models()]


# ---- copying -----------------------------------------------------------------------------


def test_reconcile_copies_once_with_artifacts_and_lineage(repo: Repo) -> None:
    commit = git(repo.root, "rev-parse", "HEAD")
    result = run("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    assert "applied  Fraud: copy dev Fraud v1 -> prod (new version)  (new version 1)" in (
        result.output
    )
    assert "applied  Fraud: version 1 stage: None -> Production" in result.output

    versions = repo.versions(repo.prod, "Fraud")
    assert list(versions) == ["1"]
    mv = versions["1"]
    assert mv.current_stage == "Production"  # type: ignore[attr-defined]
    tags = mv.tags  # type: ignore[attr-defined]
    assert tags["validation_status"] == "passed"  # the evidence came with it
    dev_run = repo.versions(repo.dev, "Fraud")["1"].run_id  # type: ignore[attr-defined]
    assert Lineage.parse(tags[LINEAGE_TAG]) == Lineage("dev", "Fraud", "1", dev_run, commit)
    stamp = Stamp.from_tags(tags)[0]
    assert stamp is not None
    assert "x" not in stamp.held  # dev's own regops tags stay in dev
    assert str(client(repo.prod).get_registered_model("Fraud").aliases["champion"]) == "1"
    # the files are prod's own copy, downloaded from dev's artifact store
    dl = repo.root / "dl"
    dl.mkdir()
    local = client(repo.prod).download_artifacts(mv.run_id, "model", str(dl))  # type: ignore[attr-defined]
    assert "content: dev-v1" in (Path(local) / "MLmodel").read_text()
    assert mv.run_id != dev_run  # type: ignore[attr-defined]

    again = run("--env", "prod", "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes. Registry in sync" in again.output
    assert run("--env", "prod", "reconcile").exit_code == 0
    assert list(repo.versions(repo.prod, "Fraud")) == ["1"]  # never copied twice

    hist = run("--env", "prod", "history", "Fraud")
    assert hist.exit_code == 0, hist.output
    assert f"Fraud v1 <- dev Fraud v1 (run {dev_run}, asked for by commit {commit[:7]})" in (
        hist.output
    )
    assert "unknown (version not in the registry)" not in hist.output
    doc = json.loads(run("--env", "prod", "history", "Fraud", "--format", "json").stdout)
    assert doc["lineage"][0]["source_version"] == "1"


def test_after_a_copy_the_record_names_the_version_so_drift_is_seen_at_once(
    repo: Repo,
) -> None:
    """The applied-record a copy's reconcile writes names the version the copy made, not
    its state key (`dev@1`: a key the record's reader refuses, which left prod blind to
    drift until a later reconcile): an alias moved in prod right after is drift."""
    assert run("--env", "prod", "reconcile").exit_code == 0
    tags = client(repo.prod).get_registered_model("Fraud").tags
    assert json.loads(tags["regops.applied"]) == {"1": ["Production", "champion"]}
    other = log_model(repo.prod, "Fraud", "made in prod", {})
    client(repo.prod).set_registered_model_alias("Fraud", "champion", other)  # outside git
    result = run("--env", "prod", "plan", "--detailed-exitcode")
    assert result.exit_code == 3, result.output
    assert "1 drift" in result.output
    assert "not a record regops wrote" not in result.output


def test_a_new_dev_version_promoted_by_a_state_edit(repo: Repo) -> None:
    assert run("--env", "prod", "reconcile").exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        log_model(repo.dev, "Fraud", "dev-v2", {"validation_status": "passed"})
        client(repo.dev).transition_model_version_stage("Fraud", "2", "Staging")
    repo.write(
        "registry-state/prod/fraud.yaml",
        PROD_STATE.replace(
            "      dev@1: {stage: Production, aliases: [champion]}",
            "      dev@1: {stage: Archived}\n      dev@2: {stage: Production, aliases: [champion]}",
        ),
    )
    repo.commit("promote dev v2 to prod")
    plan = run("--env", "prod", "plan")
    assert "+ copy dev Fraud v2 -> prod (new version)" in plan.output
    assert "~ alias champion: version 1 -> dev@2" in plan.output
    assert "~ version 1 stage: Production -> Archived" in plan.output
    result = run("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    versions = repo.versions(repo.prod, "Fraud")
    assert {v: m.current_stage for v, m in versions.items()} == {  # type: ignore[attr-defined]
        "1": "Archived",
        "2": "Production",
    }
    assert str(client(repo.prod).get_registered_model("Fraud").aliases["champion"]) == "2"
    assert run("--env", "prod", "plan", "--detailed-exitcode").exit_code == 0


def test_one_registry_uses_copy_model_version(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both environments in one registry (as Unity Catalog catalogs are): another name."""
    monkeypatch.setenv("REGOPS_T_PROD_URI", repo.dev)
    repo.write(
        "registry-state/prod/fraud.yaml",
        PROD_STATE.replace("  Fraud:\n", "  Fraud_prod:\n").replace("dev@1", "dev/Fraud@1"),
    )
    repo.commit("prod is a name in dev's registry")
    result = run("--env", "prod", "reconcile")
    assert result.exit_code == 0, result.output
    mv = repo.versions(repo.dev, "Fraud_prod")["1"]
    assert mv.source == "models:/Fraud/1"  # type: ignore[attr-defined]
    assert Lineage.parse(mv.tags[LINEAGE_TAG]).version == "1"  # type: ignore[attr-defined,union-attr]
    assert run("--env", "prod", "plan", "--detailed-exitcode").exit_code == 0


def test_a_missing_source_version_is_reported_at_its_line(repo: Repo) -> None:
    repo.write("registry-state/prod/fraud.yaml", PROD_STATE.replace("dev@1", "dev@9"))
    result = run("--env", "prod", "plan")
    assert result.exit_code == 1
    assert (
        "registry-state/prod/fraud.yaml:10: dev@9: Fraud version 9 is not in dev's registry "
        "(latest is 1)" in result.output
    )


def test_all_envs_report_is_the_pr_comment(repo: Repo, tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    result = run("plan", "--all-envs", "--report", str(report), "--out", str(tmp_path / "p.json"))
    assert result.exit_code == 0, result.output
    text = report.read_text()
    assert text.startswith("<!-- regops-plan -->\n")  # the one comment each push updates
    assert text.index("### regops plan: `dev`") < text.index("### regops plan: `prod`")
    assert "copy dev Fraud v1 -> prod (new version)" in text
    saved = json.loads((tmp_path / "p.json").read_text())
    assert saved["environments"]["prod"]["summary"]["to_apply"] == 3


def test_environments_lists_them_for_a_ci_matrix(repo: Repo) -> None:
    assert json.loads(run("environments", "--format", "json").stdout) == ["dev", "prod"]
    text = run("environments").output
    assert "prod: state registry-state/prod, registry ${REGOPS_T_PROD_URI}" in text
    assert repo.prod not in text  # variable names only, never their values


def test_no_environments_is_an_empty_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert json.loads(run("environments", "--format", "json").stdout) == []


# ---- plan --all-envs takes what plan --env takes --------------------------------------------

SOFT_RULE = "policy:\n  rules:\n    - {name: no-friday, expr: 'false', level: soft}\n"


def test_all_envs_overrides_reach_the_environments_with_that_rule(repo: Repo) -> None:
    """An --override is honoured where a state file has that rule (prod), left out where
    none has (dev); one naming no rule of any environment is a usage error, as with --env."""
    repo.write("registry-state/prod/fraud.yaml", PROD_STATE.replace("policy:\n", SOFT_RULE))
    repo.commit("prod: a soft rule")

    def prod_rules(*extra: str) -> tuple[int, list[dict[str, object]]]:
        result = run("plan", "--all-envs", "--format", "json", *extra)
        doc = json.loads(result.stdout)
        assert "error" not in doc["environments"]["dev"], doc["environments"]["dev"]
        changes = doc["environments"]["prod"]["changes"]
        return result.exit_code, [r for c in changes for r in c.get("rules", [])]

    code, verdicts = prod_rules()
    assert code == 1  # blocked by the soft rule
    assert {(r["result"], r["blocks"], json.dumps(r["override"])) for r in verdicts} == {
        ("fail", True, "null")
    }
    code, verdicts = prod_rules("--override", "no-friday", "--reason", "hotfix INC-7")
    assert code == 0
    assert {(r["result"], r["blocks"], r["override"]["reason"]) for r in verdicts} == {
        ("fail", False, "hotfix INC-7")
    }

    unknown = run("plan", "--all-envs", "--override", "no-such", "--reason", "x")
    assert unknown.exit_code == 64
    assert "--override names no rule of any environment: no-such (rules: no-friday)" in (
        unknown.output
    )
    assert run("plan", "--all-envs", "--override", "no-friday").exit_code == 64  # no --reason


def test_an_override_of_another_environments_rule_is_not_an_error_here(repo: Repo) -> None:
    """A merged PR's override labels reach every environment's apply: dev, which has no
    such rule, applies without it; prod uses it. A rule of no environment stays 64."""
    repo.write("registry-state/prod/fraud.yaml", PROD_STATE.replace("policy:\n", SOFT_RULE))
    repo.commit("prod: a soft rule")
    given = ("--override", "no-friday", "--reason", "PR #8: hotfix")
    assert run("--env", "dev", "reconcile", *given).exit_code == 0
    result = run("--env", "prod", "reconcile", *given)
    assert result.exit_code == 0, result.output
    [mv] = repo.versions(repo.prod, "Fraud").values()
    stamp = Stamp.from_tags(mv.tags)[0]  # type: ignore[attr-defined]
    assert stamp is not None
    verdicts = {(r.rule, r.override_reason) for r in stamp.rules}
    assert verdicts == {("no-friday", "PR #8: hotfix")}
    nowhere = run("--env", "dev", "plan", "--override", "no-such", "--reason", "x")
    assert nowhere.exit_code == 64
    assert "--override names no rule of the planned models: no-such" in nowhere.output


def test_all_envs_refuses_live_it_cannot_honour(repo: Repo, tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    assert run("--env", "prod", "snapshot", "--out", str(snapshot)).exit_code == 0
    result = run("plan", "--all-envs", "--live", str(snapshot))
    assert result.exit_code == 64
    assert "--live plans one environment from its snapshot: give --env NAME" in result.output


def test_all_envs_drift_check_notifies_each_drifted_environment(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.registry.regops.cli.test_notify import Receiver

    hook = Receiver()
    try:
        monkeypatch.setenv("OPS_HOOK_URL", hook.url)
        repo.write(
            "regops.yaml",
            ENVS_CONFIG + "notify:\n  - {url: '${OPS_HOOK_URL}/hook', format: json, on: [drift]}\n",
        )
        repo.commit("notify on drift")
        assert run("--env", "prod", "reconcile").exit_code == 0
        other = log_model(repo.prod, "Fraud", "made in prod", {})
        client(repo.prod).set_registered_model_alias("Fraud", "champion", other)  # outside git

        result = run("plan", "--all-envs", "--notify-drift", "--detailed-exitcode")
        assert result.exit_code == 3, result.output  # drift
        [(_headers, body)] = hook.got  # prod drifted; dev did not
        notice = json.loads(body)
        assert (notice["event"], notice["environment"]) == ("drift", "prod")
        assert [i["model"] for i in notice["items"]] == ["Fraud"]
        assert "outside git" in notice["items"][0]["text"]
        assert "notified" in result.stderr
        assert run("plan", "--all-envs", "--detailed-exitcode").exit_code == 3
        assert len(hook.got) == 1  # without --notify-drift, plan never sends
    finally:
        hook.close()


# ---- metric gates across environments --------------------------------------------------------

GATED_PROD = """\
apiVersion: regops/v1
policy:
  stages:
    Production:
      require_from: [Staging, Production]
  aliases:
    champion:
      require_metrics:
        auc: {min: 0.8}
models:
  Fraud:
    versions:
      dev@1: {stage: Production, aliases: [champion]}
"""


def test_a_metric_gate_on_a_copy_reads_the_source_run_then_the_copy_keeps_the_numbers(
    repo: Repo,
) -> None:
    """prod gates its champion on `auc`, logged by dev's training run: the plan judges
    the copy still to make by dev's run, and the copy's own run in prod carries the
    numbers, so later plans (and a `beats` against it) read them in prod."""
    dev_run = repo.versions(repo.dev, "Fraud")["1"].run_id  # type: ignore[attr-defined]
    client(repo.dev).log_metric(dev_run, "auc", 0.91)
    repo.write("registry-state/prod/fraud.yaml", GATED_PROD)
    repo.commit("prod: champion needs auc >= 0.8")

    doc = json.loads(run("--env", "prod", "plan", "--format", "json").stdout)
    [gated] = [c for c in doc["changes"] if c["kind"] == "alias_set"]
    assert gated["action"] == "apply", gated
    [check] = gated["metrics"]
    assert (check["metric"], check["candidate"], check["passed"]) == ("auc", 0.91, True)

    assert run("--env", "prod", "reconcile").exit_code == 0
    copy = repo.versions(repo.prod, "Fraud")["1"]
    assert client(repo.prod).get_run(copy.run_id).data.metrics == {"auc": 0.91}  # type: ignore[attr-defined]
    again = run("--env", "prod", "plan", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


def test_a_copy_whose_source_run_misses_the_metric_is_blocked_saying_so(repo: Repo) -> None:
    repo.write("registry-state/prod/fraud.yaml", GATED_PROD)
    repo.commit("prod: champion needs auc >= 0.8")
    result = run("--env", "prod", "plan")
    assert result.exit_code == 1, result.output
    assert "of version dev@1 has no metric auc" in result.output, result.output
    assert run("--env", "prod", "reconcile").exit_code == 1
    assert repo.versions(repo.prod, "Fraud") == {}  # nothing copied


def test_a_copy_beats_the_champion_copied_before_it_by_the_numbers_both_carried(
    repo: Repo,
) -> None:
    """dev@2 replaces dev@1 as prod's champion only if it beats it: the candidate's auc is
    read from dev's run (not copied yet), the incumbent's from the run its copy holds in
    prod."""
    c = client(repo.dev)
    c.log_metric(repo.versions(repo.dev, "Fraud")["1"].run_id, "auc", 0.91)  # type: ignore[attr-defined]
    v2 = log_model(repo.dev, "Fraud", "dev-v2", {"validation_status": "passed"})
    c.log_metric(repo.versions(repo.dev, "Fraud")[v2].run_id, "auc", 0.95)  # type: ignore[attr-defined]
    beats = GATED_PROD.replace("{min: 0.8}", "{min: 0.8, beats: champion, by: MARGIN}")
    repo.write("registry-state/prod/fraud.yaml", beats.replace("MARGIN", "0.01"))
    repo.commit("prod: champion needs auc >= 0.8 and to beat the last one")
    assert run("--env", "prod", "reconcile").exit_code == 0  # no incumbent yet

    def promote(margin: str) -> dict[str, object]:
        repo.write(
            "registry-state/prod/fraud.yaml",
            beats.replace("MARGIN", margin).replace(
                "dev@1: {stage: Production, aliases: [champion]}",
                "dev@1: {stage: Production}\n      dev@2: {aliases: [champion]}",
            ),
        )
        doc = json.loads(run("--env", "prod", "plan", "--format", "json").stdout)
        [moved] = [ch for ch in doc["changes"] if ch["kind"] == "alias_move"]
        [check] = moved["metrics"]
        return check

    check = promote("0.01")
    assert (check["candidate"], check["incumbent"], check["incumbent_version"]) == (
        0.95,
        0.91,
        "1",
    )
    assert check["passed"] is True
    assert promote("0.1")["passed"] is False  # 0.95 does not beat 0.91 by 0.1
