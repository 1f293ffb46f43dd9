"""A small stand-in for the GitHub REST endpoints the workflows use, behind the real `gh`.

`gh` talks plain HTTP to `api.github.localhost` when GH_HOST=github.localhost; with
HTTP_PROXY pointing here, every request it makes lands in this server (127.0.0.1).
It keeps issues, pull requests and comments in memory, records every request,
and answers the few REST calls the workflows' plumbing makes (nothing else: an
unknown call is a 404 the test sees in the job log).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT = "github-actions[bot]"


@dataclass
class FakeGitHub:
    repo: str
    items: dict[int, dict[str, Any]] = field(default_factory=dict)  # issues and PRs share numbers
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, body
    # repository_dispatch events received: (monotonic time, body, headers) (regops relay)
    dispatches: list[tuple[float, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    dispatch_failures: int = 0  # the next N dispatches answer 502 (retries are tested)
    next_number: int = 1
    next_comment: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_headers: dict[str, str] = field(default_factory=dict)

    # ---- views for the tests -----------------------------------------------------------
    def issues(self, state: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if "head" not in i and state in (None, i["state"])]

    def pulls(self, state: str | None = None) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if "head" in i and state in (None, i["state"])]

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == number]

    def add_pull(self, number: int, head: str, base: str = "main") -> None:
        self.items[number] = self._item(number, f"PR {number}", "", head=head, base=base)
        self.next_number = max(self.next_number, number + 1)

    def merge_pull(self, number: int, sha: str, title: str) -> None:
        """Pull request `number`, titled `title`, merged as commit `sha`."""
        self.add_pull(number, head=f"pr-{number}")
        item = self.items[number]
        item.update(title=title, state="closed", merged_at="2026-12-03T10:00:00Z")
        item["merge_commit_sha"] = sha

    def label(self, number: int, name: str, actor: str) -> None:
        """`actor` puts label `name` on issue or pull request `number`."""
        item = self.items[number]
        item.setdefault("labels", []).append({"name": name})
        item.setdefault("events", []).append(
            {"event": "labeled", "label": {"name": name}, "actor": {"login": actor}}
        )

    def texts(self) -> list[str]:
        """Every title and body anything wrote here."""
        out = [c["body"] for c in self.comments.values()]
        for i in self.items.values():
            out += [i["title"], i["body"] or ""]
        return out

    # ---- the REST API ------------------------------------------------------------------
    def _item(self, number: int, title: str, body: str, **extra: Any) -> dict[str, Any]:
        item = {
            "number": number,
            "title": title,
            "body": body,
            "state": "open",
            "user": {"login": BOT},
            "html_url": f"https://github.com/{self.repo}/issues/{number}",
        }
        if "head" in extra:
            item["head"] = {
                "ref": extra["head"],
                "label": f"{self.repo.split('/')[0]}:{extra['head']}",
            }
            item["base"] = {"ref": extra["base"]}
        return item

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        base = f"/repos/{self.repo}"
        if not path.startswith(base):
            return 404, {"message": f"Not Found: {path}"}
        rest = path[len(base) :]
        with self.lock:
            return self._route(method, rest, query, body or {})

    def handle_locked(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        """`handle`, the lock already held (the server records the headers under it)."""
        base = f"/repos/{self.repo}"
        if not path.startswith(base):
            return 404, {"message": f"Not Found: {path}"}
        return self._route(method, path[len(base) :], query, body or {})

    def _route(
        self, method: str, rest: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        q = {k: v[0] for k, v in query.items()}
        if rest == "" and method == "GET":
            return 200, {"full_name": self.repo, "default_branch": "main"}
        if rest == "/dispatches" and method == "POST":
            if self.dispatch_failures > 0:
                self.dispatch_failures -= 1
                return 502, {"message": "Bad Gateway"}
            if not isinstance(body.get("event_type"), str):
                return 422, {"message": "event_type is required"}
            self.dispatches.append((time.monotonic(), body, dict(self.last_headers)))
            return 204, None
        if rest == "/issues" and method == "GET":
            state = q.get("state", "open")
            found = [i for i in self.issues() if state == "all" or i["state"] == state]
            return 200, sorted(found, key=lambda i: -i["number"])
        if rest == "/issues" and method == "POST":
            n = self._new_number()
            self.items[n] = self._item(n, body["title"], body.get("body", ""))
            return 201, self.items[n]
        if rest == "/pulls" and method == "GET":
            state = q.get("state", "open")
            head = q.get("head")
            found = [p for p in self.pulls() if state == "all" or p["state"] == state]
            if head:
                found = [p for p in found if p["head"]["label"] == head]
            return 200, found
        if rest == "/pulls" and method == "POST":
            n = self._new_number()
            self.items[n] = self._item(
                n, body["title"], body.get("body", ""), head=body["head"], base=body["base"]
            )
            return 201, self.items[n]
        m = re.fullmatch(r"/commits/([0-9a-f]{7,40})/pulls", rest)
        if m and method == "GET":
            return 200, [p for p in self.pulls() if p.get("merge_commit_sha") == m.group(1)]
        m = re.fullmatch(r"/issues/(\d+)/(labels|events)", rest)
        if m and int(m.group(1)) in self.items and method == "GET":
            return 200, self.items[int(m.group(1))].get(m.group(2), [])
        m = re.fullmatch(r"/(issues|pulls)/(\d+)", rest)
        if m and int(m.group(2)) in self.items:
            item = self.items[int(m.group(2))]
            if method == "GET":
                return 200, item
            if method == "PATCH":
                for k in ("title", "body", "state"):
                    if k in body:
                        item[k] = body[k]
                return 200, item
        m = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if m and int(m.group(1)) in self.items:
            n = int(m.group(1))
            if method == "GET":
                return 200, self.comments_on(n)
            if method == "POST":
                cid = self.next_comment
                self.next_comment += 1
                self.comments[cid] = {
                    "id": cid,
                    "issue": n,
                    "body": body["body"],
                    "user": {"login": BOT},
                }
                return 201, self.comments[cid]
        m = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if m and int(m.group(1)) in self.comments and method == "PATCH":
            c = self.comments[int(m.group(1))]
            c["body"] = body["body"]
            return 200, c
        return 404, {"message": f"Not Found: {method} {rest}"}

    def _new_number(self) -> int:
        n = self.next_number
        self.next_number += 1
        return n


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub

    def _serve(self) -> None:
        url = urlsplit(
            self.path
        )  # absolute form through the proxy: http://api.github.localhost/...
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        self.fake.requests.append((self.command, url.path, raw))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with self.fake.lock:
            self.fake.last_headers = {k.lower(): v for k, v in self.headers.items()}
            status, doc = self.fake.handle_locked(self.command, url.path, parse_qs(url.query), body)
        data = b"" if status == 204 else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class FakeGitHubServer:
    """Runs a FakeGitHub on 127.0.0.1 in a thread; `proxy` is the HTTP_PROXY value for `gh`."""

    def __init__(self, repo: str) -> None:
        self.fake = FakeGitHub(repo)
        handler = type("Handler", (_Handler,), {"fake": self.fake})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
