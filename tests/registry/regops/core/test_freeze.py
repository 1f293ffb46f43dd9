"""Freeze windows (`policy.freeze`) on a real sqlite registry: forward changes refused
inside a window, at its edges (from inclusive, to exclusive), rollbacks with and without
`allow_rollback`, a saved plan applied inside a window, bad windows at their line."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from regops import api
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.cli import cli
from regops.core.planner import diff
from regops.errors import PlanError
from regops.files.loader import instant, load_state
from tests.support.repo import client, write_state
from tests.support.servers import make_registry

ALIASES = """\
apiVersion: regops/v1
policy:
  use_stages: false
FREEZE
models:
  Fraud:
    versions:
      "1": {aliases: [champion]}
      "2": {}
"""


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri, "--state-dir", "registry-state"])


def utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


def window(start: float, end: float, *, allow_rollback: bool | None = None) -> str:
    extra = "" if allow_rollback is None else f", allow_rollback: {str(allow_rollback).lower()}"
    return (
        "  freeze:\n"
        f'    - {{from: {utc(start)}, to: "{utc(end)}", reason: "holiday freeze"{extra}}}'
    )


def state(root: Path, freeze: str = "", champion: str = "1") -> Path:
    text = ALIASES.replace("FREEZE\n", freeze + "\n" if freeze else "")
    if champion != "1":
        text = text.replace('"1": {aliases: [champion]}', '"1": {}').replace(
            f'"{champion}": {{}}', f'"{champion}": {{aliases: [champion]}}'
        )
    return write_state(root / "registry-state", text)


def aliases(uri: str) -> dict[str, str]:
    return {a: str(v) for a, v in client(uri).get_registered_model("Fraud").aliases.items()}


@pytest.fixture
def uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    """Fraud v1 holds champion, put there by regops (so v1 has held it: a return is a
    rollback); v2 is the newer version."""
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Fraud": 2})
    state(tmp_path)
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    assert aliases(sqlite_uri) == {"champion": "1"}
    return sqlite_uri


HOUR = 3600.0


def test_forward_change_inside_a_window_is_refused(uri: str, tmp_path: Path) -> None:
    now = time.time()
    state(tmp_path, window(now - HOUR, now + HOUR), champion="2")
    result = regops(uri, "plan")
    assert result.exit_code == 1, result.output
    assert "! alias champion: version 1 -> 2  [BLOCKED]" in result.output
    assert (
        f"FAIL freeze: frozen from {utc(now - HOUR)} to {utc(now + HOUR)} (UTC): holiday freeze; "
        "forward changes refused"
    ) in result.output
    doc = json.loads(regops(uri, "plan", "--format", "json").stdout)
    (change,) = doc["changes"]
    assert (change["action"], change["gates"][-1]["gate"]) == ("blocked", "freeze")
    result = regops(uri, "reconcile")
    assert result.exit_code == 1, result.output
    assert aliases(uri) == {"champion": "1"}


@pytest.mark.parametrize(
    ("at", "frozen"),
    [(-1, False), (0, True), (1, True), (HOUR - 1, True), (HOUR, False)],
    ids=["second-before-from", "at-from", "inside", "second-before-to", "at-to"],
)
def test_window_edges_from_inclusive_to_exclusive(
    uri: str, tmp_path: Path, at: float, frozen: bool
) -> None:
    start = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    state(tmp_path, window(start, start + HOUR), champion="2")
    desired = load_state(tmp_path / "registry-state", stages_supported=False)
    live = MlflowRegistry(uri).snapshot(["Fraud"])
    plan = diff(desired, live, now=start + at)
    (change,) = plan.changes
    assert change.blocked is frozen
    assert [g.gate for g in change.gates] == (["freeze"] if frozen else [])


def move_champion_to_2(uri: str, tmp_path: Path) -> None:
    state(tmp_path, champion="2")
    assert regops(uri, "reconcile").exit_code == 0
    assert aliases(uri) == {"champion": "2"}


def test_rollback_passes_with_allow_rollback(uri: str, tmp_path: Path) -> None:
    move_champion_to_2(uri, tmp_path)
    now = time.time()
    state(tmp_path, window(now - HOUR, now + HOUR, allow_rollback=True))  # back to v1
    result = regops(uri, "plan")
    assert result.exit_code == 0, result.output
    assert (
        f"ok   freeze: frozen from {utc(now - HOUR)} to {utc(now + HOUR)} (UTC): holiday "
        "freeze; rollback: version 1 held champion under regops before: allow_rollback"
    ) in result.output
    assert regops(uri, "reconcile").exit_code == 0
    assert aliases(uri) == {"champion": "1"}


@pytest.mark.parametrize("allow", [False, None], ids=["allow_rollback-false", "unset"])
def test_rollback_is_refused_without_allow_rollback(
    uri: str, tmp_path: Path, allow: bool | None
) -> None:
    move_champion_to_2(uri, tmp_path)
    now = time.time()
    state(tmp_path, window(now - HOUR, now + HOUR, allow_rollback=allow))
    result = regops(uri, "plan")
    assert result.exit_code == 1, result.output
    assert (
        "holiday freeze; rollback: version 1 held champion under regops before, but "
        "allow_rollback is not set"
    ) in result.output
    assert regops(uri, "reconcile").exit_code == 1
    assert aliases(uri) == {"champion": "2"}


def test_forward_change_is_refused_even_with_allow_rollback(uri: str, tmp_path: Path) -> None:
    now = time.time()
    state(tmp_path, window(now - HOUR, now + HOUR, allow_rollback=True), champion="2")
    result = regops(uri, "plan")
    assert result.exit_code == 1, result.output
    assert "holiday freeze; forward changes refused" in result.output


STAGES = """\
apiVersion: regops/v1
policy:
FREEZE
models:
  Churn:
    versions:
      "1": {stage: ONE}
      "2": {stage: TWO}
"""


def test_stage_rollback_takes_the_newer_version_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str
) -> None:
    """v1 Production -> v2 Production (v1 archived) under regops, then the revert in a
    freeze with allow_rollback: v1 returns (it held Production), v2 leaves (taken away)."""
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Churn": 2})

    def write(one: str, two: str, freeze: str = "  unlisted_versions: ignore") -> None:
        text = STAGES.replace("FREEZE", freeze).replace("ONE", one).replace("TWO", two)
        write_state(tmp_path / "registry-state", text)

    write("Production", "None")
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    write("Archived", "Production")
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    now = time.time()
    write("Production", "Archived", window(now - HOUR, now + HOUR, allow_rollback=True))
    result = regops(sqlite_uri, "plan")
    assert result.exit_code == 0, result.output
    assert "rollback: version 1 held Production under regops before: allow_rollback" in (
        result.output
    )
    assert "takes version 2 out of service (stage Archived): allow_rollback" in result.output
    assert regops(sqlite_uri, "reconcile").exit_code == 0
    stages = {str(v.version): v.current_stage for v in client(sqlite_uri).search_model_versions()}
    assert stages == {"1": "Production", "2": "Archived"}


def test_saved_plan_applied_inside_a_window_is_judged_again(uri: str, tmp_path: Path) -> None:
    now = time.time()
    state(tmp_path, window(now + HOUR, now + 2 * HOUR), champion="2")  # not frozen yet
    assert regops(uri, "plan", "--out", "plan.json").exit_code == 0
    saved = api.load_plan_file(Path("plan.json"))
    desired = load_state(tmp_path / "registry-state", stages_supported=False)
    registry = MlflowRegistry(uri)
    assert api.judged_now(saved, desired, registry, now=now) == saved  # no window: as saved
    assert registry.calls == 0  # and no read
    with pytest.raises(PlanError) as err:
        api.judged_now(saved, desired, registry, now=now + HOUR)
    assert err.value.problems == [
        f"Fraud: alias champion: version 1 -> 2: frozen from {utc(now + HOUR)} to "
        f"{utc(now + 2 * HOUR)} (UTC): holiday freeze; forward changes refused",
        "the saved plan was made outside this freeze window; nothing was applied",
    ]
    # Through the CLI, with the window over now.
    state(tmp_path, window(now - HOUR, now + HOUR), champion="2")
    result = regops(uri, "reconcile", "--plan", "plan.json")
    assert result.exit_code == 1, result.output
    assert "holiday freeze; forward changes refused" in result.output
    assert aliases(uri) == {"champion": "1"}


@pytest.mark.parametrize(
    ("entry", "line", "message"),
    [
        (
            "{from: 2026-12-20T00:00:00, to: 2027-01-04, reason: r}",
            5,
            "is not a UTC instant: write 2026-12-20T00:00:00Z",
        ),
        (
            "{from: '2027-01-04', to: '2026-12-20', reason: r}",
            5,
            "policy.freeze[0]: to (2026-12-20) must be after from (2027-01-04)",
        ),
        ("{from: '2026-13-45', to: '2027-01-04', reason: r}", 5, "is not a date or time"),
        ("{from: '2026-12-20', to: '2027-01-04'}", 5, "'reason' is required"),
        (
            "{from: '2026-12-20', to: '2027-01-04', reason: r, allow_rollbacks: true}",
            5,
            "unknown key 'allow_rollbacks'",
        ),
        ("{from: tomorrow, to: '2027-01-04', reason: r}", 5, "'tomorrow' is not a UTC instant"),
    ],
    ids=["naive-time", "empty-window", "bad-date", "no-reason", "typo", "words"],
)
def test_bad_window_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: str, line: int, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    write_state(
        tmp_path / "registry-state",
        f"apiVersion: regops/v1\npolicy:\n  freeze:\n\n    - {entry}\nmodels: {{}}\n",
    )
    result = CliRunner().invoke(cli, ["validate", "--state-dir", "registry-state"])
    assert result.exit_code == 1, result.output
    assert f"registry-state/models.yaml:{line}: " in result.output, result.output
    assert message in result.output, result.output
    assert len([x for x in result.output.splitlines() if x.startswith("registry-state")]) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-20T00:00:00Z", "2026-12-20T00:00:00+00:00"),
        ("2026-12-20", "2026-12-20T00:00:00+00:00"),
        ("2026-12-20T00:00Z", "2026-12-20T00:00:00+00:00"),
        ("2026-12-20T01:00:00+01:00", "2026-12-20T00:00:00+00:00"),
        ("2026-12-20 00:00:00.5Z", "2026-12-20T00:00:00.500000+00:00"),
        ("2026-12-20T00:00:00", None),  # no zone: refused
        ("2026-13-45", None),
    ],
    ids=["z", "date", "no-seconds", "offset", "fraction", "naive", "impossible"],
)
def test_instants_read_the_same_on_every_python(text: str, expected: str | None) -> None:
    at = instant(text)
    got = None if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat()  # noqa: UP017
    assert got == expected
