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

The answers are untrusted input: a listing stops with AnswerError (exit 1) when its page
token repeats or its pages exceed `max_pages` (MAX_ITEMS items: far beyond any registry
regops is meant for), and every value is checked where the live state is built
(`live_version`, `live_model_fields`, both read paths): a version number that is not a
number, a stage outside MLflow's, a wrong JSON type is an AnswerError naming the model,
the version and the field, never a traceback.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from regops.adapters.mlflow.rest_http import (
    API,
    Get,
    Post,
    call_budget,
    parse_answer,
    read_body,
    within,
)
from regops.core.live import READY, LiveModel, LiveState, LiveVersion
from regops.core.state import STAGES
from regops.errors import AnswerError

MODELS_PAGE = 1000  # the server's maximum for registered-models/search (both read paths)
VERSIONS_PAGE = 10_000  # bounds the JSON held at once; the server allows 200,000
NAMES_PER_FILTER = 100  # models per `name IN (...)` filter (both read paths): keeps a GET's
# query string well under URL limits
READ_WORKERS = 4  # version filters read at once: as many as a stock `mlflow server` has workers
PROMPT_TAG = "mlflow.prompt.is_prompt"  # a registered model holding prompts, not a model
# A listing (the registered models, or the versions of one filter) longer than this is
# refused: a server whose pages never end stops after max_pages(page size) pages.
MAX_ITEMS = 1_000_000
MAX_VERSION_DIGITS = 18  # MLflow's version numbers are 64-bit integers
MAX_TIMESTAMP_MS = 2**63 - 1

EXPERIMENTS_PAGE = 1000  # experiments/search's page (the server's default maximum)
RUNS_PER_FILTER = 100  # run ids per `attributes.run_id IN (...)` filter (both read paths)
RUNS_PAGE = 1000  # a filter's runs fit one page (a run id matches one run)


def max_pages(page_size: int) -> int:
    """Pages a listing may take: MAX_ITEMS full pages, and one more."""
    return MAX_ITEMS // max(1, page_size) + 1


def _shown(value: Any) -> str:
    """A value from the server, short and escaped, for a message."""
    text = ascii(value) if isinstance(value, str) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def supports(store: Any) -> bool:
    """True for MLflow's REST registry stores (OSS server, Databricks workspace registry);
    Unity Catalog and database stores keep the store path."""
    from mlflow.store.model_registry.rest_store import RestStore

    return isinstance(store, RestStore)


def _store_call(store: Any, method: str) -> Get:
    """`(endpoint, payload) -> JSON` against the store's server, MLflow's way (its request
    helpers, the store's credentials): a GET sends the payload as query parameters, a POST
    as its JSON body; within the same budget and size bounds as rest_http's reads."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    def send(endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        check = getattr(store, "_validate_workspace_support_if_specified", None)
        if check is not None:
            check()
        path = f"{API}/{endpoint}"
        creds = store.get_host_creds()
        sent = {"params": payload} if method == "GET" else {"json": payload}

        def call(expired: threading.Event) -> Any:
            response = http_request(
                host_creds=creds, endpoint=path, method=method, stream=True, **sent
            )
            response._content = read_body(response, expired, path)  # what MLflow reads next
            return response

        response = within(call_budget(), call)
        verify_rest_response(response, path)
        return parse_answer(response.content, path)

    return send


def json_getter(store: Any) -> Get:
    """GET an endpoint of the store's server and return its JSON, MLflow's way."""
    return _store_call(store, "GET")


def json_poster(store: Any) -> Post:
    """POST a JSON body to an endpoint of the store's server, MLflow's way (json_getter)."""
    return _store_call(store, "POST")


def _posted(post: Post, endpoint: str, key: str, body: dict[str, Any]) -> Iterator[Any]:
    """Every item of a JSON listing served by POST, through `pages`."""

    def fetch(token: str | None) -> tuple[list[Any], Any]:
        doc = post(endpoint, {**body, **({"page_token": token} if token else {})})
        got = doc.get(key) or []
        if not isinstance(got, list):
            raise AnswerError(f"{endpoint}: '{key}' is a {type(got).__name__}, not a list")
        return got, doc.get("next_page_token") or None

    return pages(fetch, endpoint, int(body.get("max_results") or 1))


def _metric_value(raw: Any, where: str) -> float:
    """A metric's value as JSON carries it: a number, or MLflow's "NaN" / "Infinity"."""
    if type(raw) in (int, float):
        return float(raw)
    if raw in ("NaN", "Infinity", "-Infinity"):
        return float(raw)
    raise AnswerError(f"{where}: value is {_shown(raw)}, not a number")


def read_run_metrics(
    post: Post, run_ids: Sequence[str], keys: Iterable[str] | None
) -> dict[str, dict[str, float]]:
    """The latest value of `keys` (every key when None: a rule reads `version.metrics`,
    up to MAX_RUN_METRICS a run) logged by each of `run_ids` (all checked RUN_IDs): one
    experiments/search page per EXPERIMENTS_PAGE experiments (runs are searched by
    experiment), then one runs/search page per RUNS_PER_FILTER runs."""
    wanted = None if keys is None else frozenset(keys)
    exp_ids = []
    body = {"max_results": EXPERIMENTS_PAGE, "view_type": "ALL"}
    for exp in _posted(post, "experiments/search", "experiments", body):
        exp_id = exp.get("experiment_id") if isinstance(exp, dict) else None
        if not isinstance(exp_id, str) or not exp_id:
            raise AnswerError(f"experiments/search: an experiment_id is {_shown(exp_id)}")
        exp_ids.append(exp_id)
    out: dict[str, dict[str, float]] = {}
    for i in range(0, len(run_ids), RUNS_PER_FILTER):
        chunk = list(run_ids[i : i + RUNS_PER_FILTER])
        body = {
            "experiment_ids": exp_ids,
            "filter": f"attributes.run_id IN ({', '.join(map(quote_name, chunk))})",
            "run_view_type": "ALL",
            "max_results": RUNS_PAGE,
        }
        for run in _posted(post, "runs/search", "runs", body):
            info = run.get("info") if isinstance(run, dict) else None
            run_id = info.get("run_id") if isinstance(info, dict) else None
            if not isinstance(run_id, str) or run_id not in chunk:
                continue  # not one asked for: never read
            data = run.get("data") or {}
            where = f"run {run_id}"
            pairs = _json_pairs(
                data.get("metrics") if isinstance(data, dict) else None,
                where, "metrics", "key", "value",
            )  # fmt: skip
            out[run_id] = {
                k: _metric_value(v, f"{where} metric {ascii(k)}")
                for k, v in (pairs if wanted is not None else pairs[:MAX_RUN_METRICS])
                if isinstance(k, str) and (k in wanted if wanted is not None else len(k) <= 250)
            }
    return out


MAX_RUN_METRICS = 1000  # keys of one run a rule may read: a bound on a hostile answer


def pages(
    fetch: Callable[[str | None], tuple[Sequence[Any], Any]], what: str, page_size: int
) -> Iterator[Any]:
    """Every item of a listing, page after page, until the answer holds no page token: the
    one paging loop of both read paths (`_paged` over JSON, `registry.paged` over MLflow's
    store). `fetch(token)` returns a page's items and its next token (None on the first).

    The pages are untrusted: a token seen before (the pages would loop) stops it at once;
    more than max_pages(page_size) pages or MAX_ITEMS items stop it too (AnswerError).
    """
    token: str | None = None
    seen: set[bytes] = set()  # digests: a hostile token may be long
    limit = max_pages(page_size)
    items = 0
    for page in range(1, limit + 1):
        got, token = fetch(token)
        items += len(got)
        if items > MAX_ITEMS:
            raise AnswerError(
                f"{what}: more than {MAX_ITEMS:,} items in one listing; stopped reading"
            )
        yield from got
        if not token:
            return
        if not isinstance(token, str):
            raise AnswerError(f"{what}: next_page_token is a {type(token).__name__}")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        if digest in seen:
            raise AnswerError(
                f"{what}: page {page} gave a page token the registry had sent before: "
                "its pages would never end; stopped reading"
            )
        seen.add(digest)
    raise AnswerError(
        f"{what}: still more pages after {limit:,} (at most {MAX_ITEMS:,} items are "
        "read); stopped reading"
    )


def _paged(get: Get, endpoint: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item of a JSON listing (`key` of each answer of `endpoint`), through `pages`."""

    def fetch(token: str | None) -> tuple[list[Any], Any]:
        doc = get(endpoint, {**params, **({"page_token": token} if token else {})})
        got = doc.get(key) or []
        if not isinstance(got, list):
            raise AnswerError(f"{endpoint}: '{key}' is a {type(got).__name__}, not a list")
        return got, doc.get("next_page_token") or None

    return pages(fetch, endpoint, int(params.get("max_results") or 1))


def _json_pairs(raw: Any, where: str, field: str, key: str, value: str) -> list[tuple[Any, Any]]:
    """[{key: k, value: v}, ...] from a JSON answer as (k, v) pairs (types checked later)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise AnswerError(f"{where}: field '{field}' is not a list of objects")
    return [(t.get(key), t.get(value, "")) for t in raw]


def _tag_map(pairs: Iterable[tuple[Any, Any]], where: str, field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in pairs:
        if not isinstance(k, str) or not isinstance(v, str):
            bad = k if not isinstance(k, str) else v
            raise AnswerError(f"{where}: field '{field}' holds a {_shown(bad)}, not a string")
        out[k] = v
    return out


def version_number(value: Any, where: str, field: str = "version") -> str:
    """A version number as regops keys it ("7"), from a JSON string or integer."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    ok = (
        isinstance(value, str)
        and value.isascii()
        and value.isdigit()
        and len(value) <= MAX_VERSION_DIGITS
        and value[0] != "0"  # MLflow numbers versions from 1
    )
    if not ok:
        raise AnswerError(f"{where}: field '{field}' is not a version number ({_shown(value)})")
    number: str = value
    return number


def _optional_str(value: Any, where: str, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise AnswerError(f"{where}: field '{field}' is a {_shown(value)}, not a string")
    return value


def live_version(
    model: str,
    *,
    version: Any,
    stage: Any,
    run_id: Any,
    tags: Iterable[tuple[Any, Any]],
    source: Any,
    created: Any,
    status: Any,
    has_stages: bool,
) -> LiveVersion:
    """The one place a registry's version becomes a LiveVersion (JSON and store reads):
    every field checked, AnswerError naming the model, version and field otherwise."""
    where = f"model {ascii(model)}"
    number = version_number(version, where)
    where = f"{where} version {number}"
    current = "None"
    if has_stages:
        current = stage if stage not in (None, "") else "None"
        if current not in STAGES:
            raise AnswerError(
                f"{where}: field 'current_stage' is {_shown(current)}, not one of MLflow's "
                f"stages ({', '.join(STAGES)})"
            )
    if created in (None, "", 0):
        created_ms = None
    else:
        if isinstance(created, str) and created.isascii() and created.isdigit():
            created = int(created[:20])
        if not isinstance(created, int) or isinstance(created, bool):
            raise AnswerError(f"{where}: field 'creation_timestamp' is {_shown(created)}")
        if not 0 < created <= MAX_TIMESTAMP_MS:
            raise AnswerError(f"{where}: field 'creation_timestamp' is out of range")
        created_ms = created
    return LiveVersion(
        version=number,
        stage=current,
        run_id=_optional_str(run_id, where, "run_id"),
        tags=MappingProxyType(_tag_map(tags, where, "tags")),
        source=_optional_str(source, where, "source"),
        created_ms=created_ms,
        status=_optional_str(status, where, "status") or READY,
    )


def live_model(fields: dict[str, Any], versions: dict[str, LiveVersion]) -> LiveModel:
    """The one place a registry's model becomes a LiveModel (both read paths): `fields`
    from live_model_fields, its versions from live_version. An alias must hold one of the
    model's versions (MLflow deletes a version's aliases with it)."""
    for alias, number in fields["aliases"].items():
        if number not in versions:
            raise AnswerError(
                f"model {ascii(fields['name'])} alias {ascii(alias)}: version {number} is not "
                "one of the model's versions"
            )
    return LiveModel(
        name=fields["name"],
        versions=MappingProxyType(versions),
        aliases=MappingProxyType(fields["aliases"]),
        description=fields["description"],
        tags=fields["tags"],
    )


def model_name(value: Any) -> str:
    """A registered model's name from an answer: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise AnswerError(f"a registered model's field 'name' is {_shown(value)}")
    return value


def live_model_fields(
    name: str, description: Any, tags: Iterable[tuple[Any, Any]], aliases: Iterable[tuple[Any, Any]]
) -> dict[str, Any]:
    """A registered model's description, tags and aliases, checked (both read paths)."""
    where = f"model {ascii(name)}"
    held: dict[str, str] = {}
    for alias, version in aliases:
        if not isinstance(alias, str) or not alias:
            raise AnswerError(f"{where}: field 'aliases' holds an alias {_shown(alias)}")
        held[alias] = version_number(version, f"{where} alias {ascii(alias)}")
    return {
        "name": name,
        "description": _optional_str(description, where, "description"),
        "tags": MappingProxyType(_tag_map(tags, where, "tags")),
        "aliases": held,
    }


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
        if not isinstance(m, dict):
            raise AnswerError(f"registered-models/search: a model is a {type(m).__name__}")
        name = model_name(m.get("name"))
        where = f"model {ascii(name)}"
        fields = live_model_fields(
            name,
            m.get("description"),
            _json_pairs(m.get("tags"), where, "tags", "key", "value"),
            _json_pairs(m.get("aliases"), where, "aliases", "alias", "version"),
        )
        if fields["tags"].get(PROMPT_TAG, "").lower() == "true":
            continue
        # latest_versions is the heaviest part of the answer and unused: it is dropped here.
        out.append(fields)
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
            if not isinstance(mv, dict):
                raise AnswerError(f"model-versions/search: a version is a {type(mv).__name__}")
            name = mv.get("name")
            if not isinstance(name, str):
                raise AnswerError(
                    f"model-versions/search: a version's field 'name' is {_shown(name)}"
                )
            if name not in own:
                continue
            lv = live_version(
                name,
                version=mv.get("version"),
                stage=mv.get("current_stage"),
                run_id=mv.get("run_id"),
                tags=_json_pairs(mv.get("tags"), f"model {ascii(name)}", "tags", "key", "value"),
                source=mv.get("source"),
                created=mv.get("creation_timestamp"),
                status=mv.get("status"),
                has_stages=has_stages,
            )
            by_model[name][lv.version] = lv

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
    live = {m["name"]: live_model(m, versions[m["name"]]) for m in chosen}
    return LiveState(models=MappingProxyType(live), has_stages=has_stages)
