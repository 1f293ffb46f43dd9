"""Fixtures of the accident workload tests (append new fixtures; do not replace these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.accident import Registry, Template, build_template, copy_registry


@pytest.fixture(scope="session")
def serving_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """LR + XGBoost trained by `train` (small), plus weak and broken versions; built once."""
    return build_template(tmp_path_factory.mktemp("serving-registry"))


@pytest.fixture
def serving_registry(serving_template: Template, tmp_path: Path) -> Registry:
    """This test's own copy of the trained registry, and a config pointing at it."""
    return copy_registry(serving_template, tmp_path)
