"""The run metrics `require_metrics` reads are untrusted answers too (issue 19): against
the hostile server (a real HTTP server on 127.0.0.1), a wrong value names the run and the
key, a run not asked for is ignored, pages end, and no unchecked run id reaches a filter."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from regops.adapters.mlflow.registry import MlflowRegistry
from regops.errors import AnswerError
from tests.support.hostile_server import Answer, HostileServer, serving

RUN = "a" * 32
OTHER = "b" * 32


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileServer]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for s in serving():
        s.on(
            "experiments/search", lambda _b: Answer.json({"experiments": [{"experiment_id": "0"}]})
        )
        yield s


def runs(*items: dict[str, Any], token: str | None = None) -> Answer:
    doc: dict[str, Any] = {"runs": list(items)}
    if token:
        doc["next_page_token"] = token
    return Answer.json(doc)


def run(run_id: str, **metrics: Any) -> dict[str, Any]:
    return {
        "info": {"run_id": run_id},
        "data": {"metrics": [{"key": k, "value": v} for k, v in metrics.items()]},
    }


def test_only_the_runs_and_keys_asked_for_are_kept(server: HostileServer) -> None:
    server.on("runs/search", lambda _b: runs(run(RUN, auc=0.9, other=1), run(OTHER, auc=0.1)))
    got = MlflowRegistry(server.url).run_metrics([RUN], ["auc"])
    assert got == {RUN: {"auc": 0.9}}
    ((_, body),) = [r for r in server.requests if r[0].endswith("runs/search")]
    assert body["filter"] == f"attributes.run_id IN ('{RUN}')"
    assert body["experiment_ids"] == ["0"]


def test_an_id_that_is_no_run_id_never_reaches_a_filter(server: HostileServer) -> None:
    server.on("runs/search", lambda _b: runs())
    assert MlflowRegistry(server.url).run_metrics(["x') OR (1=1", "ok"], ["auc"]) == {}
    ((_, body),) = [r for r in server.requests if r[0].endswith("runs/search")]
    assert body["filter"] == "attributes.run_id IN ('ok')"


def test_nan_and_infinity_are_read_as_what_they_are(server: HostileServer) -> None:
    server.on("runs/search", lambda _b: runs(run(RUN, auc="NaN", loss="Infinity")))
    got = MlflowRegistry(server.url).run_metrics([RUN], ["auc", "loss"])
    assert math.isnan(got[RUN]["auc"])
    assert got[RUN]["loss"] == math.inf


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (runs(run(RUN, auc="high")), f"run {RUN} metric 'auc': value is 'high', not a number"),
        (runs(run(RUN, auc=[1])), f"run {RUN} metric 'auc': value is list, not a number"),
        (Answer.json({"runs": {"x": 1}}), "runs/search: 'runs' is a dict, not a list"),
        (
            runs(run(RUN, auc=0.9), token="again"),
            "runs/search: page 2 gave a page token the registry had sent before",
        ),
        (
            Answer.json({"runs": [{"info": {"run_id": RUN}, "data": {"metrics": "x"}}]}),
            f"run {RUN}: field 'metrics' is not a list of objects",
        ),
    ],
    ids=["string-value", "list-value", "runs-not-a-list", "looping-pages", "metrics-not-a-list"],
)
def test_a_wrong_answer_is_exit_1_naming_what(
    server: HostileServer, answer: Answer, message: str
) -> None:
    server.on("runs/search", lambda _b: answer)
    with pytest.raises(AnswerError) as err:
        MlflowRegistry(server.url).run_metrics([RUN], ["auc"])
    assert message in str(err.value)


def test_a_wrong_experiment_id_is_exit_1(server: HostileServer) -> None:
    server.on("experiments/search", lambda _b: Answer.json({"experiments": [{"experiment_id": 7}]}))
    with pytest.raises(AnswerError) as err:
        MlflowRegistry(server.url).run_metrics([RUN], ["auc"])
    assert "experiments/search: an experiment_id is int" in str(err.value)
