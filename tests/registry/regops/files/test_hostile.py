"""Hostile and malformed state files: each rejected with FILE:LINE, in bounded time and
memory, with nothing written to the registry.

The committed corpus is tests/fixtures/hostile/ (one problem per file); big or
machine-specific inputs (over 1 MiB, deep nesting, /proc symlinks) are made here.
Every input runs through `regops validate` (no network) and `regops plan` against a
real sqlite registry whose file must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from regops.cli import cli
from regops.files.loader import MAX_DEPTH, MAX_FILE_BYTES
from tests.support.paths import FIXTURES
from tests.support.servers import make_registry

HOSTILE = FIXTURES / "hostile"
TIME_LIMIT_S = 20  # generous: every committed input takes well under a second
SLOW_TIME_LIMIT_S = 120  # a valid-looking 1 MiB file: pure-Python PyYAML needs ~10 s for it
MEMORY_LIMIT_BYTES = 64 << 20  # peak Python allocations of one in-process command
MEMORY_CAP_BYTES = 1 << 30  # address space of one `regops validate` process
API = "apiVersion: regops/v1\n"

# file -> "LINE: start of the message". Each file carries one problem (a few carry more).
EXPECTED = {
    # YAML bombs: an alias is refused where it first appears; nothing is ever expanded
    "bomb_billion_laughs.yaml": "3: YAML error: YAML aliases (*name) are not allowed",
    "bomb_merge_key.yaml": "7: YAML error: YAML aliases (*name) are not allowed",
    "bomb_alias_as_key.yaml": "5: YAML error: YAML aliases (*name) are not allowed",
    "bomb_quadratic.yaml": "5: YAML error: YAML aliases (*name) are not allowed",
    # unicode look-alikes and invisible characters: names, aliases and keys are ASCII
    "unicode_zero_width_model.yaml": "3: model name 'Fraud\\u200b' is not allowed",
    "unicode_homoglyph_model.yaml": "3: model name 'Fr\\u0430ud' is not allowed: use ASCII",
    "unicode_rtl_override_model.yaml": "3: model name '\\u202educarF' is not allowed",
    "unicode_zero_width_alias.yaml": "5: alias 'champ\\u200bion' has characters that are not",
    "unicode_homoglyph_stage.yaml": "5: models.Fraud.versions.1.stage: 'Producti\\u043en' is not a",
    "unicode_fullwidth_version.yaml": "5: version key '\\uff11' must be a version number",
    "unicode_arabic_indic_version.yaml": "5: version key '\\u0661' must be a version number",
    "unicode_superscript_version.yaml": "5: version key '\\xb2' must be a version number",
    "unicode_nbsp_key.yaml": "1: unknown key 'apiVersion\\xa0' at the top level",
    "unicode_zero_width_api_version.yaml": "1: apiVersion must be 'regops/v1', not "
    "'regops/v1\\u200b'",
    # characters that display differently from what is read (git's line numbers)
    "display_line_separator_in_comment.yaml": "5: character U+2028 LINE SEPARATOR",
    "display_paragraph_separator.yaml": "5: character U+2029 PARAGRAPH SEPARATOR",
    "display_next_line.yaml": "5: character U+0085 NEXT LINE",
    "display_bidi_in_comment.yaml": "5: character U+202E RIGHT-TO-LEFT OVERRIDE (bidi control",
    "display_zero_width_in_comment.yaml": "5: character U+200B ZERO WIDTH SPACE at column 36",
    "display_bom_inside.yaml": "5: character U+FEFF ZERO WIDTH NO-BREAK SPACE",
    # duplicate keys, also "2" against 2
    "dup_top_level.yaml": "3: duplicate key 'models' in the top level (first at line 2)",
    "dup_model.yaml": "4: duplicate key 'Fraud' in models (first at line 3)",
    "dup_version_quoted_and_plain.yaml": "6: duplicate key '2' in models.Fraud.versions",
    "dup_stage_key.yaml": "5: duplicate key 'stage' in models.Fraud.versions.1",
    # wrong types
    "types_api_version_int.yaml": "1: apiVersion must be 'regops/v1', not 1",
    "types_top_level_list.yaml": "1: expected a mapping with apiVersion and models",
    "types_top_level_scalar.yaml": "1: expected a mapping with apiVersion and models",
    "types_models_list.yaml": "2: models: expected object, got list",
    "types_versions_list.yaml": "4: models.Fraud.versions: expected object, got list",
    "types_stage_bool.yaml": "5: models.Fraud.versions.1.stage: False is not a stage",
    "types_stage_null.yaml": "5: models.Fraud.versions.1.stage: None is not a stage",
    "types_aliases_string.yaml": "5: models.Fraud.versions.1.aliases: expected array, got str",
    "types_alias_int.yaml": "5: models.Fraud.versions.1.aliases.0: expected string, got int 1",
    "types_run_id_date.yaml": "5: models.Fraud.versions.1.run_id: expected string, got date",
    "types_suspend_string.yaml": "4: models.Fraud.suspend: expected boolean, got str 'yes'",
    "types_description_list.yaml": "4: models.Fraud.description: expected string, got list",
    "types_policy_list.yaml": "2: policy: expected object, got list",
    "types_max_versions.yaml": "7: policy.stages.None.max_versions: expected integer, got bool",
    "types_max_versions_float.yaml": "5: policy.stages.Production.max_versions: expected integer, "
    "got float 1.0",
    # values YAML cannot construct: a problem at their line, never a crash
    "types_run_id_invalid_date.yaml": "5: '2024-13-45' is not a valid timestamp",
    "yaml_int_tag_not_a_number.yaml": "5: 'abc' is not a valid int",
    "types_require_from_string.yaml": "4: policy.stages.Production.require_from: expected array",
    "types_require_tags_int.yaml": "4: policy.stages.Production.require_tags.validation_status: "
    "expected string, got int 1",
    "types_everywhere.yaml": "14: models.Fraud.versions.3: expected object, got str 'Staging'",
    # reserved and malformed aliases
    "alias_latest.yaml": "5: alias 'latest' is reserved by MLflow",
    "alias_latest_upper.yaml": "5: alias 'LATEST' is reserved by MLflow",
    "alias_v1.yaml": "5: alias 'v1' is reserved by MLflow",
    "alias_v_upper.yaml": "5: alias 'V12' is reserved by MLflow",
    "alias_slash.yaml": "5: alias 'team/champion' has characters that are not allowed",
    "alias_space.yaml": "5: alias 'my champion' has characters that are not allowed",
    "alias_empty.yaml": "5: alias '' has characters that are not allowed",
    "alias_too_long.yaml": "5: alias 'aaaaaaaa",
    # Python's `$` also matches before a final newline: the schema's patterns refuse it
    "alias_trailing_newline.yaml": "5: alias 'champ\\n' has characters that are not allowed",
    "model_trailing_newline.yaml": "3: model name 'Fraud\\n' is not allowed",
    # version keys that are not version numbers (YAML would read several as numbers)
    "version_leading_zero.yaml": "5: version key '01' must be a version number",
    "version_negative.yaml": "5: version key '-1' must be a version number",
    "version_negative_plain.yaml": "5: version key '-1' must be a version number",
    "version_float.yaml": "5: version key '1.0' must be a version number",
    "version_float_plain.yaml": "5: version key '1.0' must be a version number",
    "version_zero.yaml": "5: version key '0' must be a version number",
    "version_exponent.yaml": "5: version key '1e3' must be a version number",
    "version_hex.yaml": "5: version key '0x1' must be a version number",
    "version_octal.yaml": "5: version key '0o7' must be a version number",
    "version_underscore.yaml": "5: version key '1_000' must be a version number",
    "version_eleven_digits.yaml": "5: version key '99999999999' must be a version number",
    "version_null.yaml": "5: version key '~' must be a version number",
    "version_space.yaml": "5: version key ' 1' must be a version number",
    "version_complex_key.yaml": "5: mapping keys must be plain scalars",
    # YAML features a state file has no use for
    "yaml_python_object.yaml": "2: YAML tag !!python/object/apply:os.system is not allowed",
    "yaml_set_tag.yaml": "5: YAML tag !!set is not allowed in state files",
    "yaml_custom_tag.yaml": "2: YAML tag !include is not allowed in state files",
    "yaml_binary_tag.yaml": "5: models.Fraud.versions.1.run_id: expected string, got bytes",
    "yaml_multi_document.yaml": "3: YAML error: but found another document",
    "yaml_empty.yaml": "1: file is empty (expected apiVersion and models)",
    "yaml_comments_only.yaml": "1: file is empty (expected apiVersion and models)",
    "yaml_tab_indent.yaml": "3: YAML error: found character '\\t' that cannot start any token",
    "yaml_control_char.yaml": "4: YAML error: unacceptable character #x0007",
    "yaml_unclosed_flow.yaml": "3: YAML error: expected ',' or '}', but got '<stream end>'",
    # bytes that are not a UTF-8 text file
    "binary_garbage.yaml": "1: not UTF-8 text: invalid start byte",
    "binary_nul.yaml": "2: YAML error: unacceptable character #x0000",
    "binary_elf_header.yaml": "1: YAML error: unacceptable character #x007f",
    "encoding_latin1.yaml": "1: not UTF-8 text: invalid continuation byte",
    "encoding_utf16.yaml": "1: not UTF-8 text: invalid start byte",
    "encoding_surrogate.yaml": "1: not UTF-8 text: invalid continuation byte",
}


def _many_models_then_one_bad_alias() -> tuple[bytes, str]:
    """Just under 1 MiB of valid models, one reserved alias on the last line."""
    entry = '  M{:05d}:\n    versions: {{"1": {{stage: Staging, aliases: [champion]}}}}\n'
    n = (MAX_FILE_BYTES - 200) // len(entry.format(0))
    body = API + "models:\n" + "".join(entry.format(i) for i in range(n))
    body += '  Last:\n    versions: {"1": {aliases: [latest]}}\n'
    assert len(body) <= MAX_FILE_BYTES
    return body.encode(), f"{body.count(chr(10))}: alias 'latest' is reserved"


def _deep_blocks() -> tuple[bytes, str]:
    lines = [API, "models:\n"] + [f"{'  ' * (i + 1)}k{i}:\n" for i in range(200)]
    return "".join(lines).encode(), f"{MAX_DEPTH + 1}: YAML error: nested deeper than"


# name -> () -> (bytes, "LINE: start of the message"): inputs too big or odd to commit
GENERATED: dict[str, Callable[[], tuple[bytes, str]]] = {
    "huge_over_1mib.yaml": lambda: (
        (API + "models: {}\n" + "# padding\n" * (MAX_FILE_BYTES // 10)).encode(),
        f"1: file is larger than {MAX_FILE_BYTES} bytes",
    ),
    "huge_one_line.yaml": lambda: (
        b"apiVersion: " + b"x" * (MAX_FILE_BYTES + 1),
        f"1: file is larger than {MAX_FILE_BYTES} bytes",
    ),
    "deep_flow_sequences.yaml": lambda: (
        (API + "models: " + "[" * 50_000 + "]" * 50_000 + "\n").encode(),
        "2: YAML error: nested deeper than",
    ),
    "deep_flow_mappings.yaml": lambda: (
        (API + "models: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n").encode(),
        "2: YAML error: nested deeper than",
    ),
    "deep_block_mappings.yaml": _deep_blocks,
    "long_value_900k.yaml": lambda: (
        (
            API + "models:\n  Fraud:\n    description: " + "A" * 900_000 + "\n    versions: {}\n"
        ).encode(),
        "4: models.Fraud.description: 'AAAA",
    ),
    "near_limit_many_models.yaml": _many_models_then_one_bad_alias,
}


# Parsing a 1 MiB file takes seconds; `plan` would parse it again to the same error.
VALIDATE_ONLY = {"near_limit_many_models.yaml"}


class Overrun(BaseException):
    """Raised by the alarm; a BaseException so the CLI's own handler cannot swallow it."""


@contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def fire(_sig: int, _frame: object) -> None:
        raise Overrun(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Run:
    exit_code: int
    output: str


def in_process(args: list[str], *, trace_memory: bool) -> Run:
    """The CLI in-process under a time limit; with `trace_memory`, also a peak-memory limit
    (tracemalloc slows big inputs tenfold, so only small ones are traced this way)."""
    if trace_memory:
        tracemalloc.start()
    try:
        with _alarm(TIME_LIMIT_S):
            result = CliRunner().invoke(cli, args)
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            assert peak < MEMORY_LIMIT_BYTES, f"peak memory {peak / 2**20:.0f} MiB"
    finally:
        if trace_memory:
            tracemalloc.stop()
    return Run(result.exit_code, result.output)


def in_subprocess(args: list[str]) -> Run:
    """`regops ARGS` as a process capped at MEMORY_CAP_BYTES of address space and a timeout:
    an input that blows up memory dies there (MemoryError, exit 70), not in pytest."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP_BYTES, MEMORY_CAP_BYTES))

    proc = subprocess.run(
        [str(Path(sys.executable).with_name("regops")), *args],
        capture_output=True,
        text=True,
        timeout=SLOW_TIME_LIMIT_S,
        preexec_fn=cap,  # only sets a limit in the child
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A real sqlite registry holding the models the corpus names."""
    db = tmp_path_factory.mktemp("hostile-registry") / "mlflow.db"
    uri = f"sqlite:///{db}"
    make_registry(uri, {"Fraud": 3})
    return uri, db


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def check_rejected(
    name: str,
    raw: bytes,
    expected: str,
    registry: tuple[str, Path],
    workdir: Path,
    *,
    big: bool = False,
) -> None:
    """`validate` and `plan` both exit 1 with FILE:LINE, bounded; the registry is untouched.

    Big inputs are validated in a memory-capped subprocess, small ones traced in-process.
    """
    uri, db = registry
    state = workdir / "registry-state"
    state.mkdir()
    (state / name).write_bytes(raw)
    before = _digest(db)
    line, _, message = expected.partition(": ")
    validate = ["validate", "--state-dir", "registry-state"]
    runs = {"validate": in_subprocess(validate) if big else in_process(validate, trace_memory=True)}
    if name not in VALIDATE_ONLY:
        runs["plan"] = in_process(
            ["plan", "--tracking-uri", uri, "--state-dir", "registry-state"], trace_memory=not big
        )
    for command, run in runs.items():
        out = run.output
        assert run.exit_code == 1, f"{command} exited {run.exit_code}:\n{out[-3000:]}"
        assert f"registry-state/{name}:{line}: {message}" in out, out[-3000:]
        assert "nothing was changed" in out
        assert "Traceback" not in out
        longest = max(len(x) for x in out.splitlines())
        assert longest < 500, f"{command}: a message of {longest} characters"
    assert _digest(db) == before, "the registry database changed"


def test_corpus_is_complete() -> None:
    assert sorted(p.name for p in HOSTILE.iterdir()) == sorted(EXPECTED)


def test_every_wrong_type_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "t.yaml").write_bytes(
        (HOSTILE / "types_everywhere.yaml").read_bytes()
    )
    run = in_process(["validate", "--state-dir", "registry-state"], trace_memory=True)
    assert "error: 13 problem(s) in the state files; nothing was changed" in run.output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_hostile_file_is_rejected(
    name: str, registry: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_rejected(name, (HOSTILE / name).read_bytes(), EXPECTED[name], registry, tmp_path)
    assert not Path("/tmp/regops-pwned").exists()  # the !!python tag executed nothing


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_hostile_file_is_rejected(
    name: str, registry: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    raw, expected = GENERATED[name]()
    check_rejected(name, raw, expected, registry, tmp_path, big=True)


def test_many_errors_are_all_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    raw = (
        API
        + "models:\n  Fraud:\n    versions:\n"
        + "".join(f'      "{i}": {{aliases: [v{i}]}}\n' for i in range(1, 5001))
    ).encode()
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "many.yaml").write_bytes(raw)
    run = in_process(["validate", "--state-dir", "registry-state"], trace_memory=False)
    assert run.exit_code == 1
    assert "error: 5000 problem(s) in the state files; nothing was changed" in run.output


@pytest.mark.skipif(not Path("/proc/self/pagemap").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("target", "expected"),
    [
        # st_size says 0 and the file never ends: a symlink out of the repository is
        # refused before it is opened (test_state_file_guards has every entry point)
        ("/proc/self/pagemap", "1: it is a symlink to /proc/"),
        # the process environment (holding a secret): refused without reading it
        ("/proc/self/environ", "1: it is a symlink to /proc/"),
    ],
    ids=["pagemap", "environ"],
)
def test_symlink_to_a_special_file_is_rejected(
    target: str,
    expected: str,
    registry: tuple[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    secret = "hunter2-" + os.urandom(6).hex()
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", secret)
    state = tmp_path / "registry-state"
    state.mkdir()
    (state / "link.yaml").symlink_to(target)
    line, _, message = expected.partition(": ")
    for args in (["validate"], ["plan", "--tracking-uri", registry[0]]):
        run = in_process([*args, "--state-dir", "registry-state"], trace_memory=False)
        assert run.exit_code == 1, run.output[-2000:]
        assert f"registry-state/link.yaml:{line}: {message}" in run.output
        assert secret not in run.output


def test_schema_and_semantic_problems_in_every_file_are_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's example (a reserved alias and a bad version key) shows both problems,
    and a schema problem in one file does not hide a semantic one in it or in another."""
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "registry-state"
    state.mkdir()
    (state / "a.yaml").write_text(
        API + "models:\n  Fraud:\n    versions:\n"
        '      "1": {stage: Staging, aliases: [latest]}\n'
        '      "01": {stage: None}\n'
    )
    (state / "b.yaml").write_text(
        API + "policy:\n  stages:\n    Production: {max_versions: 1}\n"
        "models:\n  Churn:\n    suspend: maybe\n    versions:\n"
        '      "1": {stage: Production}\n      "2": {stage: Production, aliases: [v2]}\n'
        "  Fraud:\n    versions: {}\n"
    )
    run = in_process(["validate", "--state-dir", "registry-state"], trace_memory=False)
    assert run.exit_code == 1
    for expected in (
        "registry-state/a.yaml:5: alias 'latest' is reserved by MLflow",
        "registry-state/a.yaml:6: version key '01' must be a version number",
        "registry-state/b.yaml:7: models.Churn.suspend: expected boolean, got str 'maybe'",
        "registry-state/b.yaml:6: model Churn has 2 versions in Production (1, 2)",
        "registry-state/b.yaml:10: alias 'v2' is reserved by MLflow",
        "registry-state/b.yaml:11: model Fraud is also declared in registry-state/a.yaml:3",
        "error: 6 problem(s) in the state files; nothing was changed",
    ):
        assert expected in run.output, run.output


def test_names_yaml_would_type_are_the_names_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "m.yaml").write_text(
        API + "models:\n  on: {versions: {'1': {stage: Staging}}}\n"
        "  null: {versions: {}}\n  017: {versions: {}}\n  yes: {versions: {}}\n"
    )
    from regops.files.loader import load_state

    assert sorted(load_state(tmp_path / "registry-state").models) == ["017", "null", "on", "yes"]


def test_an_edit_never_writes_what_validate_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`max_versions: 1.0` is refused where it is written, by validate and by the editing
    commands alike (before this, validate accepted it and promote refused its own edit)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "registry-state").mkdir()
    path = tmp_path / "registry-state" / "m.yaml"
    text = (
        API + "policy:\n  stages:\n    Production: {max_versions: 1.0}\n"
        "models:\n  Fraud:\n    versions:\n      '1': {stage: Production}\n"
    )
    path.write_text(text)
    for args in (
        ["validate"],
        ["promote", "--model-name", "Fraud", "--version", "2", "--stage", "Production"],
    ):
        run = in_process([*args, "--state-dir", "registry-state"], trace_memory=False)
        assert run.exit_code == 1, run.output
        assert (
            "registry-state/m.yaml:4: policy.stages.Production.max_versions: expected integer, "
            "got float 1.0" in run.output
        )
    assert path.read_text() == text
    path.write_text(text.replace("1.0", "1"))
    args = ["promote", "--model-name", "Fraud", "--version", "2", "--stage", "Production"]
    run = in_process([*args, "--state-dir", "registry-state"], trace_memory=False)
    assert run.exit_code == 0, run.output
    assert "Fraud v1: stage Production -> Archived (Production holds at most 1" in run.output
