"""noxfile.py: the core tests it names exist, and a name that does not fails the session."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from tests.support.paths import ROOT


def _noxfile() -> ModuleType:
    spec = importlib.util.spec_from_file_location("noxfile", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Quit(Exception):
    pass


class _Session:
    """What the session touches before its first install: `error` (nox's quits the session)."""

    def error(self, message: str) -> None:
        raise _Quit(message)

    def install(self, *args: str) -> None:
        raise AssertionError("installed before checking CORE_TESTS")


def test_every_core_test_named_by_the_noxfile_exists() -> None:
    noxfile = _noxfile()
    assert noxfile.CORE_TESTS
    assert noxfile.missing_tests(noxfile.CORE_TESTS) == []
    assert all(p.startswith(("tests/unit/", "tests/registry/")) for p in noxfile.CORE_TESTS)


def test_a_missing_core_test_fails_the_session_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    noxfile = _noxfile()
    real = noxfile.CORE_TESTS[0]
    gone = ("tests/regops/test_loader.py", "tests/unit/regops/core/test_renamed.py")
    monkeypatch.setattr(noxfile, "CORE_TESTS", (real, *gone))
    assert noxfile.missing_tests(noxfile.CORE_TESTS) == list(gone)
    with pytest.raises(_Quit) as quit_:
        noxfile.core(_Session())
    assert str(quit_.value) == (
        "noxfile.py CORE_TESTS names test files that do not exist: " + ", ".join(gone)
    )
