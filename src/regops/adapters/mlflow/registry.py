"""The one adapter to the MLflow registry: opening it, paged reads, one-call writes, retries.

Both packages read through it (`regops`, and `accident_prediction.model_source`).

Reads cost a constant number of paged calls whatever the number of versions:
`search_registered_models` (aliases, descriptions, model tags; 1,000 a page) and
`search_model_versions` filtered by `name IN (...)` (stages, run ids, tags; up to
200,000 a page). Writes go to the registry store directly: `MlflowClient` adds a
`registered-models/get` before each write (its prompt check), which would double
the calls of a reconcile; the store makes exactly one REST call per write.

Retries: MLflow's HTTP client already retries connection failures, timeouts and
408/429/5xx answers (capped by `tracking.http_defaults`). One `RetryPolicy` here retries
only what nothing below retried: a database conflict (BAD_REQUEST, what a concurrent
alias write's unique violation becomes over REST; IntegrityError in-process) and a busy
database in-process (TEMPORARILY_UNAVAILABLE, sqlite's "database is locked"). A failure
that MLflow's HTTP retries already exhausted is never retried again: it becomes a
`RegistryUnreachable` naming the masked URI and what to check.
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from regops.adapters.mlflow import rest_http, rest_reads
from regops.adapters.mlflow.rest_reads import quote_name
from regops.adapters.tracking import http_defaults, mask_secrets, mask_uri, remember_uri_secrets
from regops.adapters.tracking import stages_supported as stages_supported
from regops.core.live import AUDIT_PREFIX, LiveModel, LiveState, LiveVersion, tag_problems
from regops.core.state import RUN_ID
from regops.errors import AnswerError, RegistryError, RegistryUnreachable, SlowAnswerError

T = TypeVar("T")

# Store reads (in-process or Unity Catalog): MLflow's own pages of objects, nothing held as
# JSON, so a page as large as the server allows. Page of models, models per filter and the
# prompt tag are rest_reads' (both read paths).
STORE_VERSIONS_PAGE = 200_000
MAX_EXPERIMENT_PAGES = 100  # artifact_roots: 100,000 experiments, and a paging loop ends
SHOWN_CHARS = 2000  # of a failed read's message (the server's words), once masked
COPY_KEY_TAG = "regops.copy_key"  # run tag: the copy (`dev/Model@7`) whose files the run holds

# MLflow error codes worth another try when nothing below retried them (see the docstring).
RETRY_CODES = frozenset({"BAD_REQUEST", "TEMPORARILY_UNAVAILABLE"})
# Not worth one: the request itself is wrong, or the caller may not make it.
TRANSIENT, UNREACHABLE, FATAL = "transient", "unreachable", "fatal"


def _requests_failure(exc: BaseException) -> BaseException | None:
    """The `requests` failure MLflow wrapped (it raises without `from`, so look at context)."""
    try:
        import requests
    except ImportError:  # pragma: no cover - mlflow-skinny depends on requests
        return None
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, requests.exceptions.RequestException):
            return cur
        cur = cur.__cause__ or cur.__context__
    return None


def classify(exc: BaseException) -> str:
    """TRANSIENT (retry here), UNREACHABLE (MLflow's HTTP retries gave up) or FATAL.

    By exception type and MLflow error code, never by the wording of a message.
    """
    if _requests_failure(exc) is not None or isinstance(exc, SlowAnswerError):
        return UNREACHABLE
    if isinstance(exc, ConnectionError | TimeoutError):
        # Raised by the operating system below a direct (non-HTTP) store: nobody retried it.
        return TRANSIENT
    import sqlalchemy.exc as sa  # a core dependency (mlflow's sqlite/SQL stores)

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sa.IntegrityError | sa.OperationalError):
            return TRANSIENT  # in-process: a concurrent write conflicted, or sqlite was busy
        cause = cause.__cause__
    if getattr(exc, "error_code", None) in RETRY_CODES:
        return TRANSIENT
    return FATAL


def _cert_failure(exc: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate check that failed below `exc` (requests and urllib3 wrap it in
    their own errors, as an argument or a cause)."""
    todo: list[Any] = [exc]
    seen: set[int] = set()
    while todo:
        cur = todo.pop()
        if not isinstance(cur, BaseException) or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return cur
        todo += [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
    return None


def unreachable_reason(exc: BaseException) -> str:
    """What went wrong below MLflow's retries, by exception type."""
    import requests
    import urllib3.exceptions as u3

    failure = _requests_failure(exc)
    reason = getattr(failure.args[0], "reason", None) if failure and failure.args else None
    timeout = os.environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT", "?")
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
    cert = _cert_failure(failure)
    if isinstance(exc, SlowAnswerError):
        what = (
            f"no complete answer within {exc.budget:g} s (the server answered too slowly, "
            "or a byte at a time)"
        )
    elif cert is not None:
        detail = mask_secrets(str(cert.verify_message or cert))[:200]
        what = f"the server's TLS certificate is not trusted ({detail})"
    elif isinstance(failure, requests.exceptions.SSLError):
        what = f"the TLS handshake failed ({mask_secrets(str(reason or failure))[:200]})"
    elif isinstance(reason, u3.NameResolutionError):
        what = "the host name does not resolve"
    elif isinstance(reason, u3.NewConnectionError):  # (a ConnectTimeoutError subclass)
        what = "the connection was refused"
    elif isinstance(failure, requests.exceptions.Timeout) or isinstance(reason, u3.TimeoutError):
        what = f"no answer within {timeout} s"
    elif isinstance(failure, requests.exceptions.RetryError) or isinstance(
        reason, u3.ResponseError
    ):
        what = "the server kept answering with an error (HTTP 429/5xx)"
    elif isinstance(failure, requests.exceptions.ConnectionError):
        what = "the connection was refused or dropped"
    else:
        what = type(failure).__name__
    return f"{what} ({retries} retries)"


@dataclass(frozen=True)
class RetryPolicy:
    """How regops retries a registry call that failed transiently (see `classify`).

    Tune with REGOPS_RETRY_ATTEMPTS (tries in all, 1 = no retry) and REGOPS_RETRY_DELAY
    (seconds before the 2nd try, doubling, capped at `max_delay`). Tests inject one with
    `sleep` replaced rather than patching anything.
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 4.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RetryPolicy:
        env = os.environ if environ is None else environ
        try:
            attempts = int(env.get("REGOPS_RETRY_ATTEMPTS") or cls.attempts)
            delay = float(env.get("REGOPS_RETRY_DELAY") or cls.base_delay)
        except ValueError as exc:
            raise RegistryError(f"REGOPS_RETRY_ATTEMPTS/REGOPS_RETRY_DELAY: {exc}") from None
        return cls(attempts=max(1, attempts), base_delay=max(0.0, delay))

    def run(self, call: Callable[[], T]) -> tuple[T, int]:
        """Run `call`, retrying transient failures; return (result, tries)."""
        import tenacity

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential(
                multiplier=self.base_delay, min=self.base_delay, max=self.max_delay
            ),
            retry=tenacity.retry_if_exception(lambda e: classify(e) == TRANSIENT),
            sleep=self.sleep,
            reraise=True,
        )
        result = retrying(call)
        return result, retrying.statistics.get("attempt_number", 1)


Runner = Callable[[Callable[[], Any]], tuple[Any, int]]


def paged(search: Callable[..., Any], run: Runner, **kwargs: Any) -> list[Any]:
    """Every page of an MLflow search (`search(page_token=..., **kwargs)`), each page retried,
    read by rest_reads.pages: the one paging loop, with its guards (a repeated page token,
    more than max_pages(max_results) pages or MAX_ITEMS items: AnswerError)."""

    def fetch(token: str | None) -> tuple[Any, Any]:  # MLflow's PagedList: a list, and a token
        page, _ = run(functools.partial(search, page_token=token, **kwargs))
        return page, page.token

    what = getattr(search, "__name__", "search")
    return list(rest_reads.pages(fetch, what, int(kwargs.get("max_results") or 1)))


def search_models(searcher: Any, run: Runner | None = None) -> list[Any]:
    """All registered models but prompts, by name (`searcher`: an MlflowClient or a store).

    `run` applies a retry policy to each page (default: `RetryPolicy.from_env()`).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        models = paged(
            searcher.search_registered_models,
            run or RetryPolicy.from_env().run,
            filter_string=None,
            max_results=rest_reads.MODELS_PAGE,
            order_by=["name ASC"],
        )
    return [
        m for m in models if str((m.tags or {}).get(rest_reads.PROMPT_TAG, "")).lower() != "true"
    ]


def search_versions(searcher: Any, names: Iterable[str], run: Runner | None = None) -> list[Any]:
    """Every version of `names`, ordered by name then version number."""
    wanted = sorted(set(names))
    run = run or RetryPolicy.from_env().run
    out: list[Any] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        per_filter = rest_reads.NAMES_PER_FILTER
        for i in range(0, len(wanted), per_filter):
            chunk = wanted[i : i + per_filter]
            out.extend(
                paged(
                    searcher.search_model_versions,
                    run,
                    filter_string=f"name IN ({', '.join(map(quote_name, chunk))})",
                    max_results=STORE_VERSIONS_PAGE,
                    order_by=["name ASC", "version_number ASC"],
                )
            )
    return out


# The schemes MLflow's registry opens (a `+driver` suffix selects a database driver).
SCHEMES = frozenset(
    {"file", "databricks", "databricks-uc", "uc", "http", "https"}
    | {"postgresql", "mysql", "sqlite", "mssql"}
)


def check_uri(uri: str) -> None:
    """Refuse a URI MLflow cannot open, before importing it (no secret in the message)."""
    try:
        urlsplit(uri)
    except ValueError as exc:  # e.g. an unclosed IPv6 bracket: "Invalid IPv6 URL"
        raise RegistryError(
            f"cannot open the MLflow registry at {mask_uri(uri)}: not a URI ({exc}); "
            "check --tracking-uri / MLFLOW_TRACKING_URI"
        ) from None
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower() if ":" in uri else ""
    if ":" in uri and scheme not in SCHEMES and not (len(scheme) == 1 and scheme.isalpha()):
        raise RegistryError(
            f"cannot open the MLflow registry at {mask_uri(uri)}: unknown scheme {scheme!r} "
            "(use http(s)://HOST:PORT, sqlite:///PATH, postgresql://, mysql://, mssql://, "
            "databricks or databricks-uc; check --tracking-uri / MLFLOW_TRACKING_URI)"
        )


def missing_sqlite_file(uri: str) -> Path | None:
    """The database file a `sqlite:///PATH` URI names, when no such file exists.

    Opening it through MLflow would create it (and migrate it): a mistyped path would
    leave a new, empty registry behind. None for other URIs, in-memory databases and
    sqlite URI filenames (`?uri=true`), which regops leaves to sqlite.
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path, _, query = rest.partition("?")
    if not path.startswith("/") or "uri=true" in query.lower():
        return None
    path = path[1:]
    if path in ("", ":memory:"):
        return None
    file = Path(path)
    if file.is_dir():  # sqlite would answer "unable to open", retried as a busy database
        raise RegistryError(
            f"cannot open the MLflow registry at {mask_uri(uri)}: {file} is a directory "
            "(check --tracking-uri / MLFLOW_TRACKING_URI: scheme, host, port, path)"
        )
    if file.exists() or file.is_symlink():
        return None
    blocker = next((p for p in file.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # never a registry, whoever opens it: say so rather than "empty"
        raise RegistryError(
            f"cannot open the MLflow registry at {mask_uri(uri)}: {blocker} is not a directory "
            "(check --tracking-uri / MLFLOW_TRACKING_URI: scheme, host, port, path)"
        )
    return file


def notice(message: str) -> None:
    """One line on stderr about where the registry is (not an error: the command goes on)."""
    print(mask_secrets(message), file=sys.stderr, flush=True)


def open_failure(uri: str, exc: BaseException) -> RegistryError:
    """Why a registry could not be opened, with what to check, and no secret."""
    text = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    if isinstance(exc, ImportError):
        missing = getattr(exc, "name", None) or text
        hint = f"the database driver is not installed ({missing}): pip install it"
    else:
        hint = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return RegistryError(
        f"cannot open the MLflow registry at {mask_uri(uri)}: {hint} "
        "(check --tracking-uri / MLFLOW_TRACKING_URI: scheme, host, port, path)"
    )


class MlflowRegistry:
    """Snapshot and write access to one MLflow model registry.

    Every public call retries per `policy` and turns MLflow's failures into RegistryError
    (writes re-raise MLflow's own error, after retries, so the executor can explain it).

    Read-only unless `create`: a `sqlite:///PATH` whose file does not exist is read as an
    empty registry (with a warning naming the path) and never opened, so nothing is left
    on disk; a write to it is refused. With `create` (commands that write) MLflow creates
    it, and says so.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        policy: RetryPolicy | None = None,
        create: bool = False,
    ) -> None:
        self.uri = registry_uri or tracking_uri
        self.tracking_uri = tracking_uri
        remember_uri_secrets(tracking_uri)
        remember_uri_secrets(self.uri)
        check_uri(self.uri)
        http_defaults()
        # urllib3 logs each retry with the URL; regops says once what failed, masked.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        self.policy = policy or RetryPolicy.from_env()
        self.has_stages = stages_supported(self.uri)
        self.calls = 0  # registry calls made (reads and writes, retries included)
        self._calls_lock = threading.Lock()  # reconcile writes from several threads
        self._open_lock = threading.Lock()
        self._opened: tuple[Any, Any, Any] | None = None  # mlflow, its client, its store
        # REST registries are read as plain JSON (see rest_reads); others through the store.
        self._json_get: rest_http.Get | None = None
        self._pending: tuple[threading.Thread, dict[str, Any]] | None = None  # see prefetch
        # The one place a registry may come into existence (see the class docstring).
        self.missing = missing_sqlite_file(self.uri)
        if self.missing is not None and create:
            notice(f"creating a new registry at {self.missing}: the sqlite file did not exist")
            self.missing = None
        elif self.missing is not None:
            notice(
                f"warning: no registry at {self.missing}: the sqlite file does not exist; "
                "read as an empty registry, and nothing was created (check --tracking-uri / "
                "MLFLOW_TRACKING_URI if one was expected there)"
            )
        self._json_post: rest_http.Post | None = None  # runs/search is served by POST only
        get: rest_http.Get | None = None
        post: rest_http.Post | None = None
        if self.missing is not None:
            pass  # never opened: MLflow would create the file
        elif rest_http.plain_login(self.uri):
            get = rest_http.json_getter(self.uri)  # mlflow is imported at the first write
            if self.tracking_uri == self.uri:
                post = rest_http.json_poster(self.uri)
        elif rest_reads.supports(self._store):  # opens the store now: a bad URI fails here
            get = rest_reads.json_getter(self._store)
            if self.tracking_uri == self.uri:
                post = rest_reads.json_poster(self._store)
        if get is not None:
            read = get

            def json_get(endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
                return self._run(lambda: read(endpoint, params))[0]

            self._json_get = json_get
        if post is not None:
            send = post

            def json_post(endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
                return self._run(lambda: send(endpoint, body))[0]

            self._json_post = json_post

    def _open(self) -> tuple[Any, Any, Any]:
        """mlflow, an MlflowClient and its registry store, made on first use."""
        with self._open_lock:
            if self._opened is None:
                if self.missing is not None:
                    raise RegistryError(
                        f"no registry at {self.missing}: the sqlite file does not exist, and "
                        "this command does not create one (`regops reconcile` does)"
                    )
                try:
                    import mlflow  # deferred: `regops validate` and plain REST reads skip it
                    from mlflow.tracking import MlflowClient

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.uri)
                        # The store makes one REST call per write; see the module docstring.
                        store = client._get_registry_client().store
                except Exception as exc:
                    raise open_failure(self.uri, exc) from None
                self._opened = (mlflow, client, store)
            return self._opened

    @property
    def _mlflow(self) -> Any:
        return self._open()[0]

    @property
    def _client(self) -> Any:
        return self._open()[1]

    @property
    def _store(self) -> Any:
        return self._open()[2]

    @property
    def display_uri(self) -> str:
        return mask_uri(self.uri)

    def _run(self, call: Callable[[], T]) -> tuple[T, int]:
        def counted() -> T:
            with self._calls_lock:
                self.calls += 1
            return call()

        try:
            return self.policy.run(counted)
        except Exception as exc:
            if classify(exc) == UNREACHABLE:
                raise self.unreachable(exc) from None
            raise

    def unreachable(self, exc: BaseException) -> RegistryUnreachable:
        if _cert_failure(exc) is not None:
            hint = (
                "If the server's certificate is signed by your own CA, set "
                "MLFLOW_TRACKING_SERVER_CERT_PATH (or REQUESTS_CA_BUNDLE) to that CA's "
                "bundle (PEM)"
            )
        else:
            hint = (
                "Check that the server is up and the URI (host, port, scheme) is right; "
                "MLFLOW_HTTP_REQUEST_TIMEOUT / MLFLOW_HTTP_REQUEST_MAX_RETRIES allow a slow "
                "server more time"
            )
        return RegistryUnreachable(
            f"cannot reach the MLflow registry at {self.display_uri}: "
            f"{unreachable_reason(exc)}. {hint}"
        )

    # ---- reads ---------------------------------------------------------------------
    def list_model_names(self) -> list[str]:
        if self.missing is not None:
            return []
        return sorted(m.name for m in self._read(lambda: search_models(self._store, self._run)))

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except AnswerError as exc:
            raise AnswerError(
                f"the registry at {self.display_uri} answered what regops cannot read: "
                f"{mask_secrets(str(exc))}"
            ) from None
        except RegistryError:
            raise
        except Exception as exc:
            # MLflow's message may repeat the full URL, credentials included: mask them.
            text = mask_secrets(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
            if len(text) > SHOWN_CHARS:  # a server's error body (cut at 64 KiB when read)
                text = f"{text[:SHOWN_CHARS]} [... {len(text) - SHOWN_CHARS:,} more characters]"
            raise RegistryError(
                f"could not read the registry at {self.display_uri}: {type(exc).__name__}: {text}"
            ) from None

    def prefetch(self, expected: int) -> None:
        """Start the next snapshot's reads now, in the background, for about `expected`
        models whose names are not known yet: the server answers while the caller loads
        the state files. The next `snapshot()` finishes that read (or reports its failure);
        later ones read afresh. REST registries only; a no-op elsewhere."""
        json_get = self._json_get
        if json_get is None or self._pending is not None:
            return
        box: dict[str, Any] = {}

        def read() -> None:
            try:
                box["read"] = rest_reads.prefetch(json_get, expected, has_stages=self.has_stages)
            except BaseException as exc:  # handed to snapshot(), which raises it in order
                box["error"] = exc

        # A daemon: a caller that stops on a bad state file does not wait for the server.
        thread = threading.Thread(target=read, name="regops-prefetch", daemon=True)
        thread.start()
        self._pending = (thread, box)

    def _prefetched(self) -> rest_reads.Prefetched | None:
        if self._pending is None:
            return None
        (thread, box), self._pending = self._pending, None
        thread.join()
        if "error" in box:
            raise box["error"]
        read: rest_reads.Prefetched = box["read"]
        return read

    def snapshot(self, names: Iterable[str] | None = None) -> LiveState:
        """Read the live state of `names` (all models when None) in a constant number of calls."""
        wanted = None if names is None else set(names)
        if self.missing is not None:
            return LiveState(models=MappingProxyType({}), has_stages=self.has_stages)
        if self._json_get is not None:
            json_get = self._json_get
            live = self._read(
                lambda: rest_reads.snapshot(
                    json_get, sorted(wanted) if wanted is not None else None,
                    has_stages=self.has_stages, prefetched=self._prefetched(),
                )
            )  # fmt: skip
            problems = tuple(w for m in live.models.values() for w in tag_problems(m))
            return replace(live, warnings=problems)

        def read() -> tuple[list[Any], list[Any]]:
            models = search_models(self._store, self._run)
            if wanted is not None:
                models = [m for m in models if m.name in wanted]
            versions = search_versions(self._store, [m.name for m in models], self._run)
            aliases = {m.name: self._aliases(m) for m in models}
            return [(m, aliases[m.name]) for m in models], versions

        pairs, versions = self._read(read)
        models = [m for m, _ in pairs]
        alias_of = {m.name: a for m, a in pairs}
        by_model: dict[str, dict[str, LiveVersion]] = {m.name: {} for m in models}

        def build() -> dict[str, LiveModel]:  # checked as the JSON reads are (rest_reads)
            for mv in versions:
                if mv.name in by_model:
                    lv = rest_reads.live_version(
                        mv.name,
                        version=mv.version,
                        stage=mv.current_stage,
                        run_id=mv.run_id,
                        tags=(mv.tags or {}).items(),
                        source=mv.source,
                        created=mv.creation_timestamp,
                        status=getattr(mv, "status", None),
                        has_stages=self.has_stages,
                    )
                    by_model[mv.name][lv.version] = lv
            out = {}
            for m in models:
                fields = rest_reads.live_model_fields(
                    rest_reads.model_name(m.name),
                    m.description,
                    (m.tags or {}).items(),
                    alias_of[m.name].items(),
                )
                out[m.name] = rest_reads.live_model(fields, by_model[m.name])
            return out

        models_ = self._read(build)
        warnings_ = tuple(w for m in models_.values() for w in tag_problems(m))
        return LiveState(
            models=MappingProxyType(models_), has_stages=self.has_stages, warnings=warnings_
        )

    def _aliases(self, model: Any) -> dict[str, Any]:
        if self.uri.startswith("databricks-uc"):
            # Unity Catalog's search omits aliases: one get per managed model.
            model = self._run(lambda: self._store.get_registered_model(model.name))[0]
        return dict(model.aliases or {})

    def run_metrics(
        self, run_ids: Iterable[str], keys: Iterable[str] | None
    ) -> dict[str, dict[str, float]]:
        """The latest value of each of `keys` logged by each of `run_ids` (a run the
        tracking server does not have is absent; so is a metric it did not log).

        Calls: one `search_experiments` page per 1,000 experiments (runs are searched by
        experiment), then one `search_runs` page per RUNS_PER_FILTER runs, by
        `attributes.run_id IN (...)`: a plan that gates on metrics costs 2 calls more for
        up to 100 candidate and incumbent runs, whatever the registry's size. Over REST
        they are read as plain JSON (rest_reads.read_run_metrics): no mlflow import.
        """
        ids = sorted({r for r in run_ids if RUN_ID.fullmatch(r)})  # a hostile id never
        wanted = None if keys is None else frozenset(keys)  # reaches a filter: it is
        # reported as a run not found. keys None: every key (a rule reads version.metrics)
        if not ids or self.missing is not None:
            return {}
        json_post = self._json_post
        if json_post is not None:
            return self._read(lambda: rest_reads.read_run_metrics(json_post, ids, wanted))
        from mlflow.entities import ViewType

        client = self._client

        def read() -> dict[str, dict[str, float]]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                experiments = paged(
                    client.search_experiments,
                    self._run,
                    view_type=ViewType.ALL,
                    max_results=rest_reads.EXPERIMENTS_PAGE,
                )
                exp_ids = [str(e.experiment_id) for e in experiments]
                out: dict[str, dict[str, float]] = {}
                for i in range(0, len(ids), rest_reads.RUNS_PER_FILTER):
                    chunk = ids[i : i + rest_reads.RUNS_PER_FILTER]
                    runs = paged(
                        client.search_runs,
                        self._run,
                        experiment_ids=exp_ids,
                        filter_string=f"attributes.run_id IN ({', '.join(map(quote_name, chunk))})",
                        run_view_type=ViewType.ALL,
                        max_results=rest_reads.RUNS_PAGE,
                    )
                    for run in runs:
                        run_id = str(run.info.run_id)
                        if run_id not in chunk:
                            continue
                        metrics = list(dict(run.data.metrics or {}).items())
                        if wanted is None:
                            metrics = metrics[: rest_reads.MAX_RUN_METRICS]
                        out[run_id] = {
                            k: float(v)
                            for k, v in metrics
                            if (wanted is None or k in wanted) and type(v) in (int, float)
                        }
                return out

        return self._read(read)

    # ---- writes: one call each (plus retries); each returns the tries it took ------------
    def _write(self, call: Callable[[], Any]) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return self._run(call)[1]

    def transition_stage(self, name: str, version: str, stage: str) -> int:
        # Archiving is always an explicit change of its own, never a side effect.
        return self._write(
            lambda: self._store.transition_model_version_stage(
                name, version, stage, archive_existing_versions=False
            )
        )

    def set_alias(self, name: str, alias: str, version: str) -> int:
        return self._write(lambda: self._store.set_registered_model_alias(name, alias, version))

    def delete_alias(self, name: str, alias: str) -> int:
        def delete() -> None:
            try:
                self._store.delete_registered_model_alias(name, alias)
            except Exception as exc:
                # A retried delete whose first attempt landed: the alias is gone, as wanted.
                if getattr(exc, "error_code", "") != "RESOURCE_DOES_NOT_EXIST":
                    raise

        return self._write(delete)

    def update_description(self, name: str, description: str) -> int:
        return self._write(lambda: self._store.update_registered_model(name, description))

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> int:
        from mlflow.entities.model_registry import ModelVersionTag

        tag = ModelVersionTag(key, value)
        return self._write(lambda: self._store.set_model_version_tag(name, version, tag))

    def set_model_tag(self, name: str, key: str, value: str) -> int:
        from mlflow.entities.model_registry import RegisteredModelTag

        tag = RegisteredModelTag(key, value)
        return self._write(lambda: self._store.set_registered_model_tag(name, tag))

    # ---- copies across environments (copying.py): artifacts and new versions ------------
    def model_version(self, name: str, version: str) -> Any:
        """The version as MLflow returns it (source, run id, tags)."""
        return self._run(lambda: self._store.get_model_version(name, version))[0]

    def download_uri(self, name: str, version: str) -> str:
        """Where the version's files are, as this registry answers (what a download reads)."""
        return str(self._run(lambda: self._store.get_model_version_download_uri(name, version))[0])

    def artifact_roots(self) -> list[str]:
        """Where this registry keeps artifacts: its default artifact root (the location of
        the Default experiment, which the server sets and nobody can change, minus its
        `/0`), then the locations of experiments kept in the same store (same scheme and
        host or bucket). Local experiment locations count only under the default root: an
        experiment made with `artifact_location=/` must not widen what may be copied."""
        from mlflow.entities import ViewType

        c = self._client
        default = self._run(lambda: c.get_experiment("0"))[0].artifact_location.rstrip("/")
        root = default.removesuffix("/0") if default.endswith("/0") else default
        roots = [root]
        where = urlsplit(root)
        if where.scheme in ("", "file") or len(where.scheme) == 1:
            return roots
        token: str | None = None

        def search(token: str | None) -> Any:
            return self._run(
                lambda: c.search_experiments(
                    view_type=ViewType.ALL, max_results=1000, page_token=token
                )
            )[0]

        for _ in range(MAX_EXPERIMENT_PAGES):
            page = search(token)
            for exp in page:
                loc = urlsplit(str(exp.artifact_location or ""))
                if (loc.scheme, loc.netloc) == (where.scheme, where.netloc):
                    roots.append(str(exp.artifact_location).rstrip("/"))
            token = page.token
            if not token:
                break
        return sorted(set(roots), key=roots.index)

    def download_version(self, name: str, version: str, dst: Path) -> Path:
        """The version's model files, downloaded from this registry's artifact store."""
        import os

        uri = self.download_uri(name, version)
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm on stderr
        local = self._mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(dst), tracking_uri=self.tracking_uri
        )
        return Path(local)

    def ensure_model(self, name: str) -> None:
        """Create the registered model unless it exists."""
        try:
            self._run(lambda: self._store.create_registered_model(name))
        except Exception as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise

    def upload_model(
        self,
        local: Path,
        *,
        experiment: str,
        key: str,
        run_name: str,
        tags: dict[str, str],
        metrics: Mapping[str, float] | None = None,
    ) -> tuple[str, str]:
        """Log `local` as the artifacts of a run here, with `metrics` (the source run's);
        returns (run id, model source URI).

        A finished run already holding `key` (a copy cut between upload and register)
        is reused rather than uploaded again.
        """
        c = self._client
        exp = c.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp is not None else c.create_experiment(experiment)
        done = c.search_runs(
            [exp_id],
            filter_string=(
                f"tags.`{COPY_KEY_TAG}` = {quote_name(key)} and attributes.status = 'FINISHED'"
            ),
            max_results=1,
        )
        if done:
            return done[0].info.run_id, f"{done[0].info.artifact_uri}/model"
        run = c.create_run(exp_id, tags={**tags, COPY_KEY_TAG: key}, run_name=run_name)
        if metrics:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            c.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
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
        # The source's evidence; never its regops bookkeeping (stamps, held stages).
        own = {k: v for k, v in (src.tags or {}).items() if not k.startswith(AUDIT_PREFIX)}
        all_tags = {**own, **tags}
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


__all__ = ["AUDIT_PREFIX", "MlflowRegistry", "RetryPolicy", "classify", "quote_name"]
