"""Facts about a registry that follow from its URI alone (no network, no mlflow import)."""

from __future__ import annotations


def stages_supported(uri: str) -> bool:
    """Unity Catalog registries have aliases but no stages."""
    return not uri.startswith("databricks-uc")
