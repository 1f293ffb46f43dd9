"""Properties of plan/apply over generated desired states and live registries.

Pure: LiveState/DesiredState objects are generated directly and applied to a small
in-memory registry that follows the executor's `Registry` protocol with MLflow's
semantics (an alias names one version; setting it moves it). One property also runs
against a real sqlite registry, with few examples.

- `plan` never raises, and is deterministic.
- A plan that may be applied converges: applying it, then planning again, leaves no
  change to apply; a plan that may not (error, failed gate) changes nothing.
- While a plan is applied no model is ever left without its Production version or
  without an alias it keeps (new holders come first; an alias move is one call).
- A write that fails (before or after it lands) stops the run; re-planning and
  re-applying converges and no change is ever written twice.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, Phase, assume, find, given, settings
from hypothesis import strategies as st

from regops.adapters.mlflow.executor import apply
from regops.core.live import APPLIED_TAG, LiveModel, LiveState, LiveVersion
from regops.core.plan import Action, OutcomeStatus, Plan
from regops.core.planner import diff
from regops.core.state import DesiredState, ModelSpec, Policy, StagePolicy, VersionSpec
from regops.errors import PlanError

STAGES = ("None", "Staging", "Production", "Archived")
ALIASES = ("champion", "challenger", "shadow")
EVIDENCE = ("validation_status", "smoke_test_status")
NAMES = ("A", "B", "C")
EXAMPLES = int(os.environ.get("REGOPS_PROPERTY_EXAMPLES", "75"))  # more for a deeper search
CHANGE_WRITES = ("stage", "alias", "alias-", "description")  # not stamps or records
STAMPS = {"regops.commit": "c0ffee", "regops.actor": "ci"}


# ---- an in-memory registry ------------------------------------------------------------------


@dataclass
class _Model:
    stages: dict[str, str]
    aliases: dict[str, str]
    description: str | None
    tags: dict[str, str]
    version_tags: dict[str, dict[str, str]]
    run_ids: dict[str, str | None]


@dataclass
class MemoryRegistry:
    """The executor's `Registry` protocol over dicts, with MLflow's semantics."""

    models: dict[str, _Model]
    has_stages: bool = True
    writes: list[tuple[str, ...]] = field(default_factory=list)
    history: list[LiveState] = field(default_factory=list)  # the state after each write
    down_from: int | None = None  # from this write attempt on, the server is down
    lands_then_fails: bool = False  # ...and that first write landed (its response was lost)
    attempts: int = 0

    @classmethod
    def of(cls, live: LiveState) -> MemoryRegistry:
        return cls(
            {
                m.name: _Model(
                    stages={v.version: v.stage for v in m.versions.values()},
                    aliases=dict(m.aliases),
                    description=m.description,
                    tags=dict(m.tags),
                    version_tags={v.version: dict(v.tags) for v in m.versions.values()},
                    run_ids={v.version: v.run_id for v in m.versions.values()},
                )
                for m in live.models.values()
            },
            has_stages=live.has_stages,
        )

    def snapshot(self, names: list[str] | None = None) -> LiveState:
        chosen = sorted(self.models if names is None else set(names) & set(self.models))
        return LiveState(
            MappingProxyType(
                {
                    n: LiveModel(
                        n,
                        MappingProxyType(
                            {
                                v: LiveVersion(
                                    v,
                                    stage=s,
                                    run_id=self.models[n].run_ids[v],
                                    tags=MappingProxyType(dict(self.models[n].version_tags[v])),
                                )
                                for v, s in self.models[n].stages.items()
                            }
                        ),
                        aliases=MappingProxyType(dict(self.models[n].aliases)),
                        description=self.models[n].description or None,
                        tags=MappingProxyType(dict(self.models[n].tags)),
                    )
                    for n in chosen
                }
            ),
            has_stages=self.has_stages,
        )

    def _write(self, *what: str) -> Iterator[None]:
        """Record the write; once the server is down, fail before (or once, after) it lands."""
        self.attempts += 1
        down = self.down_from is not None and self.attempts >= self.down_from
        first_down = down and self.attempts == self.down_from
        if down and not (first_down and self.lands_then_fails):
            raise ConnectionError(f"server down: write attempt {self.attempts} refused")
        self.writes.append(what)
        yield
        self.history.append(self.snapshot())
        if down:
            raise ConnectionError(f"server died after write attempt {self.attempts} landed")

    def _version(self, name: str, version: str) -> _Model:
        model = self.models[name]  # KeyError: MLflow's RESOURCE_DOES_NOT_EXIST
        if version not in model.stages:
            raise KeyError(f"{name} has no version {version}")
        return model

    def transition_stage(self, name: str, version: str, stage: str) -> None:
        assert self.has_stages, "a registry without stages got a stage change"
        model = self._version(name, version)
        for _ in self._write("stage", name, version, stage):
            model.stages[version] = stage

    def set_alias(self, name: str, alias: str, version: str) -> None:
        model = self._version(name, version)
        for _ in self._write("alias", name, alias, version):
            model.aliases[alias] = version

    def delete_alias(self, name: str, alias: str) -> None:
        model = self.models[name]
        for _ in self._write("alias-", name, alias):
            model.aliases.pop(alias, None)

    def update_description(self, name: str, description: str) -> None:
        model = self.models[name]
        for _ in self._write("description", name, description):
            model.description = description

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        model = self._version(name, version)
        for _ in self._write("version-tag", name, version, key):
            model.version_tags[version][key] = value

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        model = self.models[name]
        for _ in self._write("model-tag", name, key):
            model.tags[key] = value


# ---- strategies -----------------------------------------------------------------------------


@st.composite
def applied_tag(draw: st.DrawFn, versions: list[str]) -> str:
    """What regops recorded last time: well-formed (maybe for other versions) or garbage."""
    recorded = draw(st.lists(st.sampled_from([*versions, "7", "42"]), unique=True, max_size=4))
    doc = {
        v: [draw(st.sampled_from([None, *STAGES])), *draw(st.sets(st.sampled_from(ALIASES)))]
        for v in recorded
    }
    garbage = st.sampled_from(["", "{", "[]", '{"1": 5}', '{"1": []}', "null"])
    return draw(st.just(json.dumps(doc)) | garbage)


@st.composite
def live_model(draw: st.DrawFn, name: str, has_stages: bool) -> LiveModel:
    n = draw(st.integers(0, 5))
    versions = {}
    for i in range(1, n + 1):
        v = str(i)
        tags = draw(
            st.dictionaries(st.sampled_from(EVIDENCE), st.sampled_from(["passed", "failed"]))
        )
        versions[v] = LiveVersion(
            v,
            stage=draw(st.sampled_from(STAGES)) if has_stages else "None",
            run_id=draw(st.sampled_from([None, f"run{i}"])),
            tags=MappingProxyType(tags),
        )
    aliases = (
        draw(st.dictionaries(st.sampled_from(ALIASES), st.sampled_from(sorted(versions))))
        if versions
        else {}
    )
    tags = {}
    if draw(st.booleans()):
        tags[APPLIED_TAG] = draw(applied_tag(sorted(versions)))
    return LiveModel(
        name,
        MappingProxyType(versions),
        aliases=MappingProxyType(aliases),
        description=draw(st.sampled_from([None, "old", "new"])),
        tags=MappingProxyType(tags),
    )


@st.composite
def live_states(draw: st.DrawFn) -> LiveState:
    has_stages = draw(st.booleans().map(lambda b: b or draw(st.booleans())))  # mostly stages
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
    return LiveState(
        MappingProxyType({n: draw(live_model(n, has_stages)) for n in names}),
        has_stages=has_stages,
    )


@st.composite
def policies(draw: st.DrawFn, declared: dict[str, int]) -> Policy:
    """A policy the loader would accept for a model declaring `declared[stage]` versions."""
    stages = {}
    for stage in draw(st.lists(st.sampled_from(STAGES), unique=True, max_size=2)):
        floor = declared.get(stage, 0)
        stages[stage] = StagePolicy(
            max_versions=draw(st.none() | st.integers(floor, floor + 1)),
            require_from=draw(st.none() | st.sets(st.sampled_from(STAGES), min_size=1).map(tuple)),
            require_tags=MappingProxyType(
                draw(st.dictionaries(st.sampled_from(EVIDENCE), st.just("passed"), max_size=1))
            ),
        )
    # Gates are drawn rarely so that most plans may be applied.
    gated = draw(st.integers(0, 3)) == 0
    return Policy(
        unlisted_versions=draw(st.sampled_from(["ignore", "archive"])),
        drift=draw(st.sampled_from(["correct", "warn", "ignore"])),
        stages=MappingProxyType(stages if gated else {}),
    )


@st.composite
def model_spec(
    draw: st.DrawFn, name: str, lm: LiveModel | None, has_stages: bool, *, valid: bool
) -> ModelSpec:
    live_versions = sorted(lm.versions) if lm else []
    pool = live_versions if valid else [*live_versions, "9"]
    chosen = draw(st.lists(st.sampled_from(pool), unique=True)) if pool else []
    owner = (
        draw(st.dictionaries(st.sampled_from(ALIASES), st.sampled_from(chosen))) if chosen else {}
    )
    versions = {}
    for v in chosen:
        live_run = lm.versions[v].run_id if lm and v in lm.versions else None
        run_id = draw(st.sampled_from([None, live_run] if valid else [None, live_run, "other"]))
        versions[v] = VersionSpec(
            v,
            stage=draw(st.none() | st.sampled_from(STAGES)) if has_stages else None,
            aliases=tuple(sorted(a for a, o in owner.items() if o == v)),
            run_id=run_id,
            line=5,
        )
    declared: dict[str, int] = {}
    for vs in versions.values():
        if vs.stage:
            declared[vs.stage] = declared.get(vs.stage, 0) + 1
    return ModelSpec(
        name=name,
        versions=MappingProxyType(versions),
        policy=draw(policies(declared)),
        description=draw(st.sampled_from([None, "", "old", "new"])),
        suspend=draw(st.integers(0, 5)) == 0,
        file="registry-state/models.yaml",
        line=3,
    )


@st.composite
def scenarios(draw: st.DrawFn, *, valid: bool = True) -> tuple[DesiredState, LiveState]:
    """A live registry and a desired state for some of its models (or, when not `valid`,
    also for absent models and versions, with mismatched run ids)."""
    live = draw(live_states())
    pool = sorted(live.models) if valid else list(NAMES)
    names = draw(st.lists(st.sampled_from(pool), unique=True))
    specs = {
        n: draw(model_spec(n, live.models.get(n), live.has_stages, valid=valid)) for n in names
    }
    return DesiredState(MappingProxyType(specs), files=("registry-state/models.yaml",)), live


def actionable(p: Plan) -> list[str]:
    return [f"{c.model} {c.kind} {c.version} {c.alias} {c.before}->{c.after}" for c in p.actionable]


# ---- properties -----------------------------------------------------------------------------


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(scenarios(valid=False))
def test_plan_never_raises_and_is_deterministic(scenario: tuple[DesiredState, LiveState]) -> None:
    desired, live = scenario
    first = diff(desired, live)
    assert first == diff(desired, live)
    assert Plan.from_dict(json.loads(json.dumps(first.to_dict()))).changes == first.changes
    assert first.exit_code(detailed=True) in (0, 1, 2, 3)


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(scenarios())
def test_apply_then_plan_has_nothing_left(scenario: tuple[DesiredState, LiveState]) -> None:
    desired, live = scenario
    registry = MemoryRegistry.of(live)
    p = diff(desired, live)
    if not p.ok:
        with pytest.raises(PlanError):
            apply(p, registry, {})
        assert registry.writes == []  # a blocked or erroneous plan writes nothing
        return
    result = apply(p, registry, dict.fromkeys(p.models, STAMPS))
    assert result.ok
    assert [o.status for o in result.outcomes if o.change.action == Action.APPLY] == [
        OutcomeStatus.APPLIED
    ] * len(p.actionable)
    again = diff(desired, registry.snapshot())
    assert again.ok
    assert actionable(again) == []
    assert again.records == {}  # what was applied is recorded: no drift next time


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(scenarios())
def test_no_production_gap_and_no_alias_gap(scenario: tuple[DesiredState, LiveState]) -> None:
    desired, live = scenario
    p = diff(desired, live)
    assume(p.ok and p.actionable)
    registry = MemoryRegistry.of(live)
    apply(p, registry, {})
    final = registry.snapshot()
    for name in p.models:
        start, end = live.models[name], final.models[name]
        kept_prod = any(v.stage == "Production" for v in start.versions.values()) and any(
            v.stage == "Production" for v in end.versions.values()
        )
        kept_aliases = set(start.aliases) & set(end.aliases)
        for i, mid in enumerate(registry.history):
            m = mid.models[name]
            if kept_prod:
                assert any(v.stage == "Production" for v in m.versions.values()), (
                    f"{name} has no Production version after write {i + 1}: {registry.writes}"
                )
            assert kept_aliases <= set(m.aliases), f"{name} lost an alias after write {i + 1}"


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(scenarios(), st.integers(1, 30), st.booleans())
def test_server_dying_mid_apply_then_rerun_converges_without_repeats(
    scenario: tuple[DesiredState, LiveState], down_from: int, landed: bool
) -> None:
    """The server dies at write attempt `down_from` (that write landing or not); the run
    stops there and reports the rest as skipped; after a restart one re-plan + apply
    converges, and no change that landed is applied again."""
    desired, live = scenario
    p = diff(desired, live)
    assume(p.ok and p.actionable)
    registry = MemoryRegistry.of(live)
    registry.down_from, registry.lands_then_fails = down_from, landed
    first = apply(p, registry, dict.fromkeys(p.models, STAMPS), sleep=lambda _s: None)
    failed = [i for i, o in enumerate(first.outcomes) if o.status == OutcomeStatus.FAILED]
    assert len(failed) <= 1
    if failed:
        after = first.outcomes[failed[0] + 1 :]
        assert all(o.status == "skipped" for o in after), "a write went on after a failure"
    landed_first = {w for w in registry.writes if w[0] in CHANGE_WRITES}

    registry.down_from = None  # restarted
    registry.writes.clear()
    rerun = diff(desired, registry.snapshot())
    assert rerun.ok
    apply(rerun, registry, dict.fromkeys(rerun.models, STAMPS))
    assert actionable(diff(desired, registry.snapshot())) == []
    again = [w for w in registry.writes if w[0] in CHANGE_WRITES]
    assert not landed_first & set(again), f"applied twice: {sorted(landed_first & set(again))}"
    assert len(again) == len(set(again))
    assert len(landed_first | set(again)) == len(p.actionable)


def test_warned_drift_on_an_unlisted_version_stays_warned() -> None:
    spec = ModelSpec("A", MappingProxyType({}), Policy("archive", "warn"), file="f.yaml", line=3)
    desired = DesiredState(MappingProxyType({"A": spec}))
    live = LiveState(
        MappingProxyType(
            {
                "A": LiveModel(
                    "A",
                    MappingProxyType({"1": LiveVersion("1", "None")}),  # un-archived by hand
                    tags=MappingProxyType({APPLIED_TAG: json.dumps({"1": ["Archived"]})}),
                )
            }
        )
    )
    first = diff(desired, live)
    assert [(c.version, c.after, c.action) for c in first.changes] == [("1", "Archived", "warn")]
    registry = MemoryRegistry.of(live)
    apply(first, registry, {})  # writes nothing but the new record
    second = diff(desired, registry.snapshot())
    assert [(c.version, c.after, c.action) for c in second.changes] == [("1", "Archived", "warn")]


# ---- the same against a real sqlite registry -------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("properties") / "mlflow.db"
    return f"sqlite:///{db}"


def _materialize(uri: str, live: LiveState, prefix: str) -> dict[str, str]:
    """Create `live` in the registry under fresh names; returns generated -> real name."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    names = {n: f"{prefix}{n}" for n in live.models}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for n, m in live.models.items():
            real = names[n]
            client.create_registered_model(real, description=m.description)
            for v in sorted(m.versions, key=int):
                lv = m.versions[v]
                client.create_model_version(
                    real, source=f"file:///tmp/m/{v}", run_id=None, tags=dict(lv.tags)
                )
                if lv.stage != "None":
                    client.transition_model_version_stage(real, v, lv.stage)
            for alias, v in m.aliases.items():
                client.set_registered_model_alias(real, alias, v)
            for key, value in m.tags.items():
                client.set_registered_model_tag(real, key, value)
    return names


_counter = iter(range(10**6))


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # shrinking here costs minutes
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenarios())
def test_real_sqlite_registry_converges(
    sqlite_registry: str, scenario: tuple[DesiredState, LiveState]
) -> None:
    from regops.adapters.mlflow.registry import MlflowRegistry

    desired, live = scenario
    assume(live.has_stages)
    # run ids cannot be chosen in MLflow: drop them on both sides
    live = LiveState(
        MappingProxyType(
            {
                n: replace(
                    m,
                    versions=MappingProxyType(
                        {v: replace(lv, run_id=None) for v, lv in m.versions.items()}
                    ),
                )
                for n, m in live.models.items()
            }
        )
    )
    names = _materialize(sqlite_registry, live, f"p{next(_counter)}_")
    specs = {
        names[n]: replace(
            s,
            name=names[n],
            versions=MappingProxyType(
                {v: replace(vs, run_id=None) for v, vs in s.versions.items()}
            ),
        )
        for n, s in desired.models.items()
    }
    desired = DesiredState(MappingProxyType(specs), files=desired.files)
    registry = MlflowRegistry(sqlite_registry)
    p = diff(desired, registry.snapshot(list(specs)))
    if not p.ok:
        return
    result = apply(p, registry, dict.fromkeys(p.models, STAMPS))
    assert result.ok, [o.error for o in result.outcomes if o.error]
    assert actionable(diff(desired, registry.snapshot(list(specs)))) == []


def test_memory_registry_matches_sqlite_snapshot(sqlite_registry: str) -> None:
    """The in-memory registry reads back what it was given, as the real one does."""
    from regops.adapters.mlflow.registry import MlflowRegistry

    live = LiveState(
        MappingProxyType(
            {
                "A": LiveModel(
                    "A",
                    MappingProxyType(
                        {
                            "1": LiveVersion("1", "Production", tags=MappingProxyType({"k": "v"})),
                            "2": LiveVersion("2", "Staging"),
                        }
                    ),
                    aliases=MappingProxyType({"champion": "1"}),
                    description="d",
                    tags=MappingProxyType({APPLIED_TAG: "{}"}),
                )
            }
        )
    )
    names = _materialize(sqlite_registry, live, "same_")
    real = MlflowRegistry(sqlite_registry).snapshot([names["A"]]).models[names["A"]]
    memory = MemoryRegistry.of(live).snapshot().models["A"]
    for attr in ("aliases", "description", "tags"):
        assert getattr(real, attr) == getattr(memory, attr)
    assert {v: (lv.stage, dict(lv.tags)) for v, lv in real.versions.items()} == {
        v: (lv.stage, dict(lv.tags)) for v, lv in memory.versions.items()
    }


def _outcomes(p: Plan) -> set[str]:
    """The actions, kinds and drift a plan shows."""
    return (
        {c.action.value for c in p.changes}
        | {c.kind.value for c in p.changes}
        | ({"drift"} if any(c.drift for c in p.changes) else set())
    )


@pytest.mark.parametrize(
    "outcome",
    ["apply", "blocked", "warn", "suspended", "drift"]
    + ["stage", "alias_set", "alias_move", "alias_delete", "description"],
)
def test_strategies_reach_interesting_cases(outcome: str) -> None:
    """Guard against a vacuous property: plans that apply, block, drift and suspend all occur.

    Searched for (hypothesis.find) rather than counted over a fixed number of examples: the
    rarest, `warn`, first came after 66 to 712 examples over 20 seeds (one seed needed more
    than 1,000), so a fixed count passed or failed with the seed, which derandomize derives
    from the test's own code.
    """
    found = find(
        scenarios(),
        lambda scenario: outcome in _outcomes(diff(*scenario)),
        settings=settings(
            max_examples=20_000,
            database=None,
            deadline=None,
            phases=[Phase.generate],  # found is enough: no shrinking
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert outcome in _outcomes(diff(*found))
