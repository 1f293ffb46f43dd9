"""What every command needs to know, gathered from flags and the environment (the CLI
fills it, the API reads it): a layer of its own so that the API needs no click."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from regops.adapters.tracking import DEFAULT_TRACKING_URI, resolve_tracking_uri

if TYPE_CHECKING:
    from regops.files.environments import Config, Environment


@dataclass
class Settings:
    """What every command needs to know, gathered from flags and the environment."""

    tracking_uri_flag: str | None = None
    state_dir: Path = Path("registry-state")
    fmt: str = "text"
    env_name: str | None = None  # --env
    state_dir_given: bool = False
    environment: Environment | None = None  # the chosen one, once resolved
    config: Config | None = None  # regops.yaml, when the repository declares environments
    resolved: bool = False
    registry_name: str | None = None  # what reports call the registry (never its URI)
    # --override RULE --reason TEXT: soft rules (policy.rules) let through, and why
    overrides: tuple[tuple[str, str], ...] = ()

    @property
    def tracking_uri(self) -> str:
        if self.tracking_uri_flag is None and self.environment is not None:
            return self.environment.tracking_uri
        uri = resolve_tracking_uri(self.tracking_uri_flag).uri
        if uri == DEFAULT_TRACKING_URI and _truthy(os.environ.get("REGOPS_REQUIRE_REGISTRY")):
            from regops.errors import RegistryError

            # In CI a missing secret must fail, not plan against an empty local registry.
            raise RegistryError(
                "no registry configured: set MLFLOW_TRACKING_URI (or DAGSHUB_REPO); "
                "REGOPS_REQUIRE_REGISTRY refuses the local default"
            )
        return uri


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}
