"""One exception tree; the CLI's single handler maps it to exit codes."""

from __future__ import annotations

from dataclasses import dataclass


class RegopsError(Exception):
    """Base of every error whose message is meant for the user."""

    exit_code = 1


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

    exit_code = 64
