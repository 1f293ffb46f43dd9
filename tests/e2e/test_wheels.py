"""The two distributions as a user gets them: `pip wheel` of this repository's root
(`regops`) and of `workload/` (`accident-prediction`), each installed into a new venv.

The wheels are built from a copy of the checkout's files (tracked and new, not ignored)
with pip's default build isolation, as a user runs `pip wheel`: a stale `build/` in the
checkout cannot leak into them.

- The regops wheel goes into a clean venv with its dependencies resolved from the package
  index, as `pip install regops` does (about 2 minutes here, most of the test's time): it
  proves that its metadata brings a working `regops` and nothing of the workload.
- The workload's wheel needs the training stack (mlflow, scikit-learn, xgboost, lightgbm,
  pandas: many minutes to install). Its venv borrows the running interpreter's installed
  packages through a plain path entry (a `.pth` line, whose own `.pth` files, among them
  any editable install of this checkout, are not processed) and gets both wheels with
  `--no-deps`; `pip check` then holds the wheel's declared dependencies against them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import regops
from tests.support.packaging import clean_env, copy_checkout, run
from tests.support.paths import FIXTURES, SCHEMAS

pytestmark = pytest.mark.e2e

# The reconciler's wheel is code, four schemas, two page assets and the init templates;
# 224 KB when this was written. Far above that means something else came along.
MAX_REGOPS_WHEEL_BYTES = 400_000
STATE_SCHEMAS = (
    "plan.schema.json",
    "registry-state.schema.json",
    "regops-config.schema.json",
    "snapshot.schema.json",
)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`pip wheel --no-deps` of the root and of workload/, from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheels")
    tree, dist = tmp / "checkout", tmp / "dist"
    copy_checkout(tree)
    python = sys.executable
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, ".", "./workload", cwd=tree)
    built = {p.name.split("-")[0]: p for p in dist.glob("*.whl")}
    assert set(built) == {"regops", "accident_prediction"}, sorted(built)
    return built


def new_venv(path: Path) -> Path:
    run(sys.executable, "-m", "venv", path)
    return path / "bin"


def test_regops_wheel_holds_the_reconciler_alone(wheels: dict[str, Path]) -> None:
    whl = wheels["regops"]
    assert whl.name == f"regops-{regops.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
        tops = {n.split("/")[0] for n in names}
        assert tops == {"regops", f"regops-{regops.__version__}.dist-info"}, tops
        for schema in STATE_SCHEMAS:  # real files with the repository's content, not links
            assert z.read(f"regops/files/schemas/{schema}") == (SCHEMAS / schema).read_bytes()
        assert "regops/py.typed" in names
        assert any(n.startswith("regops/files/templates/") for n in names), names
        entry_points = z.read(f"regops-{regops.__version__}.dist-info/entry_points.txt").decode()
        metadata = z.read(f"regops-{regops.__version__}.dist-info/METADATA").decode()
    assert "regops = regops.cli:main" in entry_points
    assert "accident" not in entry_points
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    core = [r for r in requires if "extra ==" not in r]
    assert any("mlflow-skinny" in r for r in core), core
    heavy = [r for r in core if any(h in r for h in ("scikit-learn", "pandas", "xgboost"))]
    assert heavy == [], heavy
    size = whl.stat().st_size
    print(f"\nregops wheel: {size:,} bytes, {len(names)} files")
    assert size < MAX_REGOPS_WHEEL_BYTES, size


def test_workload_wheel_holds_the_workload(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["accident_prediction"]) as z:
        names = z.namelist()
        tops = {n.split("/")[0] for n in names}
        metadata = z.read("accident_prediction-0.1.0.dist-info/METADATA").decode()
        entry_points = z.read("accident_prediction-0.1.0.dist-info/entry_points.txt").decode()
        for schema in ("model-config.schema.json", "prediction-input.schema.json"):
            content = z.read(f"accident_prediction/schemas/{schema}")
            assert content == (SCHEMAS / schema).read_bytes()
    assert tops == {"accident_prediction", "accident_prediction-0.1.0.dist-info"}, tops
    assert "Requires-Dist: regops" in metadata
    assert "accident = accident_prediction.cli:main" in entry_points
    print(f"\nworkload wheel: {wheels['accident_prediction'].stat().st_size:,} bytes")


def test_regops_wheel_installs_a_working_regops_and_no_workload(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """A clean venv, dependencies from the index: `regops` works, the workload is absent."""
    bin_dir = new_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", "-q", wheels["regops"], timeout=900)

    assert run(bin_dir / "regops", "--version").strip() == f"regops, version {regops.__version__}"
    state = tmp_path / "registry-state"
    state.mkdir()
    shutil.copy(FIXTURES / "valid" / "full.yaml", state / "full.yaml")
    report = json.loads(
        run(bin_dir / "regops", "--state-dir", state, "--format", "json", "validate")
    )
    assert report["valid"] is True, report
    # The core reads a registry: a plan of the minimal state against a new sqlite registry.
    minimal = tmp_path / "minimal"
    minimal.mkdir()
    shutil.copy(FIXTURES / "valid" / "minimal.yaml", minimal / "m.yaml")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    plan = subprocess.run(
        [bin_dir / "regops", "--state-dir", minimal, "--tracking-uri", uri, "plan"],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )  # fmt: skip
    assert plan.returncode == 1, plan.stdout + plan.stderr  # the model is not registered
    assert "model Other_Model is not in the registry" in plan.stdout, plan.stdout + plan.stderr

    probe = "import importlib.util as u; print([m for m in ('accident_prediction', 'sklearn', 'pandas', 'xgboost') if u.find_spec(m)])"  # noqa: E501
    assert run(bin_dir / "python", "-c", probe).strip() == "[]"
    assert not (bin_dir / "accident").exists()
    run(bin_dir / "pip", "check")

    # The init templates came with the wheel: `regops init` scaffolds a new repository.
    project = tmp_path / "project"
    project.mkdir()
    run("git", "init", "-q", cwd=project)
    run(
        bin_dir / "regops",
        "init",
        "--tracking-uri",
        f"sqlite:///{project / 'mlflow.db'}",
        cwd=project,
    )
    assert (project / ".github" / "workflows" / "regops-plan.yml").is_file()
    assert (project / ".pre-commit-config.yaml").is_file()
    run(bin_dir / "regops", "validate", cwd=project)


def test_workload_wheel_installs_the_accident_command(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """Both wheels (`--no-deps`) over the running interpreter's packages: `accident` runs."""
    bin_dir = new_venv(tmp_path / "venv")
    venv_site = Path(
        run(bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        .strip()
    )  # fmt: skip
    run(
        bin_dir / "pip",
        "install",
        "-q",
        "--no-deps",
        wheels["regops"],
        wheels["accident_prediction"],
    )
    # After the install, so that pip saw only the venv's own (empty) site-packages.
    (venv_site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    where = (
        "import accident_prediction, regops; print(accident_prediction.__file__, regops.__file__)"
    )
    files = run(bin_dir / "python", "-c", where).split()
    assert all(f.startswith(str(venv_site)) for f in files), files  # the wheels, not the checkout
    assert "train" in run(bin_dir / "accident", "--help")
    assert "Usage: regops" in run(bin_dir / "regops", "--help")
    run(bin_dir / "pip", "check")
