"""The lineage tag: where a copied version came from, as regops recorded it on the copy.
Pure.

`reconcile` writes it in the same call that creates a copy (`core.promotion` finds copies
by it); `core.live` reports one it cannot read, and `core.rules` shows it to a rule as
`version.source_env`. Anyone who can write the registry writes tags: it is parsed as
hostile input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from regops.core import jsonio
from regops.errors import JsonInputError

LINEAGE_TAG = "regops.copied_from"


@dataclass(frozen=True)
class Lineage:
    """Where a copied version came from, as recorded on it (one JSON tag)."""

    env: str
    model: str
    version: str
    run_id: str | None = None
    commit: str | None = None

    def to_tag(self) -> str:
        return json.dumps(
            {
                "env": self.env,
                "model": self.model,
                "version": self.version,
                "run_id": self.run_id,
                "commit": self.commit,
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, raw: str | None) -> Lineage | None:
        """The lineage in the tag's text; None when it is not one regops wrote."""
        return cls.parse_checked(raw)[0] if raw else None

    @classmethod
    def parse_checked(cls, raw: str) -> tuple[Lineage | None, str]:
        """The lineage, or None and why not: anyone who can write the registry writes tags."""
        try:
            d = jsonio.parse_tag(raw)
        except JsonInputError as exc:
            return None, str(exc)
        if not isinstance(d, dict):
            return None, "not a JSON object"
        env, model, version = d.get("env"), d.get("model"), d.get("version")
        run_id, commit = d.get("run_id"), d.get("commit")
        if not (isinstance(env, str) and isinstance(model, str) and isinstance(version, str)):
            return None, "env, model and version must be strings"
        if not (env and model and version):
            return None, "env, model and version must not be empty"
        if not all(x is None or isinstance(x, str) for x in (run_id, commit)):
            return None, "run_id and commit must be strings or null"
        return cls(env, model, version, run_id, commit), ""
