"""`regops init` in fresh git repositories, against real sqlite registries.

Idempotent (a second run changes nothing and says so), never overwrites a file without
--force (refused by name, nothing written), adopts a live registry through export and
creates no database when the registry does not exist yet.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from regops import __version__
from tests.support.repo import Repo, client, regops

ACTION_INPUTS = {"command", "state-dir", "env", "report", "live", "version"}  # action.yml


def tree(root: Path) -> dict[str, bytes]:
    """Every file of the work tree (not .git) and its bytes."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts[:1]
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    r = Repo(tmp_path / "repo")
    monkeypatch.chdir(r.root)
    for var in ("MLFLOW_TRACKING_URI", "DAGSHUB_REPO", "REGOPS_REQUIRE_REGISTRY"):
        monkeypatch.delenv(var, raising=False)
    return r


def test_init_twice_changes_nothing_and_creates_no_database(repo: Repo, tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "mlflow.db"
    first = regops("init", "--tracking-uri", f"sqlite:///{db}")
    assert first.exit_code == 0, first.output
    files = tree(repo.root)
    assert sorted(files) == [
        ".github/CODEOWNERS",
        ".github/workflows/regops-apply.yml",
        ".github/workflows/regops-drift.yml",
        ".github/workflows/regops-plan.yml",
        ".pre-commit-config.yaml",
        "registry-state/models.yaml",
    ]
    assert not db.exists()
    assert not db.parent.exists()
    assert "registry-state/: empty state" in first.output
    assert "Next steps:" in first.output
    assert regops("validate").exit_code == 0
    assert regops("codeowners", "--check").exit_code == 0

    second = regops("--format", "json", "init", "--tracking-uri", f"sqlite:///{db}")
    assert second.exit_code == 0, second.output
    doc = json.loads(second.output)
    assert doc["changed"] is False
    assert doc["created"] == []
    assert doc["overwritten"] == []
    assert doc["kept_state"] == ["registry-state"]
    assert len(doc["unchanged"]) == 5
    assert tree(repo.root) == files
    text = regops("init", "--tracking-uri", f"sqlite:///{db}")
    assert "nothing changed" in text.output
    assert tree(repo.root) == files
    assert not db.exists()


def test_init_refuses_existing_files_by_name_and_writes_nothing(repo: Repo) -> None:
    (repo.root / ".github" / "workflows").mkdir(parents=True)
    mine = {
        ".github/workflows/regops-plan.yml": "name: my own plan\n",
        ".pre-commit-config.yaml": "repos: []\n",
    }
    for rel, text in mine.items():
        (repo.root / rel).write_text(text)

    result = regops("init")
    assert result.exit_code == 1
    assert (
        "refusing to overwrite .github/workflows/regops-plan.yml, .pre-commit-config.yaml"
        in result.output
    )
    assert "nothing was written" in result.output
    assert "Traceback" not in result.output
    assert tree(repo.root) == {k: v.encode() for k, v in mine.items()}

    forced = regops("init", "--force", "--owner", "@acme/ml-platform")
    assert forced.exit_code == 0, forced.output
    assert "overwrote .pre-commit-config.yaml (--force)" in forced.output
    assert "regops-validate" in (repo.root / ".pre-commit-config.yaml").read_text()
    assert "/registry-state/ @acme/ml-platform" in (repo.root / ".github/CODEOWNERS").read_text()


def test_init_keeps_other_codeowners_lines(repo: Repo) -> None:
    (repo.root / ".github").mkdir()
    (repo.root / ".github" / "CODEOWNERS").write_text("* @acme/everyone\n")
    assert regops("init").exit_code == 1  # CODEOWNERS would change: refused
    result = regops("init", "--force", "--owner", "@acme/ml")
    assert result.exit_code == 0, result.output
    text = (repo.root / ".github" / "CODEOWNERS").read_text()
    assert text.endswith("* @acme/everyone\n")
    assert "/registry-state/ @acme/ml\n" in text
    assert regops("init", "--owner", "@acme/ml").exit_code == 0  # and now it is unchanged


def test_init_adopts_the_models_of_a_live_sqlite_registry(repo: Repo, sqlite_uri: str) -> None:
    c = client(sqlite_uri)
    for name in ("Fraud", "Churn"):
        c.create_registered_model(name)
        for _ in range(2):
            c.create_model_version(name, source="file:///tmp/model")
    c.transition_model_version_stage("Fraud", "2", "Production")
    c.set_registered_model_alias("Churn", "champion", "1")

    result = regops("--format", "json", "init", "--tracking-uri", sqlite_uri)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["adopted"] == {"registry-state": 2}
    assert "registry-state/Fraud.yaml" in doc["created"]
    fraud = yaml.safe_load((repo.root / "registry-state" / "Fraud.yaml").read_text())
    assert fraud["models"]["Fraud"]["versions"]["2"]["stage"] == "Production"
    churn = yaml.safe_load((repo.root / "registry-state" / "Churn.yaml").read_text())
    # No editor hint at a schemas/ folder that this repository has not.
    assert "$schema" not in (repo.root / "registry-state" / "Fraud.yaml").read_text()
    assert churn["models"]["Churn"]["versions"]["1"]["aliases"] == ["champion"]
    # Adopted means in sync: the plan of the new state against the registry is empty.
    plan = regops("--tracking-uri", sqlite_uri, "--format", "json", "plan")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["summary"]["to_apply"] == 0
    # A version registered after the adoption does not make init rewrite the state.
    c.create_model_version("Fraud", source="file:///tmp/model")
    again = regops("init", "--tracking-uri", sqlite_uri)
    assert again.exit_code == 0, again.output
    assert "kept registry-state/" in again.output


def test_init_aliases_and_environments(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI_DEV", f"sqlite:///{tmp_path / 'dev.db'}")
    result = regops("init", "--env", "dev", "--env", "prod", "--aliases")
    assert result.exit_code == 0, result.output
    assert "MLFLOW_TRACKING_URI_PROD is not set" in result.output
    config = yaml.safe_load((repo.root / "regops.yaml").read_text())
    assert config["environments"]["prod"] == {
        "tracking_uri": "${MLFLOW_TRACKING_URI_PROD}",
        "state_dir": "registry-state/prod",
    }
    for env in ("dev", "prod"):
        state = yaml.safe_load((repo.root / "registry-state" / env / "models.yaml").read_text())
        assert state["policy"] == {"use_stages": False}
    assert not (tmp_path / "dev.db").exists()
    monkeypatch.setenv("MLFLOW_TRACKING_URI_PROD", f"sqlite:///{tmp_path / 'prod.db'}")
    assert regops("--env", "prod", "validate").exit_code == 0
    hooks = (repo.root / ".pre-commit-config.yaml").read_text()
    assert "- id: regops-validate" in hooks
    assert "- id: regops-codeowners" not in hooks  # it maps one state directory
    plan = yaml.safe_load((repo.root / ".github/workflows/regops-plan.yml").read_text())
    job = plan["jobs"]["plan"]
    assert job["strategy"]["matrix"]["env"] == ["dev", "prod"]
    assert job["env"]["MLFLOW_TRACKING_URI_PROD"] == "${{ secrets.MLFLOW_TRACKING_URI_PROD }}"
    step = job["steps"][-1]
    assert step["with"] == {"command": "plan", "env": "${{ matrix.env }}", "version": __version__}


@pytest.mark.parametrize("name", ["regops-plan.yml", "regops-apply.yml", "regops-drift.yml"])
def test_workflows_use_the_action_with_its_inputs(repo: Repo, name: str) -> None:
    assert regops("init", "--action", "acme/regops@v1").exit_code == 0
    doc = yaml.safe_load((repo.root / ".github" / "workflows" / name).read_text())
    assert doc["permissions"] == {}
    (job,) = doc["jobs"].values()
    step = job["steps"][-1]
    assert step["uses"] == "acme/regops@v1"
    assert set(step["with"]) <= ACTION_INPUTS
    assert step["with"]["command"] == name.removeprefix("regops-").removesuffix(".yml")
    assert step["with"]["state-dir"] == "registry-state"


def test_init_outside_git_and_bad_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = regops("init")
    assert result.exit_code == 1
    assert "not inside a git repository" in result.output
    assert list(tmp_path.iterdir()) == []
    Repo(tmp_path / "r")
    monkeypatch.chdir(tmp_path / "r")
    bad = regops("init", "--env", "../x", "--owner", "acme")
    assert bad.exit_code == 64, bad.output
    assert "'../x'" in bad.output
    assert "'acme'" in bad.output


def test_a_model_name_too_long_for_a_file_name_is_refused_before_any_write(
    repo: Repo, sqlite_uri: str
) -> None:
    """A registry's model names become file names: one the filesystem cannot hold is an
    error naming it, and nothing is written (not even the workflows)."""
    name = "M" * 251  # + ".yaml": 256 bytes, one more than ext4 and tmpfs hold
    client(sqlite_uri).create_registered_model(name)
    result = regops("init", "--tracking-uri", sqlite_uri)
    assert result.exit_code == 1, result.output
    assert "the file name is longer than this filesystem allows" in result.output
    assert "Traceback" not in result.output
    assert tree(repo.root) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe* @x\n", ".github/CODEOWNERS: not UTF-8 text"),
        (b"#" * (3 << 20) + b"\n", ".github/CODEOWNERS: file is larger than"),
    ],
    ids=["not-utf8", "too-large"],
)
def test_a_codeowners_that_cannot_be_read_is_an_error(
    repo: Repo, content: bytes, message: str
) -> None:
    (repo.root / ".github").mkdir()
    (repo.root / ".github" / "CODEOWNERS").write_bytes(content)
    result = regops("init", "--force")
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert sorted(tree(repo.root)) == [".github/CODEOWNERS"]


def test_init_aliases_adopts_aliases_only_and_is_in_sync(repo: Repo, sqlite_uri: str) -> None:
    c = client(sqlite_uri)
    c.create_registered_model("Fraud")
    for _ in range(2):
        c.create_model_version("Fraud", source="file:///tmp/model")
    c.transition_model_version_stage("Fraud", "2", "Production")
    c.set_registered_model_alias("Fraud", "champion", "2")
    result = regops("init", "--aliases", "--tracking-uri", sqlite_uri)
    assert result.exit_code == 0, result.output
    state = yaml.safe_load((repo.root / "registry-state" / "Fraud.yaml").read_text())
    assert state["policy"] == {"use_stages": False}
    assert state["models"]["Fraud"]["versions"] == {"1": {}, "2": {"aliases": ["champion"]}}
    plan = regops("--tracking-uri", sqlite_uri, "--format", "json", "plan")
    assert plan.exit_code == 0, plan.output
    assert json.loads(plan.output)["summary"]["to_apply"] == 0


def test_init_over_an_unreachable_registry_starts_empty_and_says_why(
    repo: Repo, dead_port: int
) -> None:
    result = regops("init", "--tracking-uri", f"http://ci:s3cret-pw@127.0.0.1:{dead_port}")
    assert result.exit_code == 0, result.output
    assert "s3cret-pw" not in result.output  # the note names the registry, never its login
    assert "note: registry-state: the registry could not be read" in result.output
    assert "starting empty" in result.output
    assert "models: {}" in (repo.root / "registry-state" / "models.yaml").read_text()
