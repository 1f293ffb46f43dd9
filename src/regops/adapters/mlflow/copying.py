"""Make a COPY change: another environment's version becomes a new version here.

Across two registries the model files are downloaded from the source registry's
artifact store (with the source environment's credentials) and logged as the
artifacts of a run in the target registry (experiment `regops-copies`), then one
`create_model_version` call registers them with the source's evidence tags and
the lineage tag (source environment, model, version, run, requesting commit)
together: a version never exists without its lineage. When both environments
are one registry (e.g. Unity Catalog catalogs), MLflow's `copy_model_version`
does it, lineage added to the same call.

Trust: a version's `source` is written by whoever can write the source registry. Its
files are copied only when they lie in that registry's own artifact store
(`MlflowRegistry.artifact_roots`): a local path, `file://`, another bucket or host, a
`..` segment, or a `runs:`/`models:` reference that resolves elsewhere is refused
(`Copier.check`, before any write, and again before each download), so a writer of dev
cannot make the prod job upload files of the machine it runs on.

Convergence: before copying, and after any failure, the target is searched for
the copy by its lineage; a copy that landed (its answer lost) is used, never made
twice. A run uploaded before a cut is reused by its `regops.copy_key` tag.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from regops.adapters.mlflow.registry import MlflowRegistry
from regops.adapters.tracking import mask_uri
from regops.core.lineage import LINEAGE_TAG, Lineage
from regops.core.plan import Change
from regops.core.promotion import CopyRef, copied_tags, find_copy, parse_ref
from regops.errors import CopyError
from regops.files.environments import Config, Environment, credentials_of

COPIES_EXPERIMENT = "regops-copies"
COPYING_TAG = "regops.copying"  # model tag: the last copy started here (`dev/Model@7`)


_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")
# Registry references: what they point at is checked through the download location.
REFERENCE_SCHEMES = frozenset({"runs", "models"})


def _where(uri: str) -> tuple[str, str, str]:
    """(scheme, host, path) of an artifact location; a bare path is `file` on no host."""
    m = _SCHEME.match(uri)
    if m is None:  # a path (a one-letter "scheme" is a Windows drive)
        return "file", "", uri.replace("\\", "/")
    parts = urlsplit(uri)
    host = parts.netloc.lower()
    scheme = m["scheme"].lower()
    if scheme == "file" and host == "localhost":
        host = ""
    return scheme, host, unquote(parts.path)


def _traverses(uri: str) -> bool:
    path = unquote(unquote(uri)).replace("\\", "/")
    return ".." in path.split("/")


def _under(uri: str, root: str) -> bool:
    scheme, host, path = _where(uri)
    r_scheme, r_host, r_path = _where(root)
    if (scheme, host) != (r_scheme, r_host):
        return False
    return PurePosixPath(r_path or "/") in (
        PurePosixPath(path or "/"),
        *PurePosixPath(path).parents,
    )


def outside_store(source: str, location: str, roots: Sequence[str]) -> str | None:
    """Why a version whose `source` downloads from `location` may not be copied out of
    the registry whose artifact store is `roots`; None when it may."""
    if not roots:
        return "the source registry's artifact root could not be read"
    for what in (source, location):
        if _traverses(what):
            return f"{what!r} holds a '..' segment"
    m = _SCHEME.match(source)
    checked = [location] if m and m["scheme"].lower() in REFERENCE_SCHEMES else [source, location]
    for what in checked:
        if not any(_under(what, root) for root in roots):
            return f"{what!r} lies outside its artifact store ({', '.join(roots)})"
    return None


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

    def check(self, changes: Iterable[Change]) -> None:
        """Refuse, before any write, every copy whose files lie outside the source
        registry's artifact store (see the module docstring); all of them in one error."""
        problems = []
        roots: dict[str, list[str]] = {}
        for change in changes:
            ref = parse_ref(change.before or "")
            src_env = self.config.get(ref.env)
            with credentials_of(src_env):
                if src_env.tracking_uri == self.target.uri:
                    continue  # one registry: MLflow copies within its own store
                source = self._open(src_env.tracking_uri)
                if ref.env not in roots:
                    roots[ref.env] = self._roots(source, ref.env)
                problem = self._refusal(change.model, ref, source, roots[ref.env])
            if problem:
                problems.append(problem)
        if problems:
            raise CopyError("\n".join(problems))

    def _roots(self, source: MlflowRegistry, env: str) -> list[str]:
        try:
            return source.artifact_roots()
        except Exception as exc:
            raise CopyError(
                f"cannot read {env}'s artifact root (the Default experiment's location), so "
                f"no copy from {env} can be checked: {type(exc).__name__}: "
                f"{mask_uri(str(exc).strip().splitlines()[0] if str(exc).strip() else '')}"
            ) from None

    def _refusal(
        self, model: str, ref: CopyRef, source: MlflowRegistry, roots: Sequence[str]
    ) -> str | None:
        mv = source.model_version(ref.model, ref.version)
        src = str(mv.source or "")
        why = outside_store(src, source.download_uri(ref.model, ref.version), roots)
        if why is None:
            return None
        return (
            f"refusing to copy {ref.describe()} to {self.target_env.name} {model}: its source "
            f"{mask_uri(src)!r} is not in {ref.env}'s artifact store: {mask_uri(why)}; "
            "only files the source registry stores are copied"
        )

    def _find(self, model: str, ref: CopyRef) -> str | None:
        live = self.target.snapshot([model])
        return find_copy(live.models.get(model), ref)

    def _copy(self, model: str, ref: CopyRef, src_env: Environment, lineage: Lineage) -> str:
        with credentials_of(src_env):
            src_uri = src_env.tracking_uri
            source = self._open(src_uri)
            mv = source.model_version(ref.model, ref.version)
            metrics = _run_metrics(source, mv.run_id)
        lineage = Lineage(lineage.env, lineage.model, lineage.version, mv.run_id, lineage.commit)
        tags = {**copied_tags(mv.tags or {}), LINEAGE_TAG: lineage.to_tag()}
        if src_uri == self.target.uri:
            return self.target.copy_version(ref.model, ref.version, model, tags)
        with credentials_of(src_env):  # again: the source may have changed since `check`
            problem = self._refusal(model, ref, source, self._roots(source, ref.env))
        if problem:
            raise CopyError(problem)
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
                metrics=metrics,
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


def _run_metrics(source: MlflowRegistry, run_id: str | None) -> dict[str, float]:
    """The metrics of the source version's run, which its copy's run carries: a metric gate
    in the target then reads them there. Best effort: a login that may read the source's
    models but not its runs still copies (the plan read the numbers a gate needed)."""
    if not run_id:
        return {}
    try:
        return dict(source.run_metrics([run_id], None).get(run_id, {}))
    except Exception:  # noqa: BLE001 - the copy itself does not depend on them
        return {}
