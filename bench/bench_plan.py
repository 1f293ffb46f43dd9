"""Benchmark: `regops plan` / `reconcile` / `validate` against MlflowClient loops.

One run, side by side, on a real local `mlflow server` (sqlite backend) holding
100 registered models x 20 versions (2,000 versions; per model v1-16 Archived,
v17-18 None, v19 Production `champion`, v20 Staging `challenger`, three evidence
tags per version). Every REST call is counted at the HTTP layer by a counting
reverse proxy (bench/counting_proxy.py); clients only ever talk to a proxy.

1. Seed: MLflow's own ORM rows (the tables `mlflow server` reads) written into
   the server's sqlite file in one transaction before the server starts. Over
   REST, or one SqlAlchemyStore call at a time, 2,000 versions plus their stages
   take minutes (~15 ms a call here). An sqlite backup of that file backs a
   second, identical server for the MlflowClient write comparison.
2. `regops export` the live registry into a state directory (a git repository),
   add the usual policy (gates), reconcile once (adoption), then edit the files
   as a pull request would: 10 promotions, 5 new aliases, 5 archivals (50 changes).
3. Reads: `regops plan` against a naive MlflowClient loop (get_registered_model
   per model + get_model_version per version) and a per-model search loop.
4. Writes: `regops reconcile` on server A; the writes it made, recorded by the
   proxy, replayed in order through MlflowClient's public methods on server B.
   Then the stamp cost: a 300-change reconcile (200 versions, 100 models) with one
   `regops.audit` per changed version on A, against the same run with the five-tag
   stamps of earlier versions on B.
5. `regops validate` in fresh processes; it must not import mlflow.

Run: .venv/bin/python bench/bench_plan.py [--repeats 3] [--naive-repeats 1] [--keep]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the real-server helpers the tests use

from tests.support.servers import FAST_HTTP_ENV, MlflowServer  # noqa: E402

import registry_seed  # noqa: E402
from counting_proxy import CountingProxy  # noqa: E402
from registry_seed import copy_sqlite, start_servers  # noqa: E402

N_MODELS = 100
N_VERSIONS = 20
PROMOTE = range(0, 10)  # v20 Staging -> Production + champion, v19 -> Archived, drop challenger
ALIAS = range(10, 15)  # set alias `shadow` on v18 (stage None)
ARCHIVE = range(15, 20)  # v17 None -> Archived
POLICY = """\
policy:
  unlisted_versions: ignore
  drift: correct
  stages:
    Production:
      max_versions: 1
      require_from: [Staging, Production]
      require_tags: {validation_status: passed, smoke_test_status: passed}
    Staging:
      require_tags: {validation_status: passed}
"""

# Endpoint -> what it is, for the write tables.
CHANGE_ENDPOINTS = {
    "POST model-versions/transition-stage": "stage transition",
    "POST registered-models/alias": "alias set/move",
    "DELETE registered-models/alias": "alias delete",
    "PATCH registered-models/update": "description",
}
STAMP_ENDPOINT = "POST model-versions/set-tag"
RECORD_ENDPOINT = "POST registered-models/set-tag"
GET_MODEL = "GET registered-models/get"
SEARCH_MODELS = "GET registered-models/search"
SEARCH_VERSIONS = "GET model-versions/search"


AUDIT_KEYS = ("regops.audit",)  # one JSON stamp per changed version (src/regops/audit.py)
# The stamp of earlier versions: five version tags per changed version, still read.
LEGACY_STAMP = {
    "commit": "regops.commit",
    "at": "regops.applied_at",
    "actor": "regops.actor",
    "state_file": "regops.state_file",
    "held": "regops.held",
}
# The stamp-cost workload (issue 9's figure: 300 changes on 200 versions made 1,404 calls
# with the five-tag stamps): per model, two Archived versions back to None, one of them
# with a new alias `canary`. 3 changes on 2 versions x 100 models; no gate applies.
STAMP_VERSIONS = (N_VERSIONS - 6, N_VERSIONS - 5)  # v14, v15: Archived in the seed


def version_tag_keys(calls: Any) -> Counter[str]:
    """How many model-version tags of each key a run wrote (from the proxy's record)."""
    return Counter(body["key"] for key, body in calls.writes if key == STAMP_ENDPOINT)


def model_name(i: int) -> str:
    return f"bench_model_{i:03d}"


def stage_of(v: int) -> str:
    return registry_seed.stage_of(v, N_VERSIONS)


# ---------------------------------------------------------------------------- helpers
def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, list[float]]:
    times, out = [], None
    for _ in range(repeats):
        out, dt = timed(fn)
        times.append(dt)
    return out, statistics.median(times), times


def total(c: Counter[str]) -> int:
    return sum(c.values())


def cli_cmd() -> list[str]:
    """The `regops` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / "regops"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from regops.cli import main; main()"]


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=regops bench", "-c", "user.email=bench@localhost", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.0f}x" if b else "n/a"


# ------------------------------------------------------------------------------ setup
def seed_registry(db: Path) -> None:
    """2,000 versions with stages, aliases and evidence tags, in one ORM transaction."""
    registry_seed.seed_registry(db, [model_name(i) for i in range(N_MODELS)], N_VERSIONS)


def edit_state(state_dir: Path) -> None:
    """What a pull request would change: promotions, new aliases, archiving."""
    names = [model_name(i) for i in range(N_MODELS)]
    registry_seed.edit_state(state_dir, names, N_VERSIONS, PROMOTE, ALIAS, ARCHIVE)


def add_policy(state_dir: Path) -> None:
    registry_seed.add_policy(state_dir, POLICY)


# ---------------------------------------------------------------------- measurements
def naive_loop(uri: str, desired: Any) -> dict[str, Any]:
    """What a script without a snapshot does: one read per model and per version."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out: dict[str, Any] = {}
    for name, spec in desired.models.items():
        rm = client.get_registered_model(name)
        versions = {}
        for v in spec.versions:
            mv = client.get_model_version(name, v)
            versions[v] = (mv.current_stage, mv.run_id, dict(mv.tags))
        out[name] = (dict(rm.aliases), versions)
    return out


def per_model_search(uri: str, desired: Any) -> dict[str, Any]:
    """A tidier loop: one get_registered_model and one search_model_versions per model."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    out: dict[str, Any] = {}
    for name in desired.models:
        rm = client.get_registered_model(name)
        mvs = client.search_model_versions(f"name = '{name}'", max_results=1000)
        out[name] = (dict(rm.aliases), {mv.version: mv.current_stage for mv in mvs})
    return out


def replay_with_client(uri: str, writes: list[tuple[str, Any]]) -> None:
    """Make the writes regops made (as the proxy recorded them) through MlflowClient's
    public methods, in the same order: the same calls, whatever regops decided to write."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for key, body in writes:
        name = body["name"]
        if key == "POST model-versions/transition-stage":
            client.transition_model_version_stage(
                name,
                body["version"],
                body["stage"],
                archive_existing_versions=bool(body.get("archive_existing_versions")),
            )
        elif key == "POST registered-models/alias":
            client.set_registered_model_alias(name, body["alias"], body["version"])
        elif key == "DELETE registered-models/alias":
            client.delete_registered_model_alias(name, body["alias"])
        elif key == "PATCH registered-models/update":
            client.update_registered_model(name, body.get("description"))
        elif key == STAMP_ENDPOINT:
            client.set_model_version_tag(name, body["version"], body["key"], body["value"])
        elif key == RECORD_ENDPOINT:
            client.set_registered_model_tag(name, body["key"], body["value"])
        else:
            raise ValueError(f"no MlflowClient replay for {key}")


def run_cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    """`regops ARGS` in a fresh process: (result, wall seconds)."""
    proc, wall, _ = run_cli_cpu(args, env)
    return proc, wall


def run_cli_cpu(
    args: list[str], env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """`regops ARGS` in a fresh process: (result, wall, CPU seconds of that process).

    CPU time barely moves with the machine's load; wall time does.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([*cli_cmd(), *args], capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc, wall, cpu


VALIDATE_PROBE = """\
import json, sys
sys.argv = ["regops", "validate", "--state-dir", sys.argv[1]]
from regops.cli import cli
try:
    cli()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "mlflow": sorted(
    m for m in sys.modules if m == "mlflow" or m.startswith("mlflow."))}))
"""


def mlflow_modules_after_validate(state_dir: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    import json

    proc = subprocess.run(
        [sys.executable, "-c", VALIDATE_PROBE, str(state_dir)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(doc["code"] or 0), list(doc["mlflow"])


# ----------------------------------------------------------------------------- phases
@dataclass
class Bench:
    """What every phase needs: the scratch dir, both servers behind their proxies."""

    tmp: Path
    proxy_a: CountingProxy  # regops side
    proxy_b: CountingProxy  # MlflowClient write comparison, identical data
    url_a: str  # server A without the proxy, to show the proxy's own overhead
    state: Path
    env: dict[str, str]
    figures: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # something did not work as it must
    failures: list[str] = field(default_factory=list)  # a call-count target missed


def phase_adopt(b: Bench) -> None:
    """`regops export` -> policy -> git -> first reconcile (records) -> the PR's edit."""
    from click.testing import CliRunner

    from regops.cli import cli

    with b.proxy_a.measure() as calls:
        res, t = timed(
            lambda: CliRunner().invoke(
                cli, ["export", "--tracking-uri", b.proxy_a.url, "--output", str(b.state)]
            )
        )
    if res.exit_code != 0:
        raise RuntimeError(f"regops export failed: {res.output}")
    b.figures["export"] = (total(calls), t)
    add_policy(b.state)
    git(b.state, "init", "-q")
    git(b.state, "add", ".")
    git(b.state, "commit", "-q", "-m", "adopt the live registry (regops export)")

    # The first reconcile after an export changes nothing in MLflow but records, on
    # every managed model, what regops now owns (the `regops.applied` tag). Through the
    # CLI in a fresh process, as CI runs it.
    args = ["reconcile", "--tracking-uri", b.proxy_a.url, "--state-dir", str(b.state)]
    with b.proxy_a.measure() as calls:
        proc, t = run_cli(args, b.env)
    if proc.returncode != 0 or "0 to apply" not in proc.stdout:
        b.errors.append(f"adoption reconcile (exit {proc.returncode}): {proc.stdout[-500:]}")
    b.figures["adopt"] = (calls, t)

    edit_state(b.state)
    git(b.state, "commit", "-q", "-am", "promote 10 models, alias 5, archive 5")


def settings_for(b: Bench, uri: str | None = None) -> Any:
    from regops.settings import Settings

    return Settings(tracking_uri_flag=uri or b.proxy_a.url, state_dir=b.state)


def phase_plan(b: Bench, repeats: int) -> Any:
    """`regops plan` in-process (with its parts) and as the CLI in a fresh process."""
    from regops import api
    from regops.adapters.mlflow.registry import MlflowRegistry

    s = settings_for(b)
    desired = api.load_desired(s)
    names = list(desired.models)
    f = b.figures

    with b.proxy_a.measure() as calls:
        plan = api.run_plan(s)
    _, _, times = median_time(lambda: api.run_plan(s), repeats)
    f["plan"] = (calls, times)  # more samples after the naive loop, see phase_naive

    registry = MlflowRegistry(b.proxy_a.url)
    with b.proxy_a.measure() as calls:
        registry.snapshot(names)
    _, t, _ = median_time(lambda: registry.snapshot(names), repeats)
    f["snapshot"] = (calls, t)
    _, f["load"], _ = median_time(lambda: api.load_desired(s), repeats)

    args = ["plan", "--tracking-uri", b.proxy_a.url, "--state-dir", str(b.state)]
    with b.proxy_a.measure() as calls:
        runs = [run_cli(args, b.env) for _ in range(max(1, repeats // 2))]
    for proc, _ in runs:
        if proc.returncode != 0:
            b.errors.append(f"regops plan (CLI) exit {proc.returncode}: {proc.stderr[-500:]}")
    lines = [ln for ln in runs[0][0].stdout.splitlines() if ln.strip()]
    f["plan_summary"] = lines[-1] if lines else "?"
    f["plan_cli"] = (
        Counter({k: v // len(runs) for k, v in calls.items()}),
        statistics.median(t for _, t in runs),
    )
    return plan


def phase_naive(b: Bench, repeats: int, naive_repeats: int) -> None:
    """The MlflowClient read loops, bracketed by `regops plan` runs: the plan's wall is
    the median of runs before and after them, so a change in the machine's load
    during the long naive loop moves both sides alike."""
    from regops import api

    s = settings_for(b)
    desired = api.load_desired(s)
    f = b.figures
    with b.proxy_a.measure() as calls:
        _, t = timed(lambda: per_model_search(b.proxy_a.url, desired))
    f["search"] = (calls, t)
    with b.proxy_a.measure() as calls:
        naive_out, t, _ = median_time(lambda: naive_loop(b.proxy_a.url, desired), naive_repeats)
    assert len(naive_out) == N_MODELS
    f["naive"] = (Counter({k: v // naive_repeats for k, v in calls.items()}), t)
    f["per_call"] = per_call_latency(b, desired)
    _, _, after = median_time(lambda: api.run_plan(s), repeats)
    calls, before = f["plan"]
    f["plan"] = (calls, statistics.median([*before, *after]))
    f["plan_samples"] = len(before) + len(after)


PER_CALL_SAMPLES = 5 * N_VERSIONS


def per_call_latency(b: Bench, desired: Any) -> tuple[float, float]:
    """Median time of one get_model_version, direct and through the proxy (its overhead)."""
    from mlflow import MlflowClient

    pairs = [(n, v) for n in list(desired.models)[:5] for v in list(desired.models[n].versions)]
    direct = MlflowClient(tracking_uri=b.url_a, registry_uri=b.url_a)
    proxied = MlflowClient(tracking_uri=b.proxy_a.url, registry_uri=b.proxy_a.url)
    out: list[list[float]] = [[], []]
    for n, v in pairs:  # alternate, so both see the same machine load
        for times, client in zip(out, (direct, proxied), strict=True):
            t0 = time.perf_counter()
            client.get_model_version(n, v)
            times.append(time.perf_counter() - t0)
    return statistics.median(out[0]), statistics.median(out[1])


def phase_writes(b: Bench, plan: Any) -> None:
    """regops reconcile on server A; the same writes through MlflowClient on server B."""
    from regops import api
    from regops.adapters.mlflow.registry import MlflowRegistry

    s = settings_for(b)
    desired = api.load_desired(s)
    f = b.figures
    f["applied"] = [c for c in plan.changes if c.action == "apply"]
    f["records"] = len(plan.records)
    _, f["stamps_time"] = timed(lambda: api.stamps_for(plan, desired, b.state))

    with b.proxy_a.measure() as calls:
        result, t = timed(lambda: api.run_reconcile(s))
    if not result.ok:
        b.errors.append(f"reconcile failed: {result.to_dict()}")
    f["reconcile"] = (calls, t)
    with b.proxy_b.measure() as calls:
        _, t = timed(lambda: replay_with_client(b.proxy_b.url, f["reconcile"][0].writes))
    f["client"] = (calls, t)

    names = list(desired.models)
    live_a = MlflowRegistry(b.proxy_a.url).snapshot(names)
    live_b = MlflowRegistry(b.proxy_b.url).snapshot(names)
    if live_a.fingerprint(names) != live_b.fingerprint(names):
        b.errors.append("regops and MlflowClient left different registries")
    with b.proxy_a.measure() as calls:
        again = api.run_plan(s)
    if again.changes or again.records:
        b.errors.append(f"plan after reconcile is not empty: {len(again.changes)} change(s)")
    f["again"] = calls


def phase_stamp_cost(b: Bench) -> None:
    """Calls per change of a 300-change reconcile: one `regops.audit` per changed version
    (server A) against the five-tag stamps of earlier versions (the same reads, changes and
    records, each stamp written as five tags, replayed through the store on server B)."""
    import json

    from regops import api
    from regops.adapters.mlflow.registry import MlflowRegistry

    names = [model_name(i) for i in range(N_MODELS)]
    # Both servers at the committed state first, unmeasured (a no-op after phase_writes).
    for url in (b.proxy_a.url, b.proxy_b.url):
        if not api.run_reconcile(settings_for(b, url)).ok:
            b.errors.append(f"stamp cost: could not bring {url} to the state files")
    for name in names:
        path = b.state / f"{name}.yaml"
        text = path.read_text()
        text = registry_seed.set_version(text, STAMP_VERSIONS[0], "None")
        text = registry_seed.set_version(text, STAMP_VERSIONS[1], "None", ["canary"])
        path.write_text(text)
    git(b.state, "commit", "-q", "-am", "bring back two archived versions per model")
    s = settings_for(b)
    f = b.figures
    with b.proxy_a.measure() as calls:  # plan + reconcile, as `regops reconcile` runs them
        result, t = timed(lambda: api.run_reconcile(s))
    applied = [o.change for o in result.outcomes if o.status == "applied"]
    f["stamp_plan"] = (
        len(applied),
        len({(c.model, c.version) for c in applied if c.version is not None}),
        len({c.model for c in applied}),
    )
    if not result.ok:
        b.errors.append(f"stamp-cost reconcile failed: {result.to_dict()['summary']}")
    f["stamp_new"] = (calls, t)

    # The earlier scheme on B: the same reads (plan + re-read before writing), the same
    # writes in the same order, each `regops.audit` written as its five tags instead.
    reg = MlflowRegistry(b.proxy_b.url)

    def earlier() -> None:
        for _ in range(2):
            reg.snapshot(names)
        for key, body in calls.writes:
            name = body["name"]
            if key == "POST model-versions/transition-stage":
                reg.transition_stage(name, body["version"], body["stage"])
            elif key == "POST registered-models/alias":
                reg.set_alias(name, body["alias"], body["version"])
            elif key == "DELETE registered-models/alias":
                reg.delete_alias(name, body["alias"])
            elif key == STAMP_ENDPOINT and body["key"] == "regops.audit":
                stamp = json.loads(body["value"])
                for field_, tag in LEGACY_STAMP.items():
                    value = stamp.get(field_, "")
                    value = ",".join(value) if isinstance(value, list) else value
                    reg.set_version_tag(name, body["version"], tag, value)
            elif key == STAMP_ENDPOINT:
                reg.set_version_tag(name, body["version"], body["key"], body["value"])
            elif key == RECORD_ENDPOINT:
                reg.set_model_tag(name, body["key"], body["value"])
            else:
                raise ValueError(f"no replay for {key}")

    with b.proxy_b.measure() as old_calls:
        _, t_old = timed(earlier)
    f["stamp_old"] = (old_calls, t_old)
    live_a = MlflowRegistry(b.proxy_a.url).snapshot(names)
    live_b = MlflowRegistry(b.proxy_b.url).snapshot(names)
    if live_a.fingerprint(names) != live_b.fingerprint(names):
        b.errors.append("stamp cost: the two schemes left different registries")
    if api.run_plan(s).pending:
        b.errors.append("stamp cost: the plan after reconcile is not empty")


def report_stamp_cost(b: Bench) -> None:
    f = b.figures
    n_changes, n_versions, n_models = f["stamp_plan"]
    (new, t_new), (old, t_old) = f["stamp_new"], f["stamp_old"]
    print()
    print(
        f"STAMP COST: reconcile {n_changes} changes on {n_versions} versions of {n_models} "
        "models; one regops.audit per changed version (A) vs the five-tag stamps of earlier "
        "versions, the same reads and writes otherwise (B)"
    )
    print(LINE)
    print(f"{'REST calls':58}{'regops.audit':>16}{'five tags':>12}{'ratio':>10}")
    print(LINE)
    reads = {SEARCH_MODELS, SEARCH_VERSIONS}
    rows = [
        ("changes (stage transitions, alias sets)", set(CHANGE_ENDPOINTS)),
        (f"audit stamps ({STAMP_ENDPOINT})", {STAMP_ENDPOINT}),
        (f"regops.applied records ({RECORD_ENDPOINT})", {RECORD_ENDPOINT}),
        ("snapshot reads (plan + re-read before writing)", reads),
    ]
    for label, keys in rows:
        a = sum(new[k] for k in keys)
        c = sum(old[k] for k in keys)
        print(f"{label:58}{a:>16}{c:>12}{ratio(c, a) if a else '':>10}")
    print(LINE)
    a, c = total(new), total(old)
    print(f"{'total':58}{a:>16}{c:>12}{c / a:>9.2f}x")
    print(f"{'calls per change':58}{a / n_changes:>16.2f}{c / n_changes:>12.2f}")
    print(f"{'wall':58}{fmt_s(t_new):>16}{fmt_s(t_old):>12}")
    print(LINE)
    floor = n_changes + n_versions + n_models + 4
    label = (
        f"stamp cost: {a} calls for {n_changes} changes on {n_versions} versions "
        f"(changes + one stamp per version + one record per model + 4 reads = {floor}); "
        f"five-tag stamps: {c}"
    )
    ok = a == floor and new[STAMP_ENDPOINT] == n_versions
    print(f"[{'PASS' if ok else 'FAIL'}] {label}")
    if not ok:
        b.failures.append(label)


def phase_validate(b: Bench, repeats: int) -> None:
    """`regops validate` in a fresh process: the repository's state and the bench's."""
    repo_state = ROOT / "registry-state"
    f = b.figures
    for key, state, n in (
        ("v_repo", repo_state, max(5, repeats)),
        ("v_big", b.state, max(1, repeats // 2)),
    ):
        runs = [run_cli_cpu(["validate", "--state-dir", str(state)], b.env) for _ in range(n)]
        for proc, _, _ in runs:
            if proc.returncode != 0:
                b.errors.append(f"regops validate exit {proc.returncode}: {proc.stderr[-300:]}")
        f[key] = (
            statistics.median(r[1] for r in runs),
            statistics.median(r[2] for r in runs),
            n,
            runs[0][0].stdout.strip(),
        )
    f["v_mlflow"] = mlflow_modules_after_validate(repo_state, b.env)
    f["py_pass"] = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))[1]
    f["py_mlflow"] = timed(
        lambda: subprocess.run([sys.executable, "-c", "import mlflow"], check=True)
    )[1]


# ----------------------------------------------------------------------------- report
LINE = "-" * 100


def report(b: Bench) -> None:  # noqa: C901 - one flat table after another
    f = b.figures
    plan_calls, t_plan = f["plan"]
    n_plan = total(plan_calls)

    print()
    print(f"READ the live state of {N_MODELS} models / {N_MODELS * N_VERSIONS} versions")
    print(LINE)
    print(f"{'':60}{'REST calls':>11}{'wall':>11}  {'vs plan: calls / wall':>16}")
    print(LINE)
    rows = [
        (f"regops plan, in-process (api.run_plan, median of {f['plan_samples']})", f["plan"]),
        ("  of which MlflowRegistry.snapshot", f["snapshot"]),
        ("  of which loading + validating the 100 state files", (Counter(), f["load"])),
        ("regops plan, CLI in a fresh process", f["plan_cli"]),
        ("MlflowClient: get_registered_model + search, per model", f["search"]),
        ("MlflowClient naive: get_registered_model + get_model_version", f["naive"]),
    ]
    for label, (calls, t) in rows:
        vs = ""
        if label.startswith("MlflowClient"):
            vs = f"{ratio(total(calls), n_plan)} / {ratio(t, t_plan)}"
        print(f"{label:60}{total(calls):>11}{fmt_s(t):>11}  {vs:>16}")
    print(LINE)
    direct, proxied = f["per_call"]
    print(f"regops plan calls: {dict(sorted(plan_calls.items()))}")
    print(f"naive loop calls:  {dict(sorted(f['naive'][0].items()))}")
    print(
        f"proxy overhead: one get_model_version {direct * 1000:.1f} ms direct, "
        f"{proxied * 1000:.1f} ms through the proxy (median of {PER_CALL_SAMPLES}, alternating)"
    )
    print(f"plan output: {f['plan_summary']}")

    applied = f["applied"]
    versions = {(c.model, c.version) for c in applied if c.version is not None}
    rec, t_rec = f["reconcile"]
    cli, t_cli = f["client"]
    kinds = sorted({k for c in (rec, cli) for k in c if k in CHANGE_ENDPOINTS})
    print()
    print(
        f"RECONCILE {len(applied)} changes on {len({c.model for c in applied})} models "
        f"({len(versions)} versions changed); the same writes through MlflowClient on server B"
    )
    print(LINE)
    print(f"{'REST calls by purpose':70}{'regops':>12}{'MlflowClient':>14}")
    print(LINE)
    table = [
        ("writes, one per change", sum(rec[k] for k in kinds), sum(cli[k] for k in kinds)),
        *[(f"  {CHANGE_ENDPOINTS[k]} ({k})", rec[k], cli[k]) for k in kinds],
        (
            f"version tags on {len(versions)} changed versions ({STAMP_ENDPOINT})",
            rec[STAMP_ENDPOINT],
            cli[STAMP_ENDPOINT],
        ),
        *[
            (f"  {k}", n, version_tag_keys(cli).get(k, 0))
            for k, n in sorted(version_tag_keys(rec).items())
        ],
        (
            f"regops.applied tag x {f['records']} changed models ({RECORD_ENDPOINT})",
            rec[RECORD_ENDPOINT],
            cli[RECORD_ENDPOINT],
        ),
        (f"prompt check before each write ({GET_MODEL})", rec[GET_MODEL], cli[GET_MODEL]),
        (
            "snapshot reads (plan + re-read before writing)",
            rec[SEARCH_MODELS] + rec[SEARCH_VERSIONS],
            cli[SEARCH_MODELS] + cli[SEARCH_VERSIONS],
        ),
    ]
    known = {*CHANGE_ENDPOINTS, STAMP_ENDPOINT, RECORD_ENDPOINT, GET_MODEL}
    known |= {SEARCH_MODELS, SEARCH_VERSIONS}
    other = {k: (rec[k], cli[k]) for k in {*rec, *cli} if k not in known}
    table += [(f"other: {k}", a, c) for k, (a, c) in sorted(other.items())]
    for label, a, c in table:
        print(f"{label:70}{a:>12}{c:>14}")
    print(LINE)
    print(f"{'total REST calls':70}{total(rec):>12}{total(cli):>14}")
    print(f"{'wall':70}{fmt_s(t_rec):>12}{fmt_s(t_cli):>14}")
    writes = {*CHANGE_ENDPOINTS, STAMP_ENDPOINT, RECORD_ENDPOINT}
    reads = {SEARCH_MODELS, SEARCH_VERSIONS}
    for label, keys in (
        ("  in write calls (round-trips timed at the proxy)", writes),
        ("  in prompt checks", {GET_MODEL}),
        ("  in snapshot reads", reads),
    ):
        print(f"{label:70}{fmt_s(rec.time_in(keys)):>12}{fmt_s(cli.time_in(keys)):>14}")
    label = "  outside REST calls (state load, plan, git, HTTP client)"
    print(f"{label:70}{fmt_s(t_rec - rec.time_in()):>12}{fmt_s(t_cli - cli.time_in()):>14}")
    print(LINE)
    print(
        "regops' wall includes loading the state, the plan, the re-read and the audit stamps' "
        f"git lookups (git log + status per managed model: {fmt_s(f['stamps_time'])})"
    )
    adopt, t_adopt = f["adopt"]
    print(
        f"adoption (first reconcile after export, 0 changes): {total(adopt)} calls = "
        f"{adopt[RECORD_ENDPOINT]} regops.applied tags + "
        f"{adopt[SEARCH_MODELS] + adopt[SEARCH_VERSIONS]} reads, {fmt_s(t_adopt)} "
        "(CLI, fresh process); "
        f"`regops export`: {f['export'][0]} calls, {fmt_s(f['export'][1])}"
    )
    print(f"plan after reconcile: {total(f['again'])} calls, no change left (converged)")
    naive_t = f["naive"][1]
    print(
        f"read + write end to end: regops reconcile {fmt_s(t_rec)} ({total(rec)} calls) vs "
        f"naive loop + MlflowClient writes {fmt_s(naive_t + t_cli)} "
        f"({total(f['naive'][0]) + total(cli)} calls: the sum of the two measured rows)"
    )

    code, mods = f["v_mlflow"]
    print()
    print("VALIDATE: `regops validate` in a fresh process (no network)")
    print(LINE)
    print(f"{'':46}{'wall':>9}{'CPU':>9}")
    for key, label in (
        ("v_repo", "this repository's registry-state/"),
        ("v_big", "the bench's state: 100 files, 2,000 versions"),
    ):
        t, cpu, n, out = f[key]
        print(f"{label:46}{fmt_s(t):>9}{fmt_s(cpu):>9}  median of {n}  ({out})")
    print(
        f"{'for scale, wall: python -c pass / import mlflow':46}"
        f"{fmt_s(f['py_pass']):>9} / {fmt_s(f['py_mlflow'])}"
    )
    print(f"mlflow modules in sys.modules after `regops validate`: {len(mods)} (exit {code})")
    print(LINE)

    n_writes = sum(rec[k] for k in kinds)
    stamp_keys = version_tag_keys(rec)
    # Call counts are deterministic: missing one is a regression (exit 1). Wall times
    # move with the machine's load: a miss is reported, not failed.
    counted = [
        (f"plan reads <= 3 REST calls: {n_plan}", n_plan <= 3),
        (
            f"plan >= 10x fewer calls than the naive loop: {ratio(total(f['naive'][0]), n_plan)}",
            total(f["naive"][0]) >= 10 * n_plan,
        ),
        (
            f"reconcile makes one write per change: {n_writes} for {len(applied)}, "
            f"{rec[GET_MODEL]} prompt checks",
            n_writes == len(applied) and rec[GET_MODEL] == 0,
        ),
        (
            f"audit stamps: {', '.join(AUDIT_KEYS)} once per changed version: "
            f"{[stamp_keys.get(k, 0) for k in AUDIT_KEYS]} for {len(versions)}",
            all(stamp_keys.get(k) == len(versions) for k in AUDIT_KEYS),
        ),
        ("validate does not import mlflow", not mods and code == 0),
    ]
    timed_checks = [
        (
            f"plan faster than the naive loop: {ratio(f['naive'][1], t_plan)}",
            t_plan < f["naive"][1],
        ),
        (
            f"validate under 0.5 s (median wall): {fmt_s(f['v_repo'][0])} wall, "
            f"{fmt_s(f['v_repo'][1])} CPU",
            f["v_repo"][0] < 0.5,
        ),
    ]
    print()
    for label, ok in counted:
        print(f"[{'PASS' if ok else 'FAIL'}] {label}")
        if not ok:
            b.failures.append(label)
    load = os.getloadavg()[0]
    for label, ok in timed_checks:
        print(f"[{'PASS' if ok else 'MISS'}] {label}" + ("" if ok else f" (load {load:.1f})"))


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of the fast paths")
    parser.add_argument("--naive-repeats", type=int, default=1, help="timed naive loops")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--stamp-cost-only", action="store_true", help="only the 300-change stamp-cost run"
    )
    args = parser.parse_args(argv)

    warnings.simplefilter("ignore", FutureWarning)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    os.environ.update({**FAST_HTTP_ENV, "MLFLOW_HTTP_REQUEST_TIMEOUT": "120"})
    os.environ["REGOPS_ACTOR"] = "regops-bench"
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    import mlflow

    t0 = time.perf_counter()
    print(
        f"bench_plan: {N_MODELS} models x {N_VERSIONS} versions = {N_MODELS * N_VERSIONS} "
        f"versions; mlflow {mlflow.__version__} server (sqlite) on 127.0.0.1; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} (figures move with it)"
    )
    tmp = Path(tempfile.mkdtemp(prefix="regops-bench-"))
    servers: list[MlflowServer] = []
    try:
        db_a, db_b = tmp / "a" / "server.db", tmp / "b" / "server.db"
        db_a.parent.mkdir()
        db_b.parent.mkdir()
        _, t_seed = timed(lambda: seed_registry(db_a))
        copy_sqlite(db_a, db_b)
        started, t_up = timed(lambda: start_servers([db_a.parent, db_b.parent], [db_a, db_b]))
        servers.extend(started)
        with CountingProxy(started[0].url) as pa, CountingProxy(started[1].url) as pb:
            b = Bench(tmp, pa, pb, started[0].url, tmp / "state", dict(os.environ))
            warm_up(b)
            phase_adopt(b)
            print(
                f"setup: sqlite seeded in {fmt_s(t_seed)} (MLflow's ORM, one transaction), "
                f"copied for server B; both servers up in {fmt_s(t_up)}; state exported, "
                "committed to git, adopted, then edited (10 promotions, 5 aliases, 5 archived)"
            )
            if not args.stamp_cost_only:
                plan = phase_plan(b, args.repeats)
                phase_naive(b, args.repeats, args.naive_repeats)
                phase_writes(b, plan)
                phase_validate(b, args.repeats)
                report(b)
            phase_stamp_cost(b)
            report_stamp_cost(b)
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"scratch directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    for failure in b.errors:
        print(f"[FAIL] {failure}")
    print(f"\nbench_plan: {fmt_s(time.perf_counter() - t0)} in all")
    return 1 if b.failures or b.errors else 0


def warm_up(b: Bench) -> None:
    """Client imports, HTTP sessions and each server's first-request setup, unmeasured."""
    from mlflow import MlflowClient

    for url in (b.proxy_a.url, b.proxy_b.url, b.url_a):
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        client.search_registered_models(max_results=1)
        client.search_model_versions("name = 'bench_model_000'", max_results=1)
    b.proxy_a.reset()
    b.proxy_b.reset()


if __name__ == "__main__":
    sys.exit(main())
