"""A bench registry of any size, seeded straight into a `mlflow server`'s sqlite file.

MLflow's own ORM rows (the `SqlAlchemyStore` models, the tables the server reads) are
bulk-inserted in one transaction *before* the server starts. Over REST, or one
SqlAlchemyStore call at a time, each version and each stage transition is its own
fsynced commit (~15 ms here): 2,000 versions take minutes, 100,000 hours.

Per model of `n_versions` (20 in the benches): v1..n-4 Archived, n-3..n-2 None, n-1
Production with alias `champion`, n Staging with alias `challenger`; every version has
a run id and three evidence tags (`validation_status` fails on v n-3).

Shared by bench_plan.py (100 models) and bench_scale.py (100 / 1,000 / 5,000 models).
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.support.servers import MlflowServer, start_mlflow_server

# The registry needs no job runner; without this each server also forks ~7 huey
# consumers (~260 MB each) that compete for the CPU with what is measured.
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def stage_of(v: int, n_versions: int) -> str:
    """The stage version `v` of `n_versions` holds in a seeded registry."""
    if v == n_versions:
        return "Staging"
    if v == n_versions - 1:
        return "Production"
    return "None" if v >= n_versions - 3 else "Archived"


def seed_registry(db: Path | str, names: Sequence[str], n_versions: int) -> None:
    """`names` x `n_versions` versions with stages, aliases and evidence tags, as ORM bulk
    inserts in one transaction (the schema is created and migrated first). `db`: a sqlite
    file, or any database URI MLflow stores in (PostgreSQL for bench_reconcile.py)."""
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
    )
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
    from sqlalchemy import insert

    store = SqlAlchemyStore(db if isinstance(db, str) else f"sqlite:///{db}")  # + migrates
    # The workspace column, filled the way the store fills it on the rows it creates.
    ws = (
        {"workspace": w}
        if (w := store._with_workspace_field(SqlRegisteredModel()).workspace)
        else {}
    )
    now = int(time.time() * 1000)
    models: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    aliases: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        models.append(
            {
                **ws,
                "name": name,
                "creation_time": now,
                "last_updated_time": now,
                "description": f"Benchmark model {i}",
            }
        )
        for v in range(1, n_versions + 1):
            created = now - (n_versions - v) * 86_400_000
            versions.append(
                {
                    **ws,
                    "name": name,
                    "version": v,
                    "creation_time": created,
                    "last_updated_time": created,
                    "current_stage": stage_of(v, n_versions),
                    "source": f"models:/m-{uuid.uuid4().hex}",
                    "storage_location": f"file:///bench/artifacts/{name}/{v}",
                    "run_id": uuid.uuid4().hex,
                    "status": "READY",
                }
            )
            passed = "failed" if v == n_versions - 3 else "passed"
            for key, value in (
                ("validation_status", passed),
                ("smoke_test_status", "passed"),
                ("f1_macro", f"0.{700 + v * 7 + i % 5}"),
            ):
                tags.append({**ws, "name": name, "version": v, "key": key, "value": value})
        for alias, v in (("champion", n_versions - 1), ("challenger", n_versions)):
            aliases.append({**ws, "name": name, "alias": alias, "version": v})
    with store.ManagedSessionMaker(read_only=False) as session:
        for table, rows in (
            (SqlRegisteredModel, models),
            (SqlModelVersion, versions),
            (SqlModelVersionTag, tags),
            (SqlRegisteredModelAlias, aliases),
        ):
            session.execute(insert(table), rows)
    store.engine.dispose()


def copy_sqlite(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def start_servers(workdirs: list[Path], dbs: list[Path], workers: int = 1) -> list[MlflowServer]:
    """Start `mlflow server`s (`workers` processes each, no job runner) concurrently: each
    takes ~10 s to import and boot."""
    with ThreadPoolExecutor(len(workdirs)) as pool:
        futures = [
            pool.submit(
                start_mlflow_server,
                w,
                backend_uri=f"sqlite:///{d}",
                env=SERVER_ENV,
                extra_args=["--workers", str(workers)],  # the last --workers wins
            )
            for w, d in zip(workdirs, dbs, strict=True)
        ]
        return [f.result() for f in futures]


_VERSION_LINE = re.compile(r'^(\s+)"(\d+)": \{(.*)\}$', re.MULTILINE)


def set_version(text: str, version: int, stage: str, aliases: Iterable[str] = ()) -> str:
    """Rewrite one version line of an exported state file, keeping its run_id."""

    def repl(m: re.Match[str]) -> str:
        if m.group(2) != str(version):
            return m.group(0)
        run = re.search(r"run_id: (\w+)", m.group(3))
        fields = [f"stage: {stage}"]
        if aliases:
            fields.append(f"aliases: [{', '.join(aliases)}]")
        if run:
            fields.append(f"run_id: {run.group(1)}")
        return f'{m.group(1)}"{version}": {{{", ".join(fields)}}}'

    new, n = _VERSION_LINE.subn(repl, text)
    if not n or new == text:
        raise ValueError(f"version {version} not found in the exported file")
    return new


def edit_state(
    state_dir: Path,
    names: Sequence[str],
    n_versions: int,
    promote: Iterable[int],
    alias: Iterable[int],
    archive: Iterable[int],
) -> int:
    """What a pull request would change in exported state files, by model index:
    `promote` (top version Staging -> Production + champion, the previous one Archived,
    challenger dropped), `alias` (alias `shadow` on a None version), `archive` (a None
    version Archived). Returns the number of models edited."""
    top = n_versions
    todo = [(i, "promote") for i in promote]
    todo += [(i, "alias") for i in alias]
    todo += [(i, "archive") for i in archive]
    for i, what in todo:
        path = state_dir / f"{names[i]}.yaml"
        text = path.read_text()
        if what == "promote":
            text = set_version(text, top, "Production", ["champion"])
            text = set_version(text, top - 1, "Archived")
        elif what == "alias":
            text = set_version(text, top - 2, "None", ["shadow"])
        else:
            text = set_version(text, top - 3, "Archived")
        path.write_text(text)
    return len(todo)


def add_policy(state_dir: Path, policy: str) -> None:
    """Put `policy` (a YAML block) under `apiVersion` in every state file of `state_dir`."""
    for path in sorted(state_dir.glob("*.yaml")):
        text = path.read_text()
        path.write_text(text.replace("apiVersion: regops/v1\n", "apiVersion: regops/v1\n" + policy))
