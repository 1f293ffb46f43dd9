"""A published copy of the live registry: `regops snapshot --out FILE`, `regops plan --live FILE`.

A trusted workflow writes one after each apply and on a schedule; pull requests
from forks (which get no registry credentials) are planned against it, offline.
The file carries what planning needs (stages, aliases, tags, run ids,
descriptions), the registry's display name, the time and the live fingerprint;
never the tracking URI, credentials or artifact locations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any

from regops.core import jsonio
from regops.core.live import LiveModel, LiveState, LiveVersion
from regops.core.plan import FORMAT_VERSION
from regops.errors import SnapshotError
from regops.files import SCHEMAS, jsonfile

KIND = "regops-snapshot"


def snapshot_doc(live: LiveState, *, registry: str, created_at: str) -> dict[str, Any]:
    """The JSON form of `live` (every model in it), described by snapshot.schema.json."""
    models: dict[str, Any] = {}
    for name in sorted(live.models):
        m = live.models[name]
        models[name] = {
            "description": m.description,
            "aliases": dict(sorted(m.aliases.items())),
            "tags": dict(sorted(m.tags.items())),
            "versions": {
                v.version: {
                    "stage": v.stage,
                    "run_id": v.run_id,
                    "tags": dict(sorted(v.tags.items())),
                    "created_ms": v.created_ms,
                }
                for v in sorted(m.versions.values(), key=lambda v: int(v.version))
            },
        }
    return {
        "format_version": FORMAT_VERSION,
        "kind": KIND,
        "created_at": created_at,
        "registry": registry,
        "has_stages": live.has_stages,
        "live_fingerprint": live.fingerprint(live.models),
        "models": models,
    }


def _schema() -> dict[str, Any]:
    text = (SCHEMAS / "snapshot.schema.json").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def _live_from_doc(doc: Mapping[str, Any]) -> LiveState:
    models = {}
    for name, m in doc["models"].items():
        versions = {
            number: LiveVersion(
                version=number,
                stage=v["stage"],
                run_id=v.get("run_id"),
                tags=MappingProxyType(dict(v.get("tags", {}))),
                created_ms=v.get("created_ms"),
            )
            for number, v in m["versions"].items()
        }
        models[name] = LiveModel(
            name=name,
            versions=MappingProxyType(versions),
            aliases=MappingProxyType(dict(m.get("aliases", {}))),
            description=m.get("description"),
            tags=MappingProxyType(dict(m.get("tags", {}))),
        )
    return LiveState(models=MappingProxyType(models), has_stages=bool(doc["has_stages"]))


@dataclass(frozen=True)
class Snapshot:
    """A loaded snapshot file: the live state it holds and when and where it was taken."""

    path: Path
    live: LiveState
    registry: str
    created_at: str
    live_fingerprint: str

    def age_seconds(self, now: datetime) -> float:
        return (now - parse_time(self.created_at)).total_seconds()


def parse_time(text: str) -> datetime:
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)  # noqa: UP017 (3.10)


def load_snapshot(path: Path) -> Snapshot:
    """Read and check a snapshot file; every problem is a SnapshotError naming the file."""
    import jsonschema

    try:
        doc = jsonfile.read_file(
            path, what="snapshot", max_bytes=jsonio.SNAPSHOT_MAX_BYTES, top=dict,
            refusal="not a readable snapshot", error=SnapshotError,
        )  # fmt: skip
    except FileNotFoundError:
        raise SnapshotError(
            f"{path}: no snapshot file (has the trusted workflow published one yet?)"
        ) from None
    problems = sorted(
        jsonschema.Draft202012Validator(_schema()).iter_errors(doc), key=lambda e: list(e.path)
    )
    if problems:
        where = "/".join(str(p) for p in problems[0].absolute_path) or "(top)"
        raise SnapshotError(f"{path}: not a regops snapshot: {where}: {problems[0].message[:200]}")
    live = _live_from_doc(doc)
    if live.fingerprint(live.models) != doc["live_fingerprint"]:
        raise SnapshotError(f"{path}: its content does not match its live_fingerprint (edited?)")
    try:
        parse_time(doc["created_at"])
    except ValueError as exc:
        raise SnapshotError(f"{path}: created_at is not a time ({exc})") from exc
    return Snapshot(path, live, doc["registry"], doc["created_at"], doc["live_fingerprint"])


class SnapshotSource:
    """Stands in for the registry when planning: reads come from a snapshot, offline."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot_file = snapshot
        self.has_stages = snapshot.live.has_stages
        self.display_uri = snapshot.registry

    def snapshot(self, names: Iterable[str] | None = None) -> LiveState:
        live = self.snapshot_file.live
        if names is None:
            return live
        wanted = set(names)
        return LiveState(
            models=MappingProxyType({n: m for n, m in live.models.items() if n in wanted}),
            has_stages=live.has_stages,
        )
