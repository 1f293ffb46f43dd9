"""The loader's fast paths never accept what the reference path refuses.

Plain version entries skip jsonschema (loader._plain_version) and files are parsed by
libyaml first (yamlio._FastLoader): both must agree with the schema and with PyYAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from regops.files import loader, yamlio

ENTRIES: list[tuple[Any, Any]] = [
    ("1", {}),
    ("7", {"stage": "Production", "aliases": ["champion", "a-b_c"], "run_id": "abc_DEF-1"}),
    ("10", {"stage": "None"}),
    ("2", {"stage": "production"}),
    ("2", {"stage": True}),
    ("2", {"stage": None}),
    ("2", {"aliases": "champion"}),
    ("2", {"aliases": ["two words"]}),
    ("2", {"aliases": [""]}),
    ("2", {"aliases": ["x" * 256]}),
    ("2", {"aliases": [1]}),
    ("2", {"run_id": "abc\n"}),
    ("2", {"run_id": "x" * 65}),
    ("2", {"run_id": ""}),
    ("2", {"run_id": 123}),
    ("2", {"tags": {}}),
    ("2", None),
    ("2", []),
    ("02", {}),
    ("0", {}),
    ("12345678901", {}),
    ("dev@7", {"stage": "Staging"}),
    ("1\n", {}),
]


def schema_errors(key: Any, spec: Any) -> list[str]:
    doc = {"apiVersion": "regops/v1", "models": {"M": {"versions": {key: spec}}}}
    return [e.message for e in loader._validator().iter_errors(doc)]


@pytest.mark.parametrize(("key", "spec"), ENTRIES, ids=[repr(e)[:40] for e in ENTRIES])
def test_plain_version_only_when_the_schema_agrees(key: Any, spec: Any) -> None:
    if loader._plain_version(key, spec):
        assert schema_errors(key, spec) == []


def test_plain_versions_cover_the_usual_entries() -> None:
    assert loader._plain_version("3", {"stage": "Staging", "aliases": ["challenger"]})
    assert loader._plain_version("12", {"stage": "Archived", "run_id": "3f2a9c"})


FILES = [
    'apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      "1": {stage: Production}\n',
    "apiVersion: regops/v1\nmodels:\n  M:\n    versions:\n      1: {stage: Staging}\n",
    "apiVersion: regops/v1\nmodels: {M: {versions: {'2': {aliases: [a, b]}}}}\n",
    "\ufeffapiVersion: regops/v1\nmodels:\n  M: {versions: {}}\n",
    "apiVersion: regops/v1\nmodels:\n  M:\n    description: |\n      two\n      lines\n"
    "    versions: {}\n",
    "apiVersion: regops/v1\nmodels:\n  M: {versions: {}, suspend: yes}\n",
    "apiVersion: regops/v1\nmodels:\n  M: {versions: {}, description: 0x1F}\n",
]


@pytest.mark.parametrize("text", FILES)
def test_libyaml_and_python_loaders_agree(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert yamlio._FastLoader is not None  # PyYAML's wheels ship libyaml
    fast = loader._File("f.yaml", text)
    monkeypatch.setattr(yamlio, "_FastLoader", None)
    slow = loader._File("f.yaml", text)
    assert (fast.data, fast.lines, fast.diags, fast.parsed) == (
        slow.data,
        slow.lines,
        slow.diags,
        slow.parsed,
    )
