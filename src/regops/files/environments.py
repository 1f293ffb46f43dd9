"""`regops.yaml`: the environments of a repository, each one registry and one state directory.

```yaml
apiVersion: regops/v1
environments:
  dev:
    tracking_uri: ${MLFLOW_DEV_TRACKING_URI}   # read from the environment, never written
    state_dir: registry-state/dev
  prod:
    tracking_uri: ${MLFLOW_PROD_TRACKING_URI}
    state_dir: registry-state/prod
    credentials:                               # optional: which variables hold prod's login
      username: ${MLFLOW_PROD_TRACKING_USERNAME}
      password: ${MLFLOW_PROD_TRACKING_PASSWORD}
```

Without the file everything works as before (one registry, `registry-state/`). A
`${VAR}` is resolved when the environment is used, so a missing variable is only
an error for the environment a command works on. Credentials may only be given as
`${VAR}`: a secret must never sit in git. This module is the adapter between the
config, the process environment and MLflow's credential variables; it never
imports mlflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator

from regops.core.state import shown
from regops.errors import Diagnostic, FileReadError, StateError, UnknownEnvironmentError, UsageError
from regops.files import SCHEMAS, fileio, yamlio
from regops.files.credentials import CREDENTIAL_VARS  # MLflow's login; the config names its fillers

CONFIG_NAME = "regops.yaml"
CONFIG_ENV = "REGOPS_CONFIG"  # an explicit path to the config, for scripts and tests
SCHEMA_FILE = SCHEMAS / "regops-config.schema.json"
VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ONLY_VAR = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


@dataclass(frozen=True)
class Environment:
    """One environment: a registry (URI template) and the state directory that governs it."""

    name: str
    tracking_uri_template: str
    state_dir: Path
    credentials: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # credential kind (username|password|token) -> the variable that holds it
    config_file: str = ""
    line: int = 0
    # `suspend:` in regops.yaml: why reconcile refuses this environment (None: it does not)
    suspended: str | None = None

    def suspension(self) -> str | None:
        """`environment prod is suspended (regops.yaml:7): incident 12`, or None."""
        if self.suspended is None:
            return None
        return (
            f"environment {self.name} is suspended ({self.config_file}:{self.line}): "
            f"{shown(self.suspended)}"
        )

    @property
    def tracking_uri(self) -> str:
        """The URI with every `${VAR}` read from the process environment."""
        return expand(self.tracking_uri_template, what=f"environment {self.name}'s tracking_uri")

    def credential_env(self) -> dict[str, str]:
        """MLflow's credential variables (MLFLOW_TRACKING_*) filled from the named variables."""
        out = {}
        for kind, var in self.credentials.items():
            value = os.environ.get(var)
            if not value:
                raise UnknownEnvironmentError(
                    f"environment {self.name}: ${{{var}}} ({kind}) is not set; "
                    f"{self.config_file} names it as {self.name}'s {kind}"
                )
            out[CREDENTIAL_VARS[kind]] = value
        return out

    def describe_credentials(self) -> str:
        """Where this environment's login comes from (variable names only, never values)."""
        if not self.credentials:
            return "the ambient MLFLOW_TRACKING_* variables"
        return ", ".join(f"${v}" for v in self.credentials.values())


@dataclass(frozen=True)
class NotifyTarget:
    """One `notify:` entry: a receiver, its format, its signing key's variable, its events."""

    url_template: str
    format: str  # slack | json
    on: tuple[str, ...]
    secret_var: str | None = None
    line: int = 0

    @property
    def url(self) -> str:
        return expand(self.url_template, what=f"notify entry (line {self.line})'s url")

    @property
    def secret(self) -> str | None:
        if self.secret_var is None:
            return None
        return expand(f"${{{self.secret_var}}}", what=f"notify entry (line {self.line})'s secret")


@dataclass(frozen=True)
class Config:
    """The declared environments, in file order, and the notification receivers."""

    environments: Mapping[str, Environment]
    file: str = ""
    notify: tuple[NotifyTarget, ...] = ()

    def get(self, name: str) -> Environment:
        env = self.environments.get(name)
        if env is None:
            known = ", ".join(self.environments) or "none"
            raise UsageError(f"no environment {name!r} in {self.file} (declared: {known})")
        return env

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.environments)


def expand(template: str, *, what: str) -> str:
    """Replace each `${VAR}` by its value; an unset or empty variable is an error."""

    def sub(m: re.Match[str]) -> str:
        value = os.environ.get(m.group(1))
        if not value:
            raise UnknownEnvironmentError(f"{what} needs ${{{m.group(1)}}}, which is not set")
        return value

    return VAR.sub(sub, template)


def find_config(start: Path | None = None) -> Path | None:
    """$REGOPS_CONFIG, else `regops.yaml` here or in a parent, up to the repository root."""
    explicit = os.environ.get(CONFIG_ENV, "").strip()
    if explicit:
        path = Path(explicit)
        if not os.path.lexists(path):
            raise UsageError(f"{CONFIG_ENV}={explicit}: no such file")
        return path
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        candidate = d / CONFIG_NAME
        # Whatever it is: a FIFO, a directory or a symlink out of the repository named
        # regops.yaml is refused by load_config, not silently skipped.
        if os.path.lexists(candidate):
            return candidate
        if (d / ".git").exists():
            return None  # the repository root: environments are declared there or nowhere
    return None


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def load_config(path: Path) -> Config:
    """Read and validate `regops.yaml`; every problem at once, as FILE:LINE."""
    from regops.files.loader import MAX_FILE_BYTES, PATH_PART, display_path

    name = shown(display_path(path))
    try:  # the state files' guards: no symlink out of the repository, FIFO or huge file
        raw = fileio.read_guarded(
            path, root=fileio.repository_root(path.parent), max_bytes=MAX_FILE_BYTES
        )
        text = raw.decode("utf-8")
    except FileReadError as exc:
        raise StateError([Diagnostic(name, 1, str(exc))]) from exc
    except UnicodeDecodeError as exc:
        raise StateError([Diagnostic(name, 1, f"not UTF-8 text: {exc.reason}")]) from exc
    # The one YAML reader: keys as written, no aliases, a bad value is a problem at its line.
    doc = yamlio.read(text, what="regops.yaml")
    if doc.problems:
        raise StateError([Diagnostic(name, line, message) for line, message in doc.problems])
    data = doc.data

    def line_of(p: tuple[Any, ...]) -> int:
        return doc.line_of(tuple(p))

    diags = [
        Diagnostic(name, line_of(tuple(e.absolute_path)), _message(e))
        for e in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path)))
    ]
    if diags:
        raise StateError(diags)
    base = path.resolve().parent
    envs: dict[str, Environment] = {}
    seen_dirs: dict[Path, str] = {}
    for env_name, raw in (data.get("environments") or {}).items():
        state_dir = base / raw["state_dir"]
        where = line_of(("environments", env_name))
        parts = Path(raw["state_dir"]).parts
        if Path(raw["state_dir"]).is_absolute() or not all(map(PATH_PART.fullmatch, parts)):
            # The state directory's path goes into CODEOWNERS patterns, and must stay in
            # the repository: relative, each part a plain name (no `..`, no glob).
            diags.append(
                Diagnostic(
                    name,
                    line_of(("environments", env_name, "state_dir")),
                    f"environment {env_name}: state_dir {ascii(raw['state_dir'])} must be a "
                    "relative path inside the repository, each part made of ASCII letters, "
                    "digits, '.', '_' and '-' (starting with a letter or digit)",
                )
            )
            continue
        if state_dir in seen_dirs:
            diags.append(
                Diagnostic(
                    name,
                    line_of(("environments", env_name, "state_dir")),
                    f"environment {env_name} shares state_dir {raw['state_dir']} with "
                    f"{seen_dirs[state_dir]}: each environment needs its own",
                )
            )
        seen_dirs[state_dir] = env_name
        creds = {}
        for kind, value in (raw.get("credentials") or {}).items():
            m = ONLY_VAR.match(value)
            assert m is not None  # the schema allows only ${VAR}
            creds[kind] = m.group(1)
        envs[env_name] = Environment(
            name=env_name,
            tracking_uri_template=raw["tracking_uri"],
            state_dir=_relative(state_dir),
            credentials=MappingProxyType(creds),
            config_file=name,
            line=where,
            suspended=_suspension(raw.get("suspend")),
        )
    notify = []
    for i, raw in enumerate(data.get("notify") or []):
        secret = raw.get("secret")
        m = ONLY_VAR.match(secret) if secret is not None else None
        notify.append(
            NotifyTarget(
                url_template=raw["url"],
                format=raw["format"],
                on=tuple(raw["on"]),
                secret_var=m.group(1) if m else None,
                line=line_of(("notify", i)),
            )
        )
    if diags:
        raise StateError(diags)
    return Config(MappingProxyType(envs), file=name, notify=tuple(notify))


def _suspension(value: Any) -> str | None:
    """`suspend: true` or `suspend: "the reason"` as the reason; None when not suspended."""
    if value is True:
        return "no reason given"
    return value if isinstance(value, str) else None


def _relative(path: Path) -> Path:
    try:
        return path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _message(e: Any) -> str:
    where = ".".join(str(p) for p in e.absolute_path) or "the top level"
    if e.validator == "additionalProperties":
        allowed = ", ".join(sorted(e.schema.get("properties", {})))
        return f"{where}: {e.message} (expected: {allowed})"
    if e.validator == "pattern" and "credentials" in map(str, e.absolute_path):
        return (
            f"{where}: credentials must name a variable as ${{VAR}} (a secret never goes into git)"
        )
    if e.validator == "pattern" and "secret" in map(str, e.absolute_path):
        return f"{where}: a notify secret must name a variable as ${{VAR}} (never the value)"
    if e.absolute_path and e.absolute_path[-1] == "suspend":
        return f"{where}: must be true, false or the reason as text (at most 500 characters)"
    if "propertyNames" in e.relative_schema_path:
        return f"{where}: environment name {e.instance!r} must be letters, digits, '_' or '-'"
    return f"{where}: {e.message}"


def load(start: Path | None = None) -> Config | None:
    """The repository's environments, or None when it declares none (a regops.yaml may
    hold only `notify:`)."""
    path = find_config(start)
    config = None if path is None else load_config(path)
    return config if config is not None and config.environments else None


def load_notify(start: Path | None = None) -> tuple[NotifyTarget, ...]:
    """The `notify:` receivers of regops.yaml (none without the file)."""
    path = find_config(start)
    return () if path is None else load_config(path).notify


# The logins in force before each active `credentials_of` block: the first is the
# process's own, which an environment that names no credentials uses.
_SAVED: list[dict[str, str | None]] = []


def _current_login() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in CREDENTIAL_VARS.values()}


def _set_login(values: Mapping[str, str | None]) -> None:
    for var in CREDENTIAL_VARS.values():
        value = values.get(var)
        if value is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = value


@contextlib.contextmanager
def credentials_of(env: Environment | None) -> Iterator[None]:
    """Run a block with `env`'s login in MLflow's credential variables, then restore them.

    An environment that names no credentials uses the login the process started with
    (not the one of an enclosing block for another environment).
    """
    if env is None:
        yield
        return
    saved = _current_login()
    wanted = dict(env.credential_env()) if env.credentials else dict((_SAVED or [saved])[0])
    _SAVED.append(saved)
    try:
        _set_login(wanted)
        yield
    finally:
        _SAVED.pop()
        _set_login(saved)
