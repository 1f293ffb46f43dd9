"""One exception tree and one table of exit codes; the CLI's single handler
(regops.cli.RegopsGroup.main) maps every outcome to one of these codes."""

from __future__ import annotations

from dataclasses import dataclass

# ---- exit codes: the one table (docs/reference/exit-codes.md and `regops --help` say the same)
EXIT_OK = 0  # success / in sync
EXIT_ERROR = 1  # an error or a blocked gate: nothing, or the reported part, was applied
EXIT_PENDING = 2  # --detailed-exitcode: changes pending from git
EXIT_DRIFT = 3  # --detailed-exitcode: live was changed outside git
EXIT_USAGE = 64  # usage error (click's own 2 is remapped: 2 means pending)
EXIT_INTERNAL = 70  # unexpected internal error (a bug): the traceback is printed
EXIT_INTERRUPTED = 130  # SIGINT (Ctrl-C)
EXIT_TERMINATED = 143  # SIGTERM
EXIT_SIGNAL = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED}


class RegopsError(Exception):
    """Base of every error whose message is meant for the user."""

    exit_code = EXIT_ERROR


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a state file, reported as `FILE:LINE: message`."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class StateError(RegopsError):
    """The desired state is invalid; carries every problem found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


class PlanError(RegopsError):
    """The desired state cannot be planned against this registry (missing model, run id...)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StalePlanError(RegopsError):
    """The live registry moved since the plan was made."""


class RegistryError(RegopsError):
    """A call to the registry failed (after retries where the failure was transient)."""


class UsageError(RegopsError):
    """Bad command-line usage that click itself cannot see."""

    exit_code = EXIT_USAGE


# ---- the errors of each layer (raised there, defined here: one tree) -------------------


# regops.files.fileio
class FileWriteError(RegopsError):
    """A file could not be written; nothing (or what the message says) was written."""


# regops.files.fileio
class FileReadError(RegopsError):
    """A repository file is refused as input; the message says why (not which file)."""


# regops.files.codeowners
class CodeownersError(RegopsError):
    """A CODEOWNERS rule cannot be written exactly (nothing is written)."""


# regops.files.edit
class EditError(RegopsError):
    """The requested edit cannot be made (the files are left as they were)."""


# regops.files.environments
class UnknownEnvironmentError(RegopsError):
    """An environment cannot be used (unknown name, unset variable)."""


# regops.files.snapshot
class SnapshotError(RegopsError):
    """A snapshot file is missing, unreadable or not a regops snapshot."""


# regops.core.jsonio
class JsonInputError(RegopsError):
    """A JSON input (file or registry tag) is not one regops can read."""


# regops.adapters.mlflow.copying
class CopyError(RegopsError):
    """A version could not be copied across environments."""


# regops.adapters.mlflow.rest_reads
class AnswerError(RegistryError):
    """The registry answered something regops cannot use (wrong types, endless pages, ...)."""


# regops.adapters.mlflow.rest_http (the registry's reader turns both into a RegistryError
# naming the registry; they are RegopsErrors so that none can reach the user as a traceback)
class RestError(RegopsError):
    """An error answer, as MLflow's RestException / MlflowException would report it."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


# regops.adapters.mlflow.rest_http
class SlowAnswerError(RegopsError):
    """No complete answer within the call's budget (the server stalled or dripped)."""

    def __init__(self, budget: float) -> None:
        super().__init__(f"no complete answer within {budget:g} s")
        self.budget = budget


# regops.adapters.mlflow.registry
class RegistryUnreachable(RegistryError):
    """The registry did not answer (refused, timed out, kept failing) after MLflow's retries."""


# regops.adapters.gitio
class GitError(RegopsError):
    """git is missing, or a git command failed in a way the caller did not expect."""


# regops.adapters.tracking
class TrackingUriError(RegopsError, ValueError):
    """A tracking URI (or DAGSHUB_REPO) that cannot name a registry."""


# regops.adapters.history_git
class HistoryError(RegopsError):
    """The git history of the state directory cannot be read."""


class InitError(RegopsError):
    """`regops init` cannot scaffold here (not a git repository, files it would overwrite)."""
