"""The only module that talks to MLflow: paged snapshot reads and one-call writes.

Reads cost a constant number of paged calls whatever the number of versions:
`search_registered_models` (aliases, descriptions, model tags; 1,000 a page) and
`search_model_versions` filtered by `name IN (...)` (stages, run ids, tags; up to
200,000 a page). Writes go to the registry store directly: `MlflowClient` adds a
`registered-models/get` before each write (its prompt check), which would double
the calls of a reconcile; the store makes exactly one REST call per write.
"""

from __future__ import annotations

import functools
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from regops import rest_reads
from regops.errors import RegistryError
from regops.live import LiveModel, LiveState, LiveVersion
from regops.options import mask_uri
from regops.registry_uri import stages_supported

T = TypeVar("T")

MODELS_PAGE = 1000
VERSIONS_PAGE = 200_000
NAMES_PER_FILTER = 100  # keeps the GET query string of search_model_versions well under URL limits
PROMPT_TAG = "mlflow.prompt.is_prompt"
COPY_KEY_TAG = "regops.copy_key"  # run tag: the copy (`dev/Model@7`) whose files the run holds

# Failures worth another try: connection trouble, overload, server errors, and the
# unique-constraint race that concurrent alias writes on one model produce.
TRANSIENT_MARKERS = (
    "UniqueViolation",
    "IntegrityError",
    "database is locked",
    "Max retries exceeded",
    "Connection refused",
    "Connection aborted",
    "RemoteDisconnected",
    "Read timed out",
    "TEMPORARILY_UNAVAILABLE",
    "too many 500 error responses",
    "too many 502 error responses",
    "too many 503 error responses",
    "too many 429 error responses",
)
TRANSIENT_CODES = {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    code = getattr(exc, "error_code", "")
    text = f"{type(exc).__name__}: {exc}"
    return code in TRANSIENT_CODES or any(m in text for m in TRANSIENT_MARKERS)


def with_retry(
    call: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int]:
    """Run `call`, retrying transient failures with exponential backoff; returns (result, tries)."""
    for attempt in range(1, attempts + 1):
        try:
            return call(), attempt
        except Exception as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            sleep(base_delay * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


class MlflowRegistry:
    """Snapshot and write access to one MLflow model registry."""

    def __init__(self, tracking_uri: str, registry_uri: str | None = None) -> None:
        import mlflow  # deferred: `regops validate` must not pay for it
        from mlflow.tracking import MlflowClient

        self.uri = registry_uri or tracking_uri
        self.tracking_uri = tracking_uri
        self.has_stages = stages_supported(self.uri)
        self._client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.uri)
        # The store makes one REST call per write; see the module docstring.
        self._store: Any = self._client._get_registry_client().store
        self._mlflow = mlflow
        # REST registries are read as plain JSON (see rest_reads); others through the store.
        self._json_get: rest_reads.Get | None = None
        if rest_reads.supports(self._store):
            get = rest_reads.json_getter(self._store)
            self._json_get = lambda endpoint, params: with_retry(lambda: get(endpoint, params))[0]

    # ---- reads ---------------------------------------------------------------------
    def _paged(self, search: Callable[..., Any], **kwargs: Any) -> list[Any]:
        out: list[Any] = []
        token: str | None = None
        while True:
            page, _ = with_retry(functools.partial(search, page_token=token, **kwargs))
            out.extend(page)
            token = page.token
            if not token:
                return out

    def list_model_names(self) -> list[str]:
        return sorted(m.name for m in self._search_models())

    def _search_models(self) -> list[Any]:
        models = self._paged(
            self._store.search_registered_models,
            filter_string=None,
            max_results=MODELS_PAGE,
            order_by=["name ASC"],
        )
        return [m for m in models if (m.tags or {}).get(PROMPT_TAG, "").lower() != "true"]

    def snapshot(self, names: Iterable[str] | None = None) -> LiveState:
        """Read the live state of `names` (all models when None) in a constant number of calls."""
        wanted = None if names is None else sorted(set(names))
        if self._json_get is not None:
            try:
                return rest_reads.snapshot(self._json_get, wanted, has_stages=self.has_stages)
            except Exception as exc:
                raise RegistryError(
                    f"could not read the registry at {self.display_uri}: {mask_uri(str(exc))}"
                ) from exc
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                models = self._search_models()
                if wanted is not None:
                    models = [m for m in models if m.name in set(wanted)]
                versions = self._search_versions([m.name for m in models])
        except Exception as exc:
            raise RegistryError(
                # MLflow's message repeats the full URL, credentials included: mask them.
                f"could not read the registry at {self.display_uri}: {mask_uri(str(exc))}"
            ) from exc
        by_model: dict[str, dict[str, LiveVersion]] = {m.name: {} for m in models}
        for mv in versions:
            if mv.name in by_model:
                by_model[mv.name][str(mv.version)] = LiveVersion(
                    version=str(mv.version),
                    stage=(mv.current_stage or "None") if self.has_stages else "None",
                    run_id=mv.run_id or None,
                    tags=MappingProxyType(dict(mv.tags or {})),
                    source=mv.source or None,
                    created_ms=int(mv.creation_timestamp) if mv.creation_timestamp else None,
                )
        live = {
            m.name: LiveModel(
                name=m.name,
                versions=MappingProxyType(by_model[m.name]),
                aliases=MappingProxyType({a: str(v) for a, v in self._aliases(m).items()}),
                description=m.description or None,
                tags=MappingProxyType(dict(m.tags or {})),
            )
            for m in models
        }
        return LiveState(models=MappingProxyType(live), has_stages=self.has_stages)

    def _aliases(self, model: Any) -> dict[str, Any]:
        if self.uri.startswith("databricks-uc"):
            # Unity Catalog's search omits aliases: one get per managed model.
            model = with_retry(lambda: self._store.get_registered_model(model.name))[0]
        return dict(model.aliases or {})

    def _search_versions(self, names: list[str]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(names), NAMES_PER_FILTER):
            chunk = names[i : i + NAMES_PER_FILTER]
            out.extend(
                self._paged(
                    self._store.search_model_versions,
                    filter_string=f"name IN ({', '.join(map(_quote, chunk))})",
                    max_results=VERSIONS_PAGE,
                    order_by=["name ASC", "version_number ASC"],
                )
            )
        return out

    # ---- writes: one call each --------------------------------------------------------
    def transition_stage(self, name: str, version: str, stage: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            # Archiving is always an explicit change of its own, never a side effect.
            self._store.transition_model_version_stage(
                name, version, stage, archive_existing_versions=False
            )

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._store.set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self._store.delete_registered_model_alias(name, alias)
        except Exception as exc:
            # A retried delete whose first attempt landed: the alias is gone, as wanted.
            if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                raise

    def update_description(self, name: str, description: str) -> None:
        self._store.update_registered_model(name, description)

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        from mlflow.entities.model_registry import ModelVersionTag

        self._store.set_model_version_tag(name, version, ModelVersionTag(key, value))

    def set_model_tag(self, name: str, key: str, value: str) -> None:
        from mlflow.entities.model_registry import RegisteredModelTag

        self._store.set_registered_model_tag(name, RegisteredModelTag(key, value))

    @property
    def display_uri(self) -> str:
        return mask_uri(self.uri)

    # ---- copies across environments (copying.py): artifacts and new versions ------------
    def model_version(self, name: str, version: str) -> Any:
        """The version as MLflow returns it (source, run id, tags)."""
        return with_retry(lambda: self._store.get_model_version(name, version))[0]

    def download_version(self, name: str, version: str, dst: Path) -> Path:
        """The version's model files, downloaded from this registry's artifact store."""
        import os

        uri = with_retry(lambda: self._store.get_model_version_download_uri(name, version))[0]
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm on stderr
        local = self._mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri
        )
        return Path(local)

    def ensure_model(self, name: str) -> None:
        """Create the registered model unless it exists."""
        try:
            with_retry(lambda: self._store.create_registered_model(name))
        except Exception as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise

    def upload_model(
        self, local: Path, *, experiment: str, key: str, run_name: str, tags: dict[str, str]
    ) -> tuple[str, str]:
        """Log `local` as the artifacts of a run here; returns (run id, model source URI).

        A finished run already holding `key` (a copy cut between upload and register)
        is reused rather than uploaded again.
        """
        c = self._client
        exp = c.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else c.create_experiment(experiment)
        done = c.search_runs(
            [exp_id],
            filter_string=(
                f"tags.`{COPY_KEY_TAG}` = {_quote(key)} and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        if done:
            return done[0].info.run_id, f"{done[0].info.artifact_uri}/model"
        run = c.create_run(exp_id, tags={**tags, COPY_KEY_TAG: key}, run_name=run_name)
        c.log_artifacts(run.info.run_id, str(local), "model")
        c.set_terminated(run.info.run_id)
        return run.info.run_id, f"{run.info.artifact_uri}/model"

    def create_version(
        self, name: str, source: str, run_id: str | None, tags: dict[str, str]
    ) -> str:
        """One call: the new version and all its tags land together (never retried: a
        retry after a lost answer would make a second version; the caller looks first)."""
        from mlflow.entities.model_registry import ModelVersionTag

        mv = self._store.create_model_version(
            name, source, run_id=run_id, tags=[ModelVersionTag(k, v) for k, v in tags.items()]
        )
        return str(mv.version)

    def copy_version(
        self, src_name: str, src_version: str, dst_name: str, tags: dict[str, str]
    ) -> str:
        """MLflow's own `copy_model_version` (both ends in this registry), `tags` added in
        the same create call."""
        from mlflow.entities.model_registry import ModelVersion, ModelVersionTag

        src = self.model_version(src_name, src_version)
        all_tags = {**(src.tags or {}), **tags}
        tagged = ModelVersion(
            src.name,
            src.version,
            src.creation_timestamp,
            description=src.description,
            source=src.source,
            run_id=src.run_id,
            run_link=src.run_link,
            tags=[ModelVersionTag(k, v) for k, v in all_tags.items()],
            model_id=getattr(src, "model_id", None),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            mv = self._store.copy_model_version(tagged, dst_name)
        return str(mv.version)
