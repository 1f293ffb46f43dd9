"""Snapshot reads over REST as plain JSON: no protobuf round-trip, no MLflow entities.

`RestStore.search_model_versions` turns the server's JSON into protobuf messages and
those into `ModelVersion` objects: at 20,000 versions that client work costs more than
the server's answer. Here the same two endpoints are read through MLflow's own request
helpers (`http_request` with the store's host credentials, so authentication, TLS
settings, retries and workspace headers are MLflow's) and the JSON goes straight into
the frozen `LiveState` values.

Versions are read by `name IN (...)` filters of NAMES_PER_FILTER models, READ_WORKERS
filters at once, each in pages of VERSIONS_PAGE: memory stays bounded by a few pages of
JSON whatever the registry's size. The server builds most of the answer's time: MLflow's
default server runs 4 workers, which answer the filters side by side (20,000 versions:
~3.9 s instead of ~6.9 s read one page after another, bench/bench_scale.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from regops.live import READY, LiveModel, LiveState, LiveVersion

API = "/api/2.0/mlflow"
MODELS_PAGE = 1000  # the server's maximum for registered-models/search
VERSIONS_PAGE = 10_000  # bounds the JSON held at once; the server allows 200,000
NAMES_PER_FILTER = 100  # keeps the GET query string under URL limits
READ_WORKERS = 4  # version filters read at once: as many as a stock `mlflow server` has workers
PROMPT_TAG = "mlflow.prompt.is_prompt"

Get = Callable[[str, dict[str, Any]], dict[str, Any]]


def supports(store: Any) -> bool:
    """True for MLflow's REST registry stores (OSS server, Databricks workspace registry);
    Unity Catalog and database stores keep the store path."""
    from mlflow.store.model_registry.rest_store import RestStore

    return isinstance(store, RestStore)


def json_getter(store: Any) -> Get:
    """GET an endpoint of the store's server and return its JSON, MLflow's way."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    def get(endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        check = getattr(store, "_validate_workspace_support_if_specified", None)
        if check is not None:
            check()
        path = f"{API}/{endpoint}"
        creds = store.get_host_creds()
        response = http_request(host_creds=creds, endpoint=path, method="GET", params=params)
        verify_rest_response(response, path)
        doc: dict[str, Any] = json.loads(response.content or b"{}")
        return doc

    return get


def _paged(get: Get, endpoint: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    token: str | None = None
    while True:
        doc = get(endpoint, {**params, **({"page_token": token} if token else {})})
        yield from doc.get(key) or ()
        token = doc.get("next_page_token") or None
        if not token:
            return


def _tags(raw: Any) -> MappingProxyType[str, str]:
    return MappingProxyType({t["key"]: t.get("value", "") for t in raw or ()})


def quote_name(name: str) -> str:
    """A model name as a search-filter string literal (the one quoting, both read paths).

    MLflow reads the items of `name IN (...)` with Python's `ast.literal_eval`: a raw
    newline (or any other unprintable character) there is a syntax error that fails the
    whole read, so such characters are written as escapes that literal_eval decodes.
    """
    out = []
    for ch in name:
        if ch in "\\'":
            out.append("\\" + ch)
        else:  # Python's own escape of an unprintable character (\n, \x85, \u2028...)
            out.append(ch if ch.isprintable() else ascii(ch)[1:-1])
    return "'" + "".join(out) + "'"


def read_models(get: Get) -> list[dict[str, Any]]:
    """Every registered model that is not a prompt, in name order."""
    models = _paged(
        get,
        "registered-models/search",
        "registered_models",
        {"max_results": MODELS_PAGE, "order_by": ["name ASC"]},
    )
    out = []
    for m in models:
        tags = {t["key"]: t.get("value", "") for t in m.get("tags") or ()}
        if tags.get(PROMPT_TAG, "").lower() == "true":
            continue
        # latest_versions is the heaviest part of the answer and unused: drop it now.
        out.append(
            {
                "name": m["name"],
                "description": m.get("description") or None,
                "tags": MappingProxyType(tags),
                "aliases": {a["alias"]: str(a["version"]) for a in m.get("aliases") or ()},
            }
        )
    return out


def read_versions(
    get: Get, names: list[str], *, has_stages: bool
) -> dict[str, dict[str, LiveVersion]]:
    """The versions of `names`, per model: one `name IN (...)` filter per NAMES_PER_FILTER
    names, READ_WORKERS filters read at once (each in pages), converted as they arrive.

    A model's versions all come from one filter, so each model's dict has one writer.
    """
    by_model: dict[str, dict[str, LiveVersion]] = {n: {} for n in names}

    def read(chunk: list[str]) -> None:
        own = set(chunk)  # a server with case-insensitive names may match another chunk's
        params: dict[str, Any] = {
            "max_results": VERSIONS_PAGE,
            "order_by": ["name ASC", "version_number ASC"],
            "filter": f"name IN ({', '.join(map(quote_name, chunk))})",
        }
        for mv in _paged(get, "model-versions/search", "model_versions", params):
            if mv["name"] not in own:
                continue
            number = str(mv["version"])
            created = mv.get("creation_timestamp")
            by_model[mv["name"]][number] = LiveVersion(
                version=number,
                stage=(mv.get("current_stage") or "None") if has_stages else "None",
                run_id=mv.get("run_id") or None,
                tags=_tags(mv.get("tags")),
                source=mv.get("source") or None,
                created_ms=int(created) if created else None,
                status=str(mv.get("status") or READY),
            )

    chunks = [names[i : i + NAMES_PER_FILTER] for i in range(0, len(names), NAMES_PER_FILTER)]
    each(read, chunks, READ_WORKERS)
    return by_model


def each(fn: Callable[[list[str]], None], items: list[list[str]], workers: int) -> None:
    """`fn` on every item, up to `workers` at once; the first failure (in item order) is
    raised and the items not started yet are dropped."""
    if workers <= 1 or len(items) <= 1:
        for item in items:
            fn(item)
        return
    pool = ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="regops-read")
    futures = [pool.submit(fn, item) for item in items]
    try:
        for future in futures:
            future.result()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # reads in flight end on their own
        raise
    pool.shutdown()


def prefetch_versions(expected: int, registered: int) -> bool:
    """Whether a prefetch reads every model's versions before the wanted names are known:
    when they are at least half the registry (at worst twice the data, read while the
    state files load)."""
    return expected * 2 >= registered


@dataclass(frozen=True)
class Prefetched:
    """The reads of a snapshot made before it knew which models it wants (see prefetch)."""

    models: list[dict[str, Any]]
    versions: dict[str, dict[str, LiveVersion]] | None  # every model's, if prefetch_versions


def prefetch(get: Get, expected: int, *, has_stages: bool) -> Prefetched:
    """What a snapshot of about `expected` models reads, read before their names are known:
    the models, and every model's versions when the wanted are most of them."""
    models = read_models(get)
    versions = None
    if prefetch_versions(expected, len(models)):
        versions = read_versions(get, [m["name"] for m in models], has_stages=has_stages)
    return Prefetched(models, versions)


def snapshot(
    get: Get, wanted: list[str] | None, *, has_stages: bool, prefetched: Prefetched | None = None
) -> LiveState:
    """Read the live state of `wanted` (all models when None), or finish a prefetched read:
    its versions serve whatever `wanted` turns out to be, else they are read now."""
    models = prefetched.models if prefetched is not None else read_models(get)
    if wanted is not None:
        keep = set(wanted)
        chosen = [m for m in models if m["name"] in keep]
    else:
        chosen = models
    names = [m["name"] for m in chosen]
    if prefetched is not None and prefetched.versions is not None:
        every = prefetched.versions
        versions = {n: every[n] for n in names}
    else:
        versions = read_versions(get, names, has_stages=has_stages)
    live = {
        m["name"]: LiveModel(
            name=m["name"],
            versions=MappingProxyType(versions[m["name"]]),
            aliases=MappingProxyType(m["aliases"]),
            description=m["description"],
            tags=m["tags"],
        )
        for m in chosen
    }
    return LiveState(models=MappingProxyType(live), has_stages=has_stages)
