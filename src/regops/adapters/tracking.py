"""Which MLflow registry to talk to, and how to show it without its credentials.

The one adapter for tracking URIs and credentials, used by both `regops` and `accident`:

- `resolve_tracking_uri`: `--tracking-uri` > MLFLOW_TRACKING_URI > DAGSHUB_REPO
  (https://dagshub.com/OWNER/REPO.mlflow) > the config file > `sqlite:///mlflow.db`.
- `mask_uri` / `mask_secrets`: every text regops prints, writes to a file, a tag or a
  PR body goes through `mask_secrets` first. It hides URI userinfo (a password may
  contain `@`), credential-like query parameters (`?token=...`), and the value of any
  secret variable (`known_secrets`: MLFLOW_TRACKING_PASSWORD, ..._TOKEN, the list and its
  name-pattern complement in files.credentials) and of any password seen in a URI, raw
  or percent-encoded, wherever it appears.
- Redaction, one way: `mask_values` masks given strings in one pass linear in the text
  (what mask_secrets ends with); reports mask `report_secrets` (every URI whole, its host
  and login, the credential variables' values) with it.
- `http_defaults`: MLflow's HTTP client retries for minutes by default. Unless the user
  set them, regops caps it so an unreachable registry fails in well under 30 s.

No network and no mlflow import here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from regops.errors import TrackingUriError
from regops.files.credentials import is_secret_var

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MASK = "***"

# MLflow's own HTTP client settings, read by MLflow at every request. Defaults chosen so a
# refused port fails in ~1 s and a port that never answers in 2 x 7 s + 1 s backoff: with
# the process's start (importing mlflow: 2-8 s on a busy 2-CPU runner) well under 30 s.
# (3 tries took 26-32 s there: bench/bench_failfast.py.) 7 s: the server builds a
# 10,000-version search page before its first byte; a shorter read timeout cuts those.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "7",
}

_DAGSHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
# scheme://USERINFO@host: the userinfo runs to the last '@' before the path, query or fragment.
# A scheme is matched only where no scheme character precedes it: a long run of letters is
# tried from its first letter only (scanned forth and back once), not once per letter, so
# masking stays linear in its input. (No possessive `*+`: the core runs on Python 3.10.)
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])(?P<scheme>[A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@")
# A query parameter's key (`?`, `&`, `;` or `#` up to `=`); its value is masked when the key
# names a credential. The key holds no `?`, so each character is scanned from one start only.
_PARAM_KEY = re.compile(r"[?&;#](?P<key>[^=&;#?\s]*)=")
_CREDENTIAL_KEY = re.compile(
    r"token|password|passwd|pwd|secret|signature|sig|key|credential|auth|session", re.IGNORECASE
)
_PARAM_VALUE = re.compile(r"[^&;#\s'\"]+")
MIN_SECRET_CHARS = 4  # shorter values would mask ordinary words; nobody's password is "abc"
_seen_secrets: set[str] = set()


@dataclass(frozen=True)
class TrackingTarget:
    """The tracking URI in use and where it came from (for the user to see)."""

    uri: str
    source: str  # "--tracking-uri" | "MLFLOW_TRACKING_URI" | "DAGSHUB_REPO" | "config" | "default"

    def describe(self) -> str:
        return f"{mask_uri(self.uri)} (from {self.source})"


def dagshub_uri(repo: str) -> str:
    """`OWNER/REPO` -> `https://dagshub.com/OWNER/REPO.mlflow`."""
    repo = repo.strip().strip("/")
    if not _DAGSHUB_REPO.match(repo):
        raise TrackingUriError(f"DAGSHUB_REPO must look like OWNER/REPO, got {repo!r}")
    return f"https://dagshub.com/{repo}.mlflow"


def resolve_tracking_uri(
    flag: str | None = None,
    config_uri: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> TrackingTarget:
    """Pick the tracking URI by the documented precedence; empty values count as unset."""
    env = os.environ if environ is None else environ
    if flag and flag.strip():
        target = TrackingTarget(flag.strip(), "--tracking-uri")
    elif env.get("MLFLOW_TRACKING_URI", "").strip():
        target = TrackingTarget(env["MLFLOW_TRACKING_URI"].strip(), "MLFLOW_TRACKING_URI")
    elif env.get("DAGSHUB_REPO", "").strip():
        target = TrackingTarget(dagshub_uri(env["DAGSHUB_REPO"]), "DAGSHUB_REPO")
    elif config_uri and config_uri.strip():
        target = TrackingTarget(config_uri.strip(), "config")
    else:
        target = TrackingTarget(DEFAULT_TRACKING_URI, "default")
    remember_uri_secrets(target.uri)
    return target


def remember_uri_secrets(uri: str) -> None:
    """Note the password (and query secrets) of a URI so `mask_secrets` hides them anywhere."""
    for m in _USERINFO.finditer(uri):
        _, _, password = m.group("userinfo").partition(":")
        _remember(password)
    # A password with an unencoded '/', '?' or '#' defeats URI parsing: take everything
    # between the first ':' after the scheme and the last '@' as a secret too.
    _, sep, rest = uri.partition("://")
    if sep and "@" in rest:
        _, colon, password = rest[: rest.rfind("@")].partition(":")
        if colon:
            _remember(password)
    for _start, value in _credential_params(uri):
        _remember(uri[value.start() : value.end()])


def _remember(secret: str) -> None:
    for form in (secret, unquote(secret)):
        if len(form) >= MIN_SECRET_CHARS:
            _seen_secrets.add(form)


def known_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values worth hiding in any text: those of the credential variables (the login's
    password and token, and any variable whose name looks secret: files.credentials) and
    the passwords seen in URIs."""
    env = os.environ if environ is None else environ
    found = {v for k, v in env.items() if is_secret_var(k) and len(v) >= MIN_SECRET_CHARS}
    return found | _seen_secrets


def report_secrets(uris: Iterable[str | None], others: Iterable[str | None]) -> list[str]:
    """The strings a report (a pull-request comment, an issue, a summary) must never show:
    each URI whole, its host and its login; the values `others` (credential variables'),
    longest first. A report is masked with them by `mask_values`."""
    out: set[str] = set()
    for uri in uris:
        if not uri or uri.startswith(("sqlite:", "file:")) or "://" not in uri:
            continue
        out.add(uri)
        out.add(uri.split("://", 1)[1])
        parts = urlsplit(uri)
        for piece in (parts.netloc, parts.hostname, parts.username, parts.password):
            if piece:
                out.add(piece)
    out.update(v for v in others if v)
    # Longest first, so a URI is replaced whole before its host is.
    return sorted((s for s in out if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


def mask_uri(uri: str) -> str:
    """`https://user:p@ss@host/x?token=t` -> `https://***@host/x?token=***`."""
    return mask_secrets(uri)


def mask_secrets(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with URI userinfo, credential query parameters and known secret values masked.

    Linear in the length of `text` (a server's error body is untrusted: see mask_values).
    """
    text = _USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _mask_params(text)
    forms = {
        form
        for secret in known_secrets(environ)
        for form in (secret, quote(secret, safe=""), quote(secret))
    }
    return mask_values(text, forms)


def _credential_params(text: str) -> Iterator[tuple[int, re.Match[str]]]:
    """(where its key starts, its value) for each query parameter naming a credential."""
    end = 0
    for key in _PARAM_KEY.finditer(text):
        if key.start() < end or not _CREDENTIAL_KEY.search(key.group("key")):
            continue  # inside a value already masked, or not a credential
        value = _PARAM_VALUE.match(text, key.end())
        if value is not None:
            end = value.end()
            yield key.start(), value


def _mask_params(text: str) -> str:
    out, pos = [], 0
    for _start, value in _credential_params(text):
        out += [text[pos : value.start()], MASK]
        pos = value.end()
    out.append(text[pos:])
    return "".join(out)


@lru_cache(maxsize=32)
def _any_of(secrets: frozenset[str]) -> re.Pattern[str]:
    """At each position, the longest secret starting there (a zero-width lookahead, so
    overlapping occurrences are all seen)."""
    ordered = sorted(secrets, key=lambda x: (-len(x), x))
    return re.compile("(?=(" + "|".join(map(re.escape, ordered)) + "))")


def mask_values(text: str, secrets: Iterable[str], mask: str = MASK) -> str:
    """`text` with every character of every occurrence of each secret replaced: the union
    of all occurrences (overlapping, nested, adjacent) becomes one `mask` per stretch.

    One pass: the time is linear in `text` (times the secrets' total length, a constant
    of the process), where replacing secret after secret was quadratic on hostile text.
    Only a secret that itself contains `mask` could reappear across a mask: then nothing
    of `text` is shown.
    """
    wanted = frozenset(s for s in secrets if s)
    if not wanted or not text:
        return text
    pattern = _any_of(wanted)
    out: list[str] = []
    pos = start = end = 0  # [start, end): the stretch being masked; pos: copied up to
    for m in pattern.finditer(text):
        s, e = m.start(), m.start() + len(m.group(1))
        if s > end:  # a gap: close the previous stretch
            if end > start:
                out += [text[pos:start], mask]
                pos = end
            start = s
        end = max(end, e)
    if end > start:
        out += [text[pos:start], mask]
        pos = end
    out.append(text[pos:])
    masked = "".join(out)
    if any(mask in s for s in wanted) and pattern.search(masked):
        return mask
    return masked


def http_defaults(
    environ: MutableMapping[str, str] | None = None,
    defaults: Mapping[str, str] = HTTP_DEFAULTS,
) -> dict[str, str]:
    """Cap MLflow's HTTP retries and timeout unless the user set them; return what was set."""
    env = os.environ if environ is None else environ
    added = {k: v for k, v in defaults.items() if not env.get(k, "").strip()}
    env.update(added)
    return added


def stages_supported(uri: str) -> bool:
    """Unity Catalog registries have aliases but no stages."""
    return not uri.startswith("databricks-uc")
