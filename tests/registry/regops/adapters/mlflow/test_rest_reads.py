"""The plain-JSON snapshot (rest_reads) reads exactly what the store path reads.

Against a real `mlflow server`, with the odd inputs another client can write: quotes
and backslashes in names, empty tag values, a prompt, versions of unmanaged models,
more models than one `name IN (...)` filter takes, and pages smaller than the data.
"""

from __future__ import annotations

import uuid
import warnings

import pytest
from mlflow import MlflowClient
from mlflow.entities.model_registry import RegisteredModelTag

from regops.adapters.mlflow import rest_reads
from regops.adapters.mlflow.registry import MlflowRegistry
from regops.core.live import LiveState
from regops.errors import AnswerError, RegistryUnreachable
from tests.support.servers import MlflowServer


def store_snapshot(uri: str, names: list[str] | None) -> LiveState:
    """The reference: MLflow's RestStore (protobuf, entities), as before rest_reads."""
    registry = MlflowRegistry(uri)
    registry._json_get = None
    return registry.snapshot(names)


@pytest.fixture(scope="module")
def registry(mlflow_server: MlflowServer) -> tuple[str, list[str]]:
    uri = mlflow_server.url
    c = MlflowClient(tracking_uri=uri, registry_uri=uri)
    prefix = f"rr{uuid.uuid4().hex[:6]}"
    odd = [f"{prefix} it's", f'{prefix} back\\slash "q"', f"{prefix}-é"]
    names = [*odd, *(f"{prefix}_{i:03d}" for i in range(7))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for i, name in enumerate(names):
            c.create_registered_model(name, tags={"team": "", "k": str(i)}, description=None)
            for v in range(1, 4):
                c.create_model_version(name, source=f"s3://b/{name}/{v}", run_id=None)
                c.set_model_version_tag(
                    name, str(v), "validation_status", "passed" if v % 2 else ""
                )
            c.transition_model_version_stage(name, "2", "Production")
            c.set_registered_model_alias(name, "champion", "2")
        c.update_registered_model(names[0], description="described")
        # MlflowClient refuses to make a prompt; the store (what MLflow's prompt API uses) does.
        c._get_registry_client().store.create_registered_model(
            f"{prefix}_prompt", tags=[RegisteredModelTag("mlflow.prompt.is_prompt", "true")]
        )
    return uri, names


@pytest.mark.server
@pytest.mark.parametrize(
    ("page", "per_filter", "subset", "workers"),
    [
        (10_000, 100, None, 4),
        (2, 100, None, 4),
        (2, 3, None, 4),
        (2, 3, "some", 1),
        (10_000, 100, "one", 4),
    ],
    ids=["one-filter", "small-pages", "filters-side-by-side", "filters-one-by-one", "one-model"],
)
def test_json_snapshot_equals_store_snapshot(
    registry: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    page: int,
    per_filter: int,
    subset: str | None,
    workers: int,
) -> None:
    uri, names = registry
    monkeypatch.setattr(rest_reads, "VERSIONS_PAGE", page)
    monkeypatch.setattr(rest_reads, "NAMES_PER_FILTER", per_filter)
    monkeypatch.setattr(rest_reads, "READ_WORKERS", workers)
    wanted = {None: names, "some": names[:5], "one": names[1:2]}[subset]
    fast = MlflowRegistry(uri)
    assert fast._json_get is not None  # a REST registry takes the JSON path
    got = fast.snapshot(wanted)
    want = store_snapshot(uri, wanted)
    assert got == want
    assert sorted(got.models) == sorted(wanted)
    if names[0] in wanted:
        assert got.models[names[0]].description == "described"
    assert got.models[names[1]].aliases == {"champion": "2"}
    assert got.models[names[1]].versions["2"].stage == "Production"
    assert got.models[names[1]].versions["2"].tags["validation_status"] == ""


@pytest.mark.server
def test_all_models_skips_prompts(registry: tuple[str, list[str]]) -> None:
    uri, names = registry
    everything = MlflowRegistry(uri).snapshot(None)
    assert set(names) <= set(everything.models)
    assert not any(n.endswith("_prompt") for n in everything.models)
    assert everything == store_snapshot(uri, None)


@pytest.mark.server
@pytest.mark.parametrize("read_all", [True, False], ids=["versions-prefetched", "models-only"])
@pytest.mark.parametrize("subset", [None, "some"])
def test_prefetched_snapshot_equals_store_snapshot(
    registry: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
    read_all: bool,
    subset: str | None,
) -> None:
    """A snapshot whose reads started before it knew its models (`plan` reads while the
    state files load) holds what a plain one holds, and only the next snapshot uses them."""
    uri, names = registry
    monkeypatch.setattr(rest_reads, "prefetch_versions", lambda *_: read_all)
    monkeypatch.setattr(rest_reads, "NAMES_PER_FILTER", 3)  # several filters, side by side
    wanted = {None: names, "some": names[:5]}[subset]
    fast = MlflowRegistry(uri)
    fast.prefetch(expected=len(wanted))
    got = fast.snapshot(wanted)
    calls_after_first = fast.calls
    assert got == store_snapshot(uri, wanted)
    assert sorted(got.models) == sorted(wanted)
    again = fast.snapshot(wanted)  # read afresh: a prefetch serves one snapshot
    assert again == got
    assert fast.calls > calls_after_first


def test_prefetch_failure_is_raised_by_the_snapshot(
    monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    dead = MlflowRegistry(f"http://127.0.0.1:{dead_port}")
    dead.prefetch(expected=3)  # fails in the background, quietly
    with pytest.raises(RegistryUnreachable, match="cannot reach the MLflow registry"):
        dead.snapshot(["a"])


def test_reads_side_by_side_raise_the_first_failure_in_order() -> None:
    import threading

    c_failed = threading.Event()

    def read(chunk: list[str]) -> None:
        if chunk == ["b"]:
            c_failed.wait(5)  # "c" fails first in time; "b" comes first in order
            raise ValueError("b failed")
        if chunk == ["c"]:
            c_failed.set()
            raise KeyError("c failed")

    with pytest.raises(ValueError, match="b failed"):
        rest_reads.each(read, [["a"], ["b"], ["c"]], workers=3)


def test_reads_not_started_when_one_fails_never_start() -> None:
    import threading

    started: list[str] = []
    release = threading.Event()

    def read(chunk: list[str]) -> None:
        started.append(chunk[0])
        if chunk == ["a"]:
            raise ValueError("a failed")
        release.wait(5)  # both workers are busy until the failure is raised

    items = [[n] for n in "abcdefgh"]
    try:
        with pytest.raises(ValueError, match="a failed"):
            rest_reads.each(read, items, workers=2)
    finally:
        release.set()
    assert {"a", "b"} <= set(started) <= {"a", "b", "c"}  # "c" if a worker took it first
    done: list[str] = []
    rest_reads.each(lambda c: done.append(c[0]), items, workers=1)
    assert done == list("abcdefgh")


# ---- untrusted pages: the store path's pager is bounded like the JSON one -------------------
def test_store_pager_stops_on_a_repeated_token_and_after_max_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`registry.paged` (MLflow's store reads: sqlite, databases, Unity Catalog) gets
    MLflow's own PagedList pages; a token seen before, or pages past the cap, stop it."""
    from mlflow.store.entities.paged_list import PagedList

    from regops.adapters.mlflow.registry import RetryPolicy, paged

    run = RetryPolicy(attempts=1).run
    calls: list[str | None] = []

    def looping(page_token: str | None = None, max_results: int = 0) -> PagedList[int]:
        calls.append(page_token)
        return PagedList([1], "same")

    with pytest.raises(AnswerError, match="page token .* sent before"):
        paged(looping, run, max_results=1000)
    assert calls == [None, "same"]

    monkeypatch.setattr(rest_reads, "MAX_ITEMS", 2_500)
    count = iter(range(10**6))

    def endless(page_token: str | None = None, max_results: int = 0) -> PagedList[int]:
        return PagedList([], f"t{next(count)}")

    with pytest.raises(AnswerError, match="still more pages after 3"):
        paged(endless, run, max_results=1000)
    assert next(count) == 3

    def ends(page_token: str | None = None, max_results: int = 0) -> PagedList[int]:
        return PagedList(
            [1, 2], None if page_token == "t2" else f"t{int((page_token or 't0')[1:]) + 1}"
        )

    assert paged(ends, run, max_results=2) == [1, 2] * 3


def test_one_checked_builder_for_both_readers() -> None:
    """`live_version` is what both readers call: it keys MLflow's integer or string
    numbers alike, and names the model, version and field of a bad value."""
    common = {"run_id": None, "tags": [], "source": None, "status": None, "has_stages": True}
    a = rest_reads.live_version("M", version=3, stage=None, created=17, **common)
    b = rest_reads.live_version("M", version="3", stage="", created="17", **common)
    assert a == b
    assert (a.version, a.stage, a.created_ms, a.status) == ("3", "None", 17, "READY")
    with pytest.raises(AnswerError, match=r"model 'M' version 3: field 'current_stage'"):
        rest_reads.live_version("M", version="3", stage="Prod", created=None, **common)
    with pytest.raises(AnswerError, match=r"model 'M\\n': field 'version'"):
        rest_reads.live_version("M\n", version=True, stage=None, created=None, **common)
