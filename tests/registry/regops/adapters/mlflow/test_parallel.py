"""`reconcile --parallel N` changes nothing but speed.

The same plan over several models (stages, alias moves and deletes, archiving,
descriptions) applied by one writer and by several ends in the same registry with the
same audit stamps (their timestamp aside) and the same report, in plan order. Under
faults too: the server dies at a write (before it lands or after, its answer lost) or
SIGTERM arrives mid-run; the first run reports per model exactly what landed, and a
re-run converges to the state one writer reaches.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regops.core.audit import AUDIT_TAG
from tests.support.backends import client, registry_dump, regops, regops_process, write_state
from tests.support.proxy import AFTER, BEFORE, FaultProxy, Write
from tests.support.servers import MlflowServer, make_registry

MODELS = 5
VERSIONS = 4
PARALLEL = "3"
# Per model: v1 leaves Production for Archived, v2 enters Production and takes champion
# from v1 (a move), v3 enters Staging with challenger (new), v4 enters Staging and loses
# `old` (a delete), and the description changes.
CHANGES_PER_MODEL = 8
BODY = """\
  {name}:
    description: reconciled in parallel
    versions:
      "1": {{stage: Archived}}
      "2": {{stage: Production, aliases: [champion]}}
      "3": {{stage: Staging, aliases: [challenger]}}
      "4": {{stage: Staging}}
"""


def seed(uri: str, prefix: str) -> list[str]:
    """MODELS models, each with v1 in Production holding champion and v4 holding `old`."""
    names = [f"{prefix}{i}" for i in range(MODELS)]
    make_registry(
        uri,
        dict.fromkeys(names, VERSIONS),
        stage_of={(n, "1"): "Production" for n in names},
    )
    c = client(uri)
    for n in names:
        c.set_registered_model_alias(n, "champion", "1")
        c.set_registered_model_alias(n, "old", "4")
    return names


def state(state_dir: Path, *groups: list[str]) -> None:
    """One state file holding every group's models (so stamps name the same file)."""
    names = [n for g in groups for n in g]
    write_state(
        state_dir, "apiVersion: regops/v1\nmodels:\n" + "".join(BODY.format(name=n) for n in names)
    )


def reconcile(uri: str, state_dir: Path, names: list[str], parallel: str) -> dict[str, Any]:
    args = ["reconcile", "--parallel", parallel, "--format", "json"]
    for n in names:
        args += ["--model", n]
    res = regops(uri, state_dir, *args)
    # stdout alone is the JSON document (a line about restored stamps goes to stderr).
    assert res.stdout.strip(), res.output
    doc: dict[str, Any] = json.loads(res.stdout)
    doc["exit_code"] = res.exit_code
    return doc


def normalized(uri: str, names: list[str], prefix: str) -> dict[str, Any]:
    """The registry's models with `prefix` dropped from their names and each stamp's time,
    flattened to one entry per leaf (`0/versions/3/tags/regops.audit/stage`): a
    difference shows as the entries that differ."""
    dump = registry_dump(uri, names)
    for m in dump.values():
        for v in m["versions"].values():
            if AUDIT_TAG in v["tags"]:
                stamp = json.loads(v["tags"][AUDIT_TAG])
                assert stamp.pop("at"), stamp  # every stamp says when; only that may differ
                v["tags"][AUDIT_TAG] = stamp
    return flat(json.loads(json.dumps(dump).replace(f'"{prefix}', '"')))


def flat(d: Any, path: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {path: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat(v, f"{path}/{k}" if path else str(k)))
    return out


def report(doc: dict[str, Any], prefix: str) -> list[tuple[str, str, str | None, str | None]]:
    """(status, model, kind, version) of each outcome, in the order the report lists them."""
    return [
        (o["status"], o["change"]["model"].removeprefix(prefix), o["change"]["kind"],
         o["change"]["version"])
        for o in doc["result"]["outcomes"]
    ]  # fmt: skip


def per_model_shape(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Per model, its statuses in plan order."""
    out: dict[str, list[str]] = {}
    for o in doc["result"]["outcomes"]:
        out.setdefault(o["change"]["model"], []).append(o["status"])
    return out


def assert_partial_is_exact(uri: str, doc: dict[str, Any]) -> None:
    """Per model: applied*, at most one failed, skipped*; applied changes are live, skipped not."""
    for model, statuses in per_model_shape(doc).items():
        text = "".join(s[0] for s in statuses)  # a: applied, f: failed, s: skipped
        assert text.rstrip("s").rstrip("f").strip("a") == "", (model, statuses)
    failed = sum(o["status"] == "failed" for o in doc["result"]["outcomes"])
    assert 1 <= failed <= int(PARALLEL), doc["result"]["summary"]
    live = registry_dump(uri, sorted(per_model_shape(doc)))
    for o in doc["result"]["outcomes"]:
        c, m = o["change"], live[o["change"]["model"]]
        if c["kind"] == "stage":
            now = m["versions"][c["version"]]["stage"]
        elif c["kind"] == "description":
            now = m["description"] or None  # MLflow answers "" for none
        else:
            now = m["aliases"].get(c["alias"])
        if o["status"] == "applied":
            assert now == c["after"], o
        elif o["status"] == "skipped":
            assert now == c["before"], o


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGOPS_RETRY_DELAY", "0")


def test_in_process_sqlite_parallel_equals_sequential(
    tmp_path: Path, sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two identical sqlite registries, one writer vs four: same registry, stamps, report."""
    monkeypatch.chdir(tmp_path)
    other = sqlite_uri.replace("mlflow.db", "other.db")
    Path(other.removeprefix("sqlite:///")).write_bytes(
        Path(sqlite_uri.removeprefix("sqlite:///")).read_bytes()
    )
    names = seed(sqlite_uri, "M")
    seed(other, "M")
    state(tmp_path / "registry-state", names)
    one = reconcile(sqlite_uri, tmp_path / "registry-state", names, "1")
    four = reconcile(other, tmp_path / "registry-state", names, PARALLEL)
    assert one["exit_code"] == four["exit_code"] == 0
    assert one["result"]["summary"]["applied"] == MODELS * CHANGES_PER_MODEL
    assert report(four, "") == report(one, "")
    assert normalized(other, names, "") == normalized(sqlite_uri, names, "")
    # The writes are the same too (sqlite's busy lock may add retries, counted apart).
    w1, w4 = one["result"], four["result"]
    assert w4["writes"] - w4["retries"] == w1["writes"] - w1["retries"]


def writes_per_model(proxy: FaultProxy, prefix: str) -> dict[str, list[tuple[str, str]]]:
    """Per model, its writes in the order the server received them: (endpoint, body),
    the model's name without `prefix` and each stamp's value left out (it holds the time)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for w in proxy.writes:
        body = json.loads(w.body or b"{}")
        name = str(body.pop("name")).removeprefix(prefix)
        if body.get("key") == AUDIT_TAG:
            body["value"] = json.loads(body["value"]).get("stage")
        out.setdefault(name, []).append((w.path.split("?")[0], json.dumps(body, sort_keys=True)))
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest) -> MlflowServer:
    """The session's sqlite-backed server, or the package's PostgreSQL-backed one."""
    name = "mlflow_server" if request.param == "sqlite" else "pg_server"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.mark.server
def test_server_parallel_equals_sequential(server: MlflowServer, state_dir: Path) -> None:
    """Same report, registry, stamps, and per model the same writes in the same order."""
    seq, par = seed(server.url, "SeqP"), seed(server.url, "ParP")
    state(state_dir, seq, par)
    one_proxy, four_proxy = (
        FaultProxy(server.url).start(),
        FaultProxy(server.url).start(),
    )
    try:
        one = reconcile(one_proxy.url, state_dir, seq, "1")
        four = reconcile(four_proxy.url, state_dir, par, PARALLEL)
    finally:
        one_proxy.stop()
        four_proxy.stop()
    assert one["exit_code"] == four["exit_code"] == 0, (one["result"], four["result"])
    assert report(four, "ParP") == report(one, "SeqP")
    assert normalized(server.url, par, "ParP") == normalized(server.url, seq, "SeqP")
    assert writes_per_model(four_proxy, "ParP") == writes_per_model(one_proxy, "SeqP")
    assert four["result"]["writes"] == one["result"]["writes"]  # no retry, no extra write
    assert regops(server.url, state_dir, "plan", "--detailed-exitcode").exit_code == 0


@pytest.fixture(scope="module")
def reference(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The end state one writer reaches without faults (models `Ref0..`), from a state
    directory at the same relative path as the tests' (stamps name it)."""
    work, back = tmp_path_factory.mktemp("ref"), Path.cwd()
    os.chdir(work)
    try:
        names = seed(mlflow_server.url, "Ref")
        state(Path("registry-state"), names)
        done = reconcile(mlflow_server.url, Path("registry-state"), names, "1")
        assert done["exit_code"] == 0, done["result"]
    finally:
        os.chdir(back)
    return normalized(mlflow_server.url, names, "Ref")


def at(path: str, **fields: str) -> Callable[[Write], bool]:
    """Matches the write to `path` (REST endpoint) whose JSON body has `fields`."""

    def match(w: Write) -> bool:
        body = json.loads(w.body or b"{}")
        return w.path.split("?")[0].endswith(path) and all(
            str(body.get(k)) == v for k, v in fields.items()
        )

    return match


# Where the server dies, as (model index, endpoint, body fields, before it lands or after):
# a change of each kind, and a stamp whose change landed.
CUTS = {
    "archive-before": (2, "/model-versions/transition-stage", {"stage": "Archived"}, BEFORE),
    "alias-after": (4, "/registered-models/alias", {"alias": "challenger"}, AFTER),
    "stamp-after": (1, "/model-versions/set-tag", {"version": "3"}, AFTER),
    "description-before": (4, "/registered-models/update", {}, BEFORE),
}


@pytest.mark.server
@pytest.mark.parametrize("cut", list(CUTS))
def test_server_dies_mid_parallel_run_rerun_converges_to_sequential(
    mlflow_server: MlflowServer, state_dir: Path, reference: Any, cut: str
) -> None:
    index, path, fields, when = CUTS[cut]
    prefix = f"Cut{cut.title().replace('-', '')}P"
    names = seed(mlflow_server.url, prefix)
    state(state_dir, names)
    target = at(path, name=names[index], **fields)
    proxy = FaultProxy(mlflow_server.url, cut_on=target, cut_when=when).start()
    try:
        first = reconcile(proxy.url, state_dir, names, PARALLEL)
        assert first["exit_code"] == 1, first["result"]
        assert_partial_is_exact(mlflow_server.url, first)
        proxy.revive()
        again = reconcile(proxy.url, state_dir, names, PARALLEL)
        assert again["exit_code"] == 0, again["result"]
    finally:
        proxy.stop()
    assert normalized(mlflow_server.url, names, prefix) == reference
    assert regops(mlflow_server.url, state_dir, "plan", "--detailed-exitcode").exit_code == 0


@pytest.mark.server
def test_sigterm_stops_every_writer_after_its_write_and_stamp(
    mlflow_server: MlflowServer, state_dir: Path, reference: Any
) -> None:
    """SIGTERM mid-run: each writer finishes the write in flight and its stamp, then stops."""
    prefix = "TermP"
    names = seed(mlflow_server.url, prefix)
    state(state_dir, names)
    # Writes after the 12th wait in the proxy: SIGTERM comes while they are in flight.
    proxy = FaultProxy(mlflow_server.url, delay_writes=0.05, hold_writes_after=12).start()
    try:
        args = ["reconcile", "--parallel", PARALLEL, "--format", "json"]
        proc = regops_process(proxy.url, state_dir, *args)
        assert proxy.held.wait(timeout=120), "".join(proc.communicate(timeout=60))[-3000:]
        proc.send_signal(signal.SIGTERM)
        proxy.release()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, out + err
        doc = json.loads(out)
        assert doc["result"]["interrupted"] == "SIGTERM"
        statuses = [o["status"] for o in doc["result"]["outcomes"]]
        assert "failed" not in statuses, statuses
        assert "skipped" in statuses, statuses
        for model, shape in per_model_shape(doc).items():
            text = "".join(s[0] for s in shape)
            assert text.rstrip("s").strip("a") == "", (model, shape)
        # Every version a landed change touched carries a stamp saying what it holds now.
        live = registry_dump(mlflow_server.url, names)
        for o in doc["result"]["outcomes"]:
            c = o["change"]
            if o["status"] == "applied" and c["version"]:
                m = live[c["model"]]
                stamp = json.loads(m["versions"][c["version"]]["tags"][AUDIT_TAG])
                assert stamp["stage"] == m["versions"][c["version"]]["stage"], (o, stamp)
                holds = sorted(a for a, v in m["aliases"].items() if v == c["version"])
                assert stamp["aliases"] == holds, (o, stamp)
        again = reconcile(proxy.url, state_dir, names, PARALLEL)
        assert again["exit_code"] == 0, again["result"]
    finally:
        proxy.stop()
    assert normalized(mlflow_server.url, names, prefix) == reference
