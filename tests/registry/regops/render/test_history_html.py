"""`regops history --format html`: the page, opened in a real headless Chromium.

Debian's Chromium (.ci/install-chromium; $REGOPS_CHROMIUM or `chromium` on the PATH),
driven by Playwright through `executable_path` (no browser download). The history is
real: a git repository whose commits promote, revert and (hostile) re-stage versions of a
real sqlite registry that `regops reconcile` stamps. The page must load with no console
message of level error, no request but its own file, draw one lane per stage and alias
with the versions and dates that git and the stamps give, show hostile text as text
only, highlight at `--at` exactly what `regops history --at` names, and mark a version
copied from another environment with its lineage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from regops.cli import cli
from tests.support.backends import in_ci
from tests.support.environments import Repo as EnvRepo
from tests.support.environments import run as envs_run
from tests.support.environments import two_environments
from tests.support.repo import PASSED, Repo, client, tag_version, write_state
from tests.support.servers import make_registry

PAYLOADS = (
    '<img src=x onerror="window.pwned=1">',
    "<script>window.pwned=2</script>",
    "</script><script>window.pwned=3</script><!--",
)
HOSTILE = " ".join(PAYLOADS)

STATE = """\
apiVersion: regops/v1
models:
  Fraud:
    description: {description}
    versions:
{versions}
"""


def state(versions: dict[str, tuple[str, list[str]]], description: str = "fraud") -> str:
    lines = [
        f'      "{v}": {{stage: {stage}, aliases: [{", ".join(aliases)}]}}'
        for v, (stage, aliases) in versions.items()
    ]
    return STATE.format(description=json.dumps(description), versions="\n".join(lines))


def regops(uri: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--tracking-uri", uri])


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017


class Story:
    """c1 v1 Production+champion, v2 Staging+challenger; c2 (PR #7) v2 to Production,
    v1 Archived, v3 Staging+challenger; c3 reverts c2; each reconciled. c4, a hostile
    commit, stages v3 again and is not reconciled, but a hand-made stamp on v3 says it was
    (a hostile actor); then someone archives v3 by hand in the registry: drift."""

    def __init__(self, root: Path, uri: str) -> None:
        self.uri = uri
        self.root = root
        self.repo = Repo(root)
        self.repo.clock = int(time.time()) - 3600
        make_registry(uri, {"Fraud": 3})
        for v in ("1", "2", "3"):
            tag_version(uri, v, PASSED)
        sd = root / "registry-state"
        write_state(
            sd, state({"1": ("Production", ["champion"]), "2": ("Staging", ["challenger"])})
        )
        self.c1 = self.step("Initial state", "alice")
        write_state(
            sd,
            state(
                {
                    "1": ("Archived", []),
                    "2": ("Production", ["champion"]),
                    "3": ("Staging", ["challenger"]),
                }
            ),
        )
        self.c2 = self.step("Promote Fraud v2 (#7)", "bob")
        self.repo.git("revert", "--no-edit", self.c2, who="carol")
        self.c3 = self.repo.head()
        self.reconcile()
        write_state(
            sd,
            state(
                {
                    "1": ("Production", ["champion"]),
                    "2": ("Staging", ["challenger"]),
                    "3": ("Staging", []),
                },
                description=HOSTILE,
            ),
        )
        self.c4 = self.repo.commit(f"Stage v3 {HOSTILE}", who="dave")
        stamp = {"commit": self.c4, "at": iso(int(time.time())), "actor": HOSTILE}
        client(uri).set_model_version_tag("Fraud", "3", "regops.audit", json.dumps(stamp))
        client(uri).set_model_version_tag("Fraud", "3", "note", HOSTILE)
        with warnings.catch_warnings():  # stages are deprecated in MLflow 3
            warnings.simplefilter("ignore", FutureWarning)
            client(uri).transition_model_version_stage("Fraud", "3", "Archived")  # by hand

    def step(self, message: str, who: str) -> str:
        sha = self.repo.commit(message, who=who)
        self.reconcile()
        return sha

    def reconcile(self) -> None:
        applied = regops(self.uri, "reconcile")
        assert applied.exit_code == 0, applied.output

    def committed(self, sha: str) -> int:
        return int(self.repo.git("log", "-1", "--format=%ct", sha))


@pytest.fixture(scope="module")
def chromium() -> str:
    path = os.environ.get("REGOPS_CHROMIUM") or shutil.which("chromium")
    if not path:
        hint = "run .ci/install-chromium (Debian's chromium) or set REGOPS_CHROMIUM"
        pytest.fail(f"no Chromium: {hint}" + (" (CI=true)" if in_ci() else ""))
    return path


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def story(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_uri: str) -> Story:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    monkeypatch.setenv("REGOPS_ACTOR", "release-bot")
    return Story(root, sqlite_uri)


class Opened:
    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.errors: list[str] = []
        self.requests: list[str] = []


def open_page(browser: Any, path: Path) -> Opened:
    """Load the page, draw every lane and table, and record console errors and requests."""
    page = browser.new_page()
    opened = Opened(page, path.resolve().as_uri())

    def on_request(route: Any) -> None:
        if route.request.url == opened.url:
            route.continue_()
        else:
            opened.requests.append(route.request.url)
            route.abort()

    page.route("**/*", on_request)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.on(
        "request",
        lambda r: opened.requests.append(r.url) if r.url != opened.url else None,
    )
    page.goto(opened.url)
    page.wait_for_selector("body[data-ready='1']")
    for section in page.query_selector_all("section.model"):
        section.scroll_into_view_if_needed()
        section.query_selector("summary").click()  # the table view, drawn on expand
    # Polled from here: wait_for_function evaluates inside the page, which its CSP forbids.
    drawn = "[...document.querySelectorAll('section.model')].every(s => s.dataset.drawn)"
    for _ in range(500):
        if page.evaluate(drawn):
            break
        time.sleep(0.02)
    assert page.evaluate(drawn)
    return opened


def render(story: Story, out: Path, *args: str) -> str:
    result = regops(story.uri, "history", "--format", "html", "--out", str(out), *args)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def assert_inert(html: str, opened: Opened) -> None:
    """The hostile payloads left no markup in the page's source and no element, script or
    request in the browser: only the page's own three scripts ran."""
    assert "</script><script>window.pwned" not in html
    assert "<img src=x" not in html
    page = opened.page
    assert opened.errors == []
    assert opened.requests == []
    assert page.evaluate("window.pwned") is None
    assert page.eval_on_selector_all("img, [onerror], iframe, object, embed", "e => e.length") == 0
    # Only the page's own scripts: the index, one data block per model, the program.
    assert page.eval_on_selector_all("script", "s => s.length") == 3


def bars(page: Any) -> list[dict[str, Any]]:
    return page.evaluate(  # type: ignore[no-any-return]
        """[...document.querySelectorAll('.lane')].flatMap(l =>
            [...l.querySelectorAll('.bar')].map(b => ({
              lane: l.dataset.kind + ' ' + l.dataset.name, version: b.dataset.version,
              start: Number(b.dataset.start),
              end: b.dataset.end === '' ? null : Number(b.dataset.end),
              flags: Number(b.dataset.flags), at: b.classList.contains('at')})))"""
    )


def test_lanes_and_bars_of_a_real_history(story: Story, browser: Any, tmp_path: Path) -> None:
    html = render(story, tmp_path / "history.html")
    assert "Content-Security-Policy" in html
    assert "default-src 'none'" in html
    opened = open_page(browser, tmp_path / "history.html")
    assert opened.errors == []
    assert opened.requests == []
    found = bars(opened.page)
    by_lane: dict[str, list[str]] = {}
    for b in found:
        by_lane.setdefault(b["lane"], []).append(b["version"])
    assert by_lane == {
        "stage Production": ["1", "2", "1"],
        "stage Staging": ["2", "3", "2", "3"],
        "stage Archived": ["1"],
        "alias champion": ["1", "2", "1"],
        "alias challenger": ["2", "3", "2"],
    }
    # Each bar starts when its change took effect: the stamp's time where the registry
    # says that very commit applied it, else the commit's time (from git itself).
    doc = json.loads(regops(story.uri, "history", "--format", "json").stdout)
    starts = {}
    for e in doc["entries"]:
        for c in e["changes"]:
            a = c["applied"]
            at = a["at"] if a and a["status"] == "applied" else None
            when = (
                int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())
                if at
                else story.committed(e["commit"])
            )
            lane = f"stage {c['after']}" if c["kind"] == "stage" else f"alias {c['alias']}"
            version = c["version"] if c["kind"] == "stage" else c["after"]
            starts.setdefault((lane, version), set()).add(when)
    for b in found:
        assert b["start"] in starts[(b["lane"], b["version"])], b
    production = [b for b in found if b["lane"] == "stage Production"]
    assert production[0]["end"] == production[1]["start"]  # v1 handed over to v2
    assert production[2]["end"] is None  # v1 again, to now
    # Markers: the revert's bars are rollbacks; v3's hand-stamped Staging is drift.
    rollback = {(b["lane"], b["version"]) for b in found if b["flags"] & 1}
    assert rollback == {
        ("stage Production", "1"),
        ("alias champion", "1"),
        ("alias challenger", "2"),
        ("stage Staging", "2"),
        ("stage Staging", "3"),  # a return to Staging, as `require_from` counts it
    }
    drift = [(b["lane"], b["version"]) for b in found if b["flags"] & 4]
    assert drift == [("stage Staging", "3")]
    rows = opened.page.eval_on_selector_all(
        "details table tbody tr:not(.planned)", "rs => rs.length"
    )
    assert rows == len(found)  # the table view holds the same tenures
    assert opened.page.eval_on_selector_all(".now", "n => n.length") == len(by_lane)


def test_hostile_text_stays_text(story: Story, browser: Any, tmp_path: Path) -> None:
    html = render(story, tmp_path / "history.html")
    opened = open_page(browser, tmp_path / "history.html")
    assert_inert(html, opened)
    page = opened.page
    text = page.inner_text("body")
    for payload in PAYLOADS:  # shown, as text: the subject, and the stamp's actor
        assert payload in text
    titles = page.eval_on_selector_all(".bar", "bs => bs.map(b => b.title).join('\\n')")
    assert HOSTILE in titles


def test_at_highlights_what_history_at_names(story: Story, browser: Any, tmp_path: Path) -> None:
    when = iso(story.committed(story.c2) + 30)  # between the promotion and its revert
    result = regops(story.uri, "history", "--at", when, "--format", "json")
    assert result.exit_code == 0, result.output
    expected = {
        (f"{h['kind']} {h['name']}", h["version"]) for h in json.loads(result.stdout)["holdings"]
    }
    assert expected == {
        ("stage Production", "2"),
        ("stage Archived", "1"),
        ("stage Staging", "3"),
        ("alias champion", "2"),
        ("alias challenger", "3"),
    }
    render(story, tmp_path / "at.html", "--at", when)
    opened = open_page(browser, tmp_path / "at.html")
    assert opened.errors == []
    highlighted = {(b["lane"], b["version"]) for b in bars(opened.page) if b["at"]}
    assert highlighted == expected
    table = opened.page.eval_on_selector_all(
        "#at-table tr[data-model]", "rs => rs.map(r => [r.dataset.lane, r.dataset.version])"
    )
    assert {(lane, v) for lane, v in table} == expected
    assert opened.page.eval_on_selector_all(".atline", "a => a.length") == 5


def blocks(html: str) -> tuple[dict[str, Any], list[Any]]:
    """(the index, the models' data) from the page's JSON blocks."""
    meta = json.loads(html.split('id="regops-meta">', 1)[1].split("</script>", 1)[0])
    data = [
        json.loads(html.split(f'id="m{i}">', 1)[1].split("</script>", 1)[0])
        for i in range(len(meta["models"]))
    ]
    return meta, data


def test_models_and_since_select_what_is_drawn(story: Story, tmp_path: Path) -> None:
    since = story.committed(story.c3)
    _meta, (full,) = blocks(render(story, tmp_path / "all.html"))
    ends = [t[2] for lane in full["l"] for t in lane[2]]
    meta, (kept,) = blocks(render(story, tmp_path / "since.html", "Fraud", "--since", iso(since)))
    assert meta["since"] == since
    assert [m[0] for m in meta["models"]] == ["Fraud"]
    # Only the tenures that ended before --since are gone (the promotion's, ended by c2).
    assert meta["models"][0][2] == sum(1 for e in ends if e is None or e >= since) < len(ends)
    assert all(t[2] is None or t[2] >= since for lane in kept["l"] for t in lane[2])
    meta, _ = blocks(render(story, tmp_path / "none.html", "Churn"))
    assert meta["models"] == []
    # --since filters the JSON history the same way (commits from that time on).
    full = json.loads(regops(story.uri, "history", "--format", "json").stdout)["entries"]
    since_doc = regops(story.uri, "history", "--format", "json", "--since", iso(since))
    kept_entries = json.loads(since_doc.stdout)["entries"]
    assert [e["commit"] for e in kept_entries] == [story.c4, story.c3]
    assert len(full) == 4
    garbage = regops(story.uri, "history", "--since", "garbage")
    assert garbage.exit_code == 64
    assert "--since 'garbage': expected an ISO 8601 time" in garbage.output
    bad = regops(story.uri, "--format", "html", "plan")
    assert bad.exit_code == 64
    assert "only `regops history` writes HTML" in bad.output


@pytest.fixture
def envs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_registry_db: Path) -> EnvRepo:
    return two_environments(tmp_path, monkeypatch, _empty_registry_db)


def test_a_copy_across_environments_carries_its_lineage(
    envs: EnvRepo, browser: Any, tmp_path: Path
) -> None:
    repo = envs
    applied = envs_run("--env", "prod", "reconcile")  # copies dev's v1 into prod, once
    assert applied.exit_code == 0, applied.output
    out = tmp_path / "prod.html"
    result = envs_run("--env", "prod", "history", "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    opened = open_page(browser, out)
    assert opened.errors == []
    assert opened.requests == []
    found = bars(opened.page)
    assert {(b["lane"], b["version"]) for b in found} == {
        ("stage Production", "dev@1"),
        ("alias champion", "dev@1"),
    }
    assert all(b["flags"] & 2 for b in found)  # COPY
    titles = opened.page.eval_on_selector_all(".bar", "bs => bs.map(b => b.title)")
    copied = repo.versions(repo.prod, "Fraud")
    assert list(copied) == ["1"]
    assert all("copy of dev/Fraud v1 (here v1)" in t for t in titles)
    assert opened.page.eval_on_selector_all(".mark.copy", "m => m.length") == 2


def test_gate_numbers_and_overrides_from_the_stamp(
    story: Story, browser: Any, tmp_path: Path
) -> None:
    """The stamp on v3 (naming c4) keeps require_metrics numbers and overrides, hostile
    ones among them: the numbers label the bar and fill the table, as text only; the
    overrides mark it; entries of the wrong shape are ignored."""
    stamp = {
        "commit": story.c4,
        "at": iso(int(time.time())),
        "actor": "release-bot",
        "stage": "Staging",
        "held": ["Staging"],
        "metrics": [
            {"for": "Staging", "metric": "auc", "value": 0.9132, "note": "no incumbent"},
            {"for": "Staging", "metric": HOSTILE, "value": 0.5, "note": HOSTILE},
            {"for": "champion", "metric": "recall", "value": 0.7},  # another lane's
        ],
        "rules": [  # the verdicts reconcile keeps; an overridden one carries its override
            {
                "for": "Staging",
                "rule": "not-on-friday",
                "level": "soft",
                "result": "fail",
                "override": {"reason": HOSTILE, "actor": "erin"},
            },
            {"for": "Staging", "rule": "privacy", "level": "hard", "result": "pass"},
            {
                "for": "Production",
                "rule": "freeze",
                "level": "soft",
                "result": "fail",
                "override": {"reason": "for another lane", "actor": "erin"},
            },
        ],
    }
    client(story.uri).set_model_version_tag("Fraud", "3", "regops.audit", json.dumps(stamp))
    html = render(story, tmp_path / "numbers.html", "--git-only")
    assert "auc 0.9132" not in html  # --git-only reads no stamp: no numbers
    html = render(story, tmp_path / "numbers.html")
    opened = open_page(browser, tmp_path / "numbers.html")
    assert_inert(html, opened)
    page = opened.page
    labelled = page.eval_on_selector_all(
        ".lane[data-name='Staging'] .bar[data-version='3']",
        "bs => bs.map(b => [b.textContent, b.title, Number(b.dataset.flags)])",
    )
    stamped = [b for b in labelled if "auc" in b[0]]
    assert len(stamped) == 1  # c4's tenure only: the stamp names c4
    label, title, flags = stamped[0]
    assert label.endswith(f"\u00b7 auc 0.9132, {HOSTILE} 0.5")  # the bar's own label
    assert "gate numbers: Staging: auc 0.9132 (maximize): no incumbent" in title
    assert f"gate numbers: Staging: {HOSTILE} 0.5 (maximize): {HOSTILE}" in title
    assert "recall" not in title  # the champion's numbers are not Staging's
    assert flags & 32  # OVERRIDE
    assert f"override: not-on-friday by erin: {HOSTILE}" in title
    assert "for another lane" not in title
    assert page.eval_on_selector_all(".mark.override", "m => m.length") == 1
    cells = page.eval_on_selector_all(
        "details table tbody tr",
        "rs => rs.map(r => [...r.children].map(c => c.textContent))",
    )
    heads = page.eval_on_selector_all("details table thead th", "h => h.map(x => x.textContent)")
    col = heads.index("gate numbers")
    numbered = [r for r in cells if r[col]]
    assert [r[1] for r in numbered] == ["3"]
    assert "Staging: auc 0.9132 (maximize): no incumbent" in numbered[0][col]
    assert HOSTILE in numbered[0][col]
    # Rules that are no list, or entries regops did not write, show no override (and the
    # page still draws).
    misshapen = [
        {"rule": "x"},
        [*stamp["rules"], "not an object"],
        [{"for": "Staging", "rule": 3, "level": "soft", "result": "fail", "override": {}}],
        [{"for": "Staging", "rule": "r", "level": "soft", "result": "fail", "override": "x"}],
    ]
    for i, rules in enumerate(misshapen):
        client(story.uri).set_model_version_tag(
            "Fraud", "3", "regops.audit", json.dumps({**stamp, "rules": rules})
        )
        render(story, tmp_path / f"bad{i}.html")
        opened = open_page(browser, tmp_path / f"bad{i}.html")
        assert opened.errors == []
        assert opened.page.eval_on_selector_all(".mark.override", "m => m.length") == 0, rules


GATED = """\
apiVersion: regops/v1
policy:
  aliases:
    challenger:
      require_tags: {{qa: signed-off}}
models:
  Fraud:
    description: {description}
    versions:
{versions}
"""


def test_pending_and_blocked_changes_of_the_current_plan(
    story: Story, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """c4 was never reconciled and v3 was archived by hand: the plan puts v3 back in
    Staging (pending). c5 moves challenger to v3, which lacks the tag challenger needs:
    blocked. Both are drawn at "now" in their lanes and listed in the table."""
    sd = story.root / "registry-state"
    versions = state(
        {"1": ("Production", ["champion"]), "2": ("Staging", []), "3": ("Staging", ["challenger"])}
    ).split("    versions:\n", 1)[1]
    (sd / "models.yaml").write_text(
        GATED.format(description=json.dumps("fraud"), versions=versions.rstrip("\n")),
        encoding="utf-8",
    )
    story.repo.commit(f"Challenger v3 {HOSTILE}", who="dave")
    plan = regops(story.uri, "plan", "--format", "json")
    doc = json.loads(plan.stdout)
    planned = {
        (c["kind"], c.get("alias") or c["after"] or c["before"], c["action"])
        for c in doc["changes"]
    }
    assert ("alias_move", "challenger", "blocked") in planned, planned
    html = render(story, tmp_path / "plan.html")
    meta, _ = blocks(html)
    assert meta["plan"]["error"] is None
    assert meta["plan"]["changes"] == len(doc["changes"])
    assert meta["plan"]["blocked"] == sum(1 for c in doc["changes"] if c["action"] == "blocked")
    opened = open_page(browser, tmp_path / "plan.html")
    page = opened.page
    assert opened.errors == []
    assert opened.requests == []
    assert page.evaluate("window.pwned") is None
    marks = page.eval_on_selector_all(
        ".lane div.planned",
        """ms => ms.map(m => [m.closest('.lane').dataset.kind + ' '
             + m.closest('.lane').dataset.name,
             m.dataset.version, m.dataset.blocked === '1', m.title])""",
    )
    by_lane = {(lane, v): (blocked, title) for lane, v, blocked, title in marks}
    blocked, title = by_lane[("alias challenger", "3")]
    assert blocked
    assert title.startswith("BLOCKED: @challenger")
    assert "require_tags" in title
    assert "qa" in title
    not_blocked = [k for k, (b, _t) in by_lane.items() if not b]
    assert ("stage Staging", "3") in not_blocked  # v3 back to Staging: pending only
    assert len(marks) == sum(
        1
        for c in doc["changes"]
        if c["kind"] in ("stage", "alias_set", "alias_move", "alias_delete")
    )
    rows = page.eval_on_selector_all(
        "details table tbody tr.planned",
        "rs => rs.map(r => [0, 1, 8].map(i => r.children[i].textContent))",
    )
    assert ["@challenger", "3", "blocked"] in rows
    assert ["stage Staging", "3", "pending (current plan)"] in rows
    summary = page.inner_text("#summary")
    assert f"current plan: {len(doc['changes'])} pending changes" in summary
    # Without the registry, no plan: the page says so instead of guessing.
    meta, _ = blocks(render(story, tmp_path / "git.html", "--git-only"))
    assert meta["plan"] is None
    # Published by CI, the page names the registry as reports do, never by its URI.
    monkeypatch.setenv("REGOPS_REGISTRY_NAME", "production")
    html = render(story, tmp_path / "named.html")
    assert blocks(html)[0]["registry"]["uri"] == "production"
    assert story.uri not in html
    assert story.uri.split("///", 1)[-1] not in html


def test_gzipped_model_data_draws_the_same_page(
    story: Story, browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the first screen a model's data travels gzipped (base64 in its JSON block)
    and is inflated in the browser: with no model on the first screen, the page draws the
    same lanes, bars and table as the plain one, hostile text still inert, no request."""
    from regops.render import html as html_module

    plain_html = render(story, tmp_path / "plain.html")
    assert isinstance(blocks(plain_html)[1][0], dict)
    monkeypatch.setattr(html_module, "FIRST_SCREEN", 0)
    packed_html = render(story, tmp_path / "packed.html")
    packed_block = packed_html.split('id="m0">', 1)[1].split("</script>", 1)[0]
    assert packed_block.startswith('"H4sI')  # a gzip stream, base64: no markup inside
    assert "<" not in packed_block
    assert len(packed_block) < len(plain_html.split('id="m0">', 1)[1].split("</script>", 1)[0])
    plain = open_page(browser, tmp_path / "plain.html")
    packed = open_page(browser, tmp_path / "packed.html")
    for opened in (plain, packed):
        assert opened.errors == []
        assert opened.requests == []
        assert opened.page.evaluate("window.pwned") is None
    assert bars(packed.page) == bars(plain.page)
    assert len(bars(packed.page)) == 14

    def table(page: Any) -> list[list[str]]:
        rows = page.eval_on_selector_all(
            "details table tbody tr", "rs => rs.map(r => [...r.children].map(c => c.textContent))"
        )
        # A pending row starts "now (TIME)", the time of its own render: the two pages
        # were rendered apart, maybe a second apart.
        return [[re.sub(r"^now \(.*\)$", "now", c) for c in row] for row in rows]

    for _ in range(250):  # a table opened before its data was inflated is drawn after
        if table(packed.page):
            break
        time.sleep(0.02)
    assert table(packed.page) == table(plain.page)
    planned = packed.page.eval_on_selector_all(".lane div.planned", "m => m.length")
    assert planned == 1  # c4 (v3 back to Staging) is the plan's one change
    assert len(table(packed.page)) == 14 + planned
