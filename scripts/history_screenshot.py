"""`make docs-screenshot`: docs/history.png, the history page of a small demo registry.

Plays a short GitOps story with the real CLI in a scratch git repository (.demo-history/)
on a local sqlite registry (no training: each version's source run carries its metrics):
two models promoted over seven weeks by pull requests, one promotion reverted, a
`require_metrics` gate letting one champion through (its numbers land in the stamp) and
blocking the last one (pending in the current plan). Each commit is reconciled at once;
as a demo cannot wait weeks, commits are dated a week apart and each stamp's `at` is set
to its reconcile's place in that story. Then `regops history --format html` renders the
page and Debian's Chromium (the browser the tests drive: $REGOPS_CHROMIUM or `chromium`)
takes the screenshot through Playwright.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / ".demo-history"
BIN = Path(sys.executable).parent
WEEK = 7 * 86400
PEOPLE = {
    "alice": "Alice Adams <alice@example.com>",
    "bob": "Bob Brown <bob@example.com>",
    "carol": "Carol Cruz <carol@example.com>",
    "dave": "Dave Diaz <dave@example.com>",
}
AUC = {"Fraud": [0.81, 0.84, 0.86, 0.79], "Churn": [0.74, 0.77, 0.78]}
POLICY = """\
apiVersion: regops/v1
policy:
  aliases:
    champion:
      require_metrics:
        test_roc_auc: {goal: maximize, min: 0.72, beats: champion, by: 0.005}
models:
"""


class Story:
    def __init__(self, root: Path, start: int) -> None:
        self.root = root
        self.clock = start
        self.uri = f"sqlite:///{root.parent / 'mlflow.db'}"  # outside the git work tree
        self.env = {**os.environ, "MLFLOW_TRACKING_URI": self.uri, "REGOPS_ACTOR": "release-bot"}
        self.env.update({"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})

    def git(self, *args: str, who: str = "alice") -> str:
        name, email = PEOPLE[who][:-1].split(" <")
        stamp = f"{self.clock} +0000"
        env = {**self.env, "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
        env.update({"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email})
        env.update({"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
        out = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()

    def regops(self, *args: str, ok: tuple[int, ...] = (0,)) -> str:
        cmd = [str(BIN / "regops"), *args]
        proc = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True)
        if proc.returncode not in ok:
            said = proc.stdout + proc.stderr
            sys.exit(f"regops {' '.join(args)} exited {proc.returncode}:\n{said}")
        return proc.stdout

    def state(self, models: dict[str, dict[str, tuple[str, list[str]]]]) -> None:
        lines = [POLICY.rstrip("\n")]
        for model, versions in models.items():
            lines += [f"  {model}:", "    versions:"]
            for v, (stage, aliases) in versions.items():
                lines.append(f'      "{v}": {{stage: {stage}, aliases: [{", ".join(aliases)}]}}')
        (self.root / "registry-state" / "models.yaml").write_text("\n".join(lines) + "\n")

    def commit(self, message: str, who: str, *, weeks: float = 1.0, apply: bool = True) -> str:
        self.clock += int(weeks * WEEK)
        self.git("add", "-A", who=who)
        self.git("commit", "-q", "-m", message, who=who)
        sha = self.git("rev-parse", "HEAD")
        if apply:
            self.reconcile(sha)
        return sha

    def reconcile(self, sha: str) -> None:
        self.regops("reconcile")
        self.date_stamps(sha, self.clock + 600)  # applied ten minutes after the merge

    def date_stamps(self, sha: str, when: int) -> None:
        from mlflow import MlflowClient

        c = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
        for model in AUC:
            for mv in c.search_model_versions(f"name='{model}'"):
                raw = mv.tags.get("regops.audit")
                doc = json.loads(raw) if raw else {}
                if doc.get("commit") == sha:
                    doc["at"] = at
                    c.set_model_version_tag(model, mv.version, "regops.audit", json.dumps(doc))


def registry(story: Story) -> None:
    from mlflow import MlflowClient

    c = MlflowClient(tracking_uri=story.uri, registry_uri=story.uri)
    exp = c.create_experiment("demo")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for model, aucs in AUC.items():
            c.create_registered_model(model)
            for auc in aucs:
                run = c.create_run(exp)
                c.log_metric(run.info.run_id, "test_roc_auc", auc)
                c.set_terminated(run.info.run_id)
                c.create_model_version(model, source=f"s3://demo/{model}", run_id=run.info.run_id)


def play(root: Path) -> Story:
    if root.parent.exists():
        shutil.rmtree(root.parent)
    (root / "registry-state").mkdir(parents=True)
    s = Story(root, int(time.time()) - 7 * WEEK - 86400)
    s.git("init", "-q", "-b", "main")
    registry(s)
    fraud = {"1": ("Production", ["champion"])}
    churn = {"1": ("Production", ["champion"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Initial state: v1 of both models in Production (#3)", "alice", weeks=0)
    fraud = {**fraud, "2": ("Staging", ["challenger"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Stage Fraud v2 as challenger (#12)", "bob")
    promoted = {"1": ("Archived", []), "2": ("Production", ["champion"])}
    s.state({"Fraud": promoted, "Churn": churn})
    c3 = s.commit("Promote Fraud v2: test_roc_auc 0.84 beats 0.81 (#15)", "bob")
    s.clock += 2 * 86400
    s.git("revert", "--no-edit", c3, who="carol")  # a bad week in production: roll back
    s.reconcile(s.git("rev-parse", "HEAD"))
    churn = {"1": ("Archived", []), "2": ("Production", ["champion"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Promote Churn v2 (#19)", "dave")
    fraud = {"1": ("Archived", []), "2": ("Archived", []), "3": ("Production", ["champion"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Promote Fraud v3: test_roc_auc 0.86 (#21)", "alice", weeks=1.5)
    churn = {**churn, "3": ("Staging", ["challenger"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Stage Churn v3 (#24)", "dave")
    fraud = {**fraud, "3": ("Production", []), "4": ("Production", ["champion"])}
    s.state({"Fraud": fraud, "Churn": churn})
    s.commit("Make Fraud v4 champion (#27)", "bob", weeks=0.9, apply=False)  # the gate blocks
    return s


def screenshot(html: Path, out: Path, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 760}, device_scale_factor=1)
        page.route(  # the page makes no request; should it, none leaves
            "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
        )
        page.goto(html.resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        for _ in range(200):  # lanes are drawn as they come into view
            if page.evaluate("document.querySelectorAll('section.model[data-drawn]').length >= 2"):
                break
            time.sleep(0.02)
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "history.png")
    parser.add_argument("--html", type=Path, help="also keep the page here")
    args = parser.parse_args(argv)
    chromium = os.environ.get("REGOPS_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("no Chromium: run .ci/install-chromium (Debian's chromium) or set REGOPS_CHROMIUM")
    s = play(SCRATCH / "repo")
    page = SCRATCH / "history.html"
    s.env["REGOPS_REGISTRY_NAME"] = "demo"  # as reports name it (never its URI)
    s.regops("history", "--format", "html", "--out", str(page))
    if args.html:
        shutil.copyfile(page, args.html)
    screenshot(page, args.out, chromium)
    print(f"wrote {args.out} (the page: {page})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
