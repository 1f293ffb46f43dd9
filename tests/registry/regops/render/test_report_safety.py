"""What regops posts (PR comments, drift issues, job summaries, PR bodies) is untrusted text.

Hostile values sit in a real state file (descriptions, gate tags) and a real sqlite
registry (descriptions, evidence tags, aliases, model names); each report is made by the
CLI and parsed by a real markdown renderer, markdown-it-py in its GitHub-like mode with
linkify. No link, image or raw HTML may come from the input (the report's own marker,
`<sub>` footer and `<br>` between gates are the only HTML it writes), and no mention,
issue or commit reference, URL, `www.` or email is left in text GitHub would link (its
autolinker and reference filters do not look inside code). A property: any text, through
`md`, renders as one text token holding that text, and nothing else.

Reports longer than GitHub takes in one comment are summarised and name the file holding
the whole report.
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mlflow import MlflowClient

from regops.cli import cli
from regops.render import reports
from regops.render.mdsafe import JOINER, md, md_code, md_fence, safe
from regops.render.reports import Candidate
from tests.support.repo import ENVS_CONFIG
from tests.support.servers import make_registry

RENDERER = MarkdownIt("gfm-like")  # tables, strikethrough, raw HTML, linkify (GitHub's set)

# Hostile values: each short enough (< 40 characters) to be shown whole in a plan's
# `description: 'before' -> 'after'`.
CORPUS = [
    "[x](https://evil.example)",
    "![i](https://evil.example/p.png)",
    "<img src=x onerror=alert(1)>",
    '<a href="https://evil.example">a</a>',
    "<details><summary>s</summary>",
    "https://evil.example/login",
    "www.evil.example",
    "mail a@evil.example",
    "@octocat and @org/team",
    "#1 GH-1 owner/repo#1",
    "sha 0123456789abcdef0123",
    "`` ` ``` back`ticks",
    "a | b || c",
    "line\nbreak\n- item\n# head",
    "--> <!-- comment -->",
    "cr\rhere\x1b[2J\x07",
    "&#64;octocat &lt;b&gt;",
    "**bold** _em_ ~~s~~ $x$",
    "<https://evil.example>",
    "[ref]: https://evil.example",
    "> quote\n1. list",
    "\u202eesrever bidi",
    "[x][ref] [ref]",
    "<script>alert(1)</script>",
]
# What each report must still show of them (the values are there, as text).
VISIBLE = [
    "[x](https://evil.example)",
    "<img src=x onerror=alert(1)>",
    "@octocat and @org/team",
    "#1 GH-1 owner/repo#1",
    "0123456789abcdef0123",
    "a | b || c",
    "--> <!-- comment -->",
    "&#64;octocat",
    "**bold** _em_ ~~s~~ $x$",
    "<script>alert(1)</script>",
]
OWN_HTML = {reports.MARKER, "<sub>", "</sub>", "<br>"}

# What GitHub links in text after rendering (never inside code).
LINKED_IN_TEXT = {
    "mention": re.compile(r"(?<![\w`])@[A-Za-z0-9]"),
    "issue": re.compile(r"#[0-9]"),
    "GH-N": re.compile(r"GH-[0-9]", re.IGNORECASE),
    "commit": re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{7,40}(?![0-9A-Za-z])"),
    "url": re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://"),
    "www": re.compile(r"www\.", re.IGNORECASE),
    "email": re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]*[A-Za-z]"),
}


def tokens(text: str) -> Iterator[Token]:
    for t in RENDERER.parse(text):
        yield t
        yield from t.children or ()


def judge(report: str, *, own_links: tuple[str, ...] = ()) -> str:
    """Fail on any element or reference that came from input; return what a reader sees."""
    seen = []
    for t in tokens(report):
        if t.type == "link_open":
            assert t.attrs.get("href") in own_links, (t.attrs, report)
        assert t.type != "image", report
        if t.type in ("html_inline", "html_block"):
            assert t.content.strip() in OWN_HTML, (t.content, report)
        if t.type == "text":
            for what, pattern in LINKED_IN_TEXT.items():
                assert not pattern.search(t.content), (what, t.content)
        if t.type in ("text", "code_inline", "fence"):
            seen.append(t.content)
    return "\n".join(seen).replace(JOINER, "")


def shows_the_values(seen: str, values: list[str] = VISIBLE) -> None:
    for value in values:
        assert value in seen, (value, seen)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def name(i: int) -> str:
    return f"M{i:02d}"


def hostile_state() -> str:
    lines = [
        "apiVersion: regops/v1",
        "policy:",
        "  stages:",
        "    Production:",
        "      require_tags:",
        "        validation_status: passed",
        f"        {json.dumps(CORPUS[0] + ' ' + CORPUS[8])}: {json.dumps(CORPUS[2])}",
        "models:",
    ]
    for i in range(len(CORPUS)):
        lines += [
            f"  {name(i)}:",
            f"    description: {json.dumps(CORPUS[(i + 1) % len(CORPUS)])}",
            "    versions:",
            '      "1": {stage: Production}',
        ]
    return "\n".join(lines) + "\n"


def fill_registry(uri: str) -> None:
    """One model per hostile value: as its description, its evidence, and odd aliases."""
    c = client(uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for i, value in enumerate(CORPUS):
            c.create_registered_model(name(i), description=value)
            c.create_model_version(name(i), source=f"s3://b/{i}", run_id=None)
            c.set_model_version_tag(name(i), "1", "validation_status", value)
        c.set_registered_model_alias(name(0), "deadbeefcafe1234", "1")  # a commit-like alias
        c.set_registered_model_alias(name(1), "GH-123", "1")


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    monkeypatch.chdir(tmp_path)
    fill_registry(sqlite_uri)
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "models.yaml").write_text(hostile_state())
    return sqlite_uri


def test_plan_report_shows_hostile_values_as_text(hostile: str, tmp_path: Path) -> None:
    result = run("plan", "--tracking-uri", hostile, "--report", "report.md")
    assert result.exit_code == 1, result.output  # every version is blocked by its gate
    report = (tmp_path / "report.md").read_text()
    seen = judge(report)
    shows_the_values(seen)
    assert "deadbeefcafe1234" in seen
    assert "GH-123" in seen
    assert report.count("| ⛔ |") == len(CORPUS)


def test_plan_report_of_invalid_hostile_state_quotes_it_in_code(
    hostile: str, tmp_path: Path
) -> None:
    bad = tmp_path / "registry-state" / "bad.yaml"
    bad.write_text(
        "apiVersion: regops/v1\nmodels:\n"
        + "".join(f"  {json.dumps(v)}: {{versions: {{}}}}\n" for v in CORPUS)
    )
    result = run("plan", "--tracking-uri", hostile, "--report", "report.md")
    assert result.exit_code == 1
    report = (tmp_path / "report.md").read_text()
    seen = judge(report)
    assert "The state files do not validate" in seen
    shows_the_values(seen, ["<img src=x onerror=alert(1)>", "@octocat and @org/team"])


def test_reconcile_summary_shows_hostile_descriptions_as_text(hostile: str, tmp_path: Path) -> None:
    """The reconcile summary (registry-apply's job summary) on hostile descriptions."""
    state = tmp_path / "registry-state" / "models.yaml"
    state.write_text(hostile_state().replace("{stage: Production}", "{}"))
    result = run("reconcile", "--tracking-uri", hostile, "--format", "markdown")
    assert result.exit_code == 0, result.output
    seen = judge(result.stdout)
    # Each description, and the two live aliases the state does not declare.
    assert result.stdout.count("✅ applied") == len(CORPUS) + 2
    shows_the_values(seen, ["[x](https://evil.example)", "<img src=x onerror=alert(1)>"])


@pytest.fixture
def two_envs(
    hostile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_registry_db: Path
) -> Path:
    """dev plans the hostile state on the hostile registry; prod's state is invalid."""
    shutil.copyfile(_empty_registry_db, tmp_path / "prod.db")
    monkeypatch.setenv("REGOPS_T_DEV_URI", hostile)
    monkeypatch.setenv("REGOPS_T_PROD_URI", f"sqlite:///{tmp_path / 'prod.db'}")
    (tmp_path / "regops.yaml").write_text(ENVS_CONFIG)
    for env in ("dev", "prod"):
        (tmp_path / "registry-state" / env).mkdir()
    shutil.move(tmp_path / "registry-state" / "models.yaml", tmp_path / "registry-state" / "dev")
    (tmp_path / "registry-state" / "prod" / "models.yaml").write_text(
        "apiVersion: regops/v1\nmodels:\n"
        + "".join(f"  {json.dumps(v)}: {{versions: {{}}}}\n" for v in CORPUS)
    )
    return tmp_path


def test_all_envs_report_shows_a_hostile_state_and_error_as_text(two_envs: Path) -> None:
    result = run("plan", "--all-envs", "--report", "report.md")
    assert result.exit_code == 1, result.output
    report = (two_envs / "report.md").read_text()
    seen = judge(report)
    assert "### regops plan: `dev`" in report
    assert "### regops plan: `prod`" in report
    shows_the_values(seen)
    # prod's error quotes its state file: in a code block, as it is.
    assert "[x](https://evil.example)" in report.split("### regops plan: `prod`")[1]


def test_candidates_summary_shows_hostile_names_and_tags_as_text(
    sqlite_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.yml appends it to the job summary; MLflow names refuse only `/` and `:`."""
    monkeypatch.chdir(tmp_path)
    names = [v.replace("/", "").replace(":", "") for v in CORPUS]
    c = client(sqlite_uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for n, value in zip(names, CORPUS, strict=True):
            c.create_registered_model(n)
            c.create_model_version(n, source="s3://b/x", run_id=None)
            c.set_model_version_tag(n, "1", "validation_status", value)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps({"models": [{"registered_model": n, "version": "1"} for n in names]})
    )
    result = run("candidates", "--tracking-uri", sqlite_uri, "--manifest", str(manifest),
                 "--format", "markdown")  # fmt: skip
    assert result.exit_code == 0, result.output
    seen = judge(result.stdout)
    assert result.stdout.count("❌") == len(CORPUS)
    shows_the_values(seen, ["<img src=x onerror=alert(1)>", "@octocat and @org/team"])


def test_proposal_body_shows_names_as_code() -> None:
    rows = [Candidate(v, "1", True, v) for v in CORPUS]
    body = reports.render_proposal(rows, "Staging", ["registry-state/<b>@x.yaml"])
    seen = judge(body)
    shows_the_values(seen, ["<img src=x onerror=alert(1)>", "registry-state/<b>@x.yaml"])


# ---- escaping, as a property -----------------------------------------------------------


def _visible(text: str) -> str:
    """What `md` promises to show of `text`: one line, controls as escapes, ends trimmed."""
    return safe(re.sub(r"\r\n|[\n\t]", " ", text).strip())


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("ab1.:/@#<>[]()!*_`~|&$-+=\\ \n\twWGH;x")) | st.characters(),
        max_size=60,
    )
)
def test_md_renders_any_text_as_itself_and_nothing_else(text: str) -> None:
    want = _visible(text)
    for where in ("{}", "- {}", "| h |\n|---|\n| {} |", "### {}"):
        inline = [t for t in RENDERER.parse(where.format(md(text))) if t.type == "inline"][-1:]
        if not want.strip():
            continue
        assert inline, (text, md(text))
        children = inline[0].children or []
        assert [c.type for c in children] == ["text"], (text, md(text), children)
        assert children[0].content.replace(JOINER, "").strip() == want.strip()
        for what, pattern in LINKED_IN_TEXT.items():
            assert not pattern.search(children[0].content), (what, text)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(max_size=40), st.booleans())
@example("\r\n", False)  # CRLF is a line ending in a fence (hypothesis found it once)
@example("a\rb\r\n", True)
def test_code_spans_and_fences_hold_any_text(text: str, table: bool) -> None:
    span = md_code(text, table=table)
    where = "| h |\n|---|\n| {} |" if table else "- {}"
    inline = [t for t in RENDERER.parse(where.format(span)) if t.type == "inline"][-1]
    assert [c.type for c in inline.children or []] == ["code_inline"], (text, span)
    fence = RENDERER.parse("\n".join(md_fence(text)))
    assert [t.type for t in fence] == ["fence"], (text, fence)
    # md_fence reads CRLF as a line ending (as CommonMark does); a lone CR is escaped by safe
    assert fence[0].content.rstrip("\n") == safe(text.replace("\r\n", "\n")).rstrip("\n")


# ---- the comment limit ---------------------------------------------------------------------

BIG = 450


@pytest.fixture
def blocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> str:
    """450 versions declared Production, none with its evidence: 450 blocked changes."""
    monkeypatch.chdir(tmp_path)
    make_registry(sqlite_uri, {"Big": BIG // 2, "Bigger": BIG - BIG // 2})
    lines = [
        "apiVersion: regops/v1",
        "policy:",
        "  stages:",
        "    Production:",
        "      require_tags: {validation_status: passed, smoke_test_status: passed}",
        "models:",
    ]
    for model, n in (("Big", BIG // 2), ("Bigger", BIG - BIG // 2)):
        lines += [f"  {model}:", "    versions:"]
        lines += [f'      "{v}": {{stage: Production}}' for v in range(1, n + 1)]
    (tmp_path / "registry-state").mkdir()
    (tmp_path / "registry-state" / "big.yaml").write_text("\n".join(lines) + "\n")
    return sqlite_uri


def test_a_report_over_the_comment_limit_is_summarised(blocked: str, tmp_path: Path) -> None:
    result = run("plan", "--tracking-uri", blocked, "--report", "report.md", "--out", "p.json")
    assert result.exit_code == 1, result.output
    comment = (tmp_path / "report.md").read_text()
    full = (tmp_path / "report.full.md").read_text()
    assert len(full) > reports.GITHUB_LIMIT  # too long for GitHub as it is
    assert len(comment) <= reports.BUDGET < reports.GITHUB_LIMIT
    assert comment.startswith(reports.MARKER)  # still the one comment each push updates
    assert "`report.full.md`" in comment
    assert "artifacts" in comment
    assert "| `Big` | 225 | 0 | 0 | stage 225 |" in comment
    assert "| `Bigger` | 225 | 0 | 0 | stage 225 |" in comment
    assert "450 blocked" in comment
    judge(comment)
    # The whole report: every blocked change, one row each.
    assert full.count("| ⛔ |") == BIG
    for v in (1, 225):
        assert f"version {v} stage: None -> Production" in full
    assert len(json.loads((tmp_path / "p.json").read_text())["changes"]) == BIG


def test_a_report_under_the_limit_is_whole_and_alone(blocked: str, tmp_path: Path) -> None:
    result = run("plan", "--tracking-uri", blocked, "--model", "Big", "--report", "report.md")
    assert result.exit_code == 1, result.output
    assert (tmp_path / "report.md").read_text().count("| ⛔ |") == BIG // 2
    assert not (tmp_path / "report.full.md").exists()


def test_all_envs_report_over_the_limit_is_summarised(
    blocked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGOPS_T_DEV_URI", blocked)
    monkeypatch.setenv("REGOPS_T_PROD_URI", blocked)
    (tmp_path / "regops.yaml").write_text(ENVS_CONFIG)
    for env in ("dev", "prod"):
        (tmp_path / "registry-state" / env).mkdir()
        shutil.copy(tmp_path / "registry-state" / "big.yaml", tmp_path / "registry-state" / env)
    (tmp_path / "registry-state" / "big.yaml").unlink()
    result = run("plan", "--all-envs", "--report", "report.md")
    assert result.exit_code == 1, result.output
    comment = (tmp_path / "report.md").read_text()
    full = (tmp_path / "report.full.md").read_text()
    assert len(comment) <= reports.BUDGET
    assert full.count("| ⛔ |") == 2 * BIG
    assert comment.count("| `Big` | 225 | 0 | 0 | stage 225 |") == 2
    assert "`report.full.md`" in comment
    judge(comment)


def links(report: str) -> list[str]:
    return [t.attrs["href"] for t in tokens(report) if t.type == "link_open"]  # type: ignore[misc]


def test_plan_report_links_the_history_page(
    hostile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$REGOPS_HISTORY_URL (set by the plan workflow) becomes the report's one link of its
    own; a hostile URL cannot close the link, add markup, or be anything but http(s)."""
    page = "https://github.com/acme/models/actions/workflows/registry-apply.yml"
    monkeypatch.setenv("REGOPS_HISTORY_URL", page)
    run("plan", "--tracking-uri", hostile, "--report", "report.md")
    report = (tmp_path / "report.md").read_text()
    assert f"{reports.HISTORY_LINK}({page})" in report
    assert links(report) == [page]
    shows_the_values(judge(report, own_links=(page,)))
    evil = "https://evil.example/x)[y](javascript:alert(1)) <img src=x onerror=alert(1)>`"
    monkeypatch.setenv("REGOPS_HISTORY_URL", evil)
    run("plan", "--tracking-uri", hostile, "--report", "report.md")
    report = (tmp_path / "report.md").read_text()
    (href,) = links(report)
    assert href.startswith("https://evil.example/x%29%5By%5D%28javascript:alert%281%29%29%20%3C")
    judge(report, own_links=(href,))  # nothing else: no image, no raw HTML, no second link
    for bad in ("javascript:alert(1)", "data:text/html,<b>x</b>", "//evil.example/x", "", "x"):
        monkeypatch.setenv("REGOPS_HISTORY_URL", bad)
        run("plan", "--tracking-uri", hostile, "--report", "report.md")
        report = (tmp_path / "report.md").read_text()
        assert links(report) == []
        assert reports.HISTORY_LINK not in report
    monkeypatch.delenv("REGOPS_HISTORY_URL")
    run("plan", "--tracking-uri", hostile, "--report", "report.md")
    assert reports.HISTORY_LINK not in (tmp_path / "report.md").read_text()
