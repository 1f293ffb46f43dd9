"""Make a COPY change: another environment's version becomes a new version here.

Across two registries the model files are downloaded from the source registry's
artifact store (with the source environment's credentials) and logged as the
artifacts of a run in the target registry (experiment `regops-copies`), then one
`create_model_version` call registers them with the source's evidence tags and
the lineage tag (source environment, model, version, run, requesting commit)
together: a version never exists without its lineage. When both environments
are one registry (e.g. Unity Catalog catalogs), MLflow's `copy_model_version`
does it, lineage added to the same call.

Convergence: before copying, and after any failure, the target is searched for
the copy by its lineage; a copy that landed (its answer lost) is used, never made
twice. A run uploaded before a cut is reused by its `regops.copy_key` tag.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from regops.environments import Config, Environment, credentials_of
from regops.errors import RegopsError
from regops.options import mask_uri
from regops.plan import Change
from regops.promotion import LINEAGE_TAG, CopyRef, Lineage, copied_tags, find_copy, parse_ref
from regops.registry import MlflowRegistry

COPIES_EXPERIMENT = "regops-copies"
COPYING_TAG = "regops.copying"  # model tag: the last copy started here (`dev/Model@7`)


class CopyError(RegopsError):
    """A version could not be copied across environments."""


class Copier:
    """Callable for `executor.apply(copier=...)`: makes one copy, returns its version."""

    def __init__(
        self,
        config: Config,
        target_env: Environment,
        target: MlflowRegistry,
        commits: Mapping[str, str],
        *,
        open_registry: Callable[[str], MlflowRegistry] = MlflowRegistry,
    ) -> None:
        self.config = config
        self.target_env = target_env
        self.target = target
        self.commits = commits  # model -> commit of the state file that asked for the copy
        self._open = open_registry

    def __call__(self, change: Change) -> str:
        ref = parse_ref(change.before or "")
        existing = self._find(change.model, ref)
        if existing is not None:
            return existing
        src_env = self.config.get(ref.env)
        lineage = Lineage(ref.env, ref.model, ref.version, commit=self.commits.get(change.model))
        try:
            return self._copy(change.model, ref, src_env, lineage)
        except CopyError:
            raise
        except Exception as exc:
            # The create call may have landed with its answer lost: look before failing.
            try:
                found = self._find(change.model, ref)
            except Exception:
                found = None
            if found is not None:
                return found
            raise CopyError(self._explain(exc, change.model, ref)) from exc

    def _find(self, model: str, ref: CopyRef) -> str | None:
        live = self.target.snapshot([model])
        return find_copy(live.models.get(model), ref)

    def _copy(self, model: str, ref: CopyRef, src_env: Environment, lineage: Lineage) -> str:
        with credentials_of(src_env):
            src_uri = src_env.tracking_uri
            source = self._open(src_uri)
            mv = source.model_version(ref.model, ref.version)
        lineage = Lineage(lineage.env, lineage.model, lineage.version, mv.run_id, lineage.commit)
        tags = {**copied_tags(mv.tags or {}), LINEAGE_TAG: lineage.to_tag()}
        if src_uri == self.target.uri:
            return self.target.copy_version(ref.model, ref.version, model, tags)
        with tempfile.TemporaryDirectory(prefix="regops-copy-") as tmp:
            with credentials_of(src_env):
                local = source.download_version(ref.model, ref.version, Path(tmp))
            self.target.ensure_model(model)
            # A write on the model before any upload: a login that may not write here is
            # refused now, before files are uploaded for nothing.
            self.target.set_model_tag(model, COPYING_TAG, ref.ref)
            run_id, uri = self.target.upload_model(
                local,
                experiment=COPIES_EXPERIMENT,
                key=ref.ref,
                run_name=f"copy of {ref.describe()}",
                tags={LINEAGE_TAG: lineage.to_tag()},
            )
            return self.target.create_version(model, uri, run_id, tags)

    def _explain(self, exc: BaseException, model: str, ref: CopyRef) -> str:
        code = getattr(exc, "error_code", "")
        text = mask_uri(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        env = self.target_env
        if code == "PERMISSION_DENIED" or " 403" in f" {text}" or "Permission denied" in text:
            return (
                f"permission denied: the credentials for {env.name} "
                f"({env.describe_credentials()}) may not create versions of {model} in "
                f"{env.name}'s registry; copying {ref.describe()} needs write access there "
                "(is a dev login being used for prod?)"
            )
        if code == "UNAUTHENTICATED" or " 401" in f" {text}":
            return (
                f"not authenticated to {env.name}'s registry: set {env.describe_credentials()} "
                f"(copying {ref.describe()})"
            )
        return f"copying {ref.describe()} to {env.name} failed: {type(exc).__name__}: {text}"
