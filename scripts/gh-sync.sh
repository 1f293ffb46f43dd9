#!/usr/bin/env bash
# GitHub and git plumbing for the workflows, one home for all of it: each workflow step
# calls one subcommand. What the reports *say* is decided by regops; this only moves
# files to GitHub with the GitHub CLI (REST calls through `gh api`) and git.
#
#   comment NUMBER FILE          create or update the one plan comment on a pull request
#   summary FILE                 append FILE (or a note that it is missing) to the job summary
#   issue TITLE FILE             open the one open issue titled TITLE, or update its body
#   close-issue TITLE MESSAGE    close that issue with a comment, if one is open
#   start-branch BRANCH BASE     (re)start BRANCH from the remote's BASE
#   pull-request BRANCH BASE TITLE FILE
#                                commit registry-state/ on BRANCH, push it, and open the
#                                one pull request from BRANCH or update its title and body
#   publish-snapshot FILE        commit FILE as snapshot.json on the regops-snapshot branch
#   fetch-snapshot FILE          the latest published snapshot into FILE (absent: no file)
#   pr-state NUMBER              the pull request's registry-state/ files (data only)
#
# Needs GH_REPO (owner/name) and GH_TOKEN for the `gh` calls. Works on a laptop too.
set -euo pipefail

MARKER="<!-- regops-plan -->"
SNAPSHOT_BRANCH="${REGOPS_SNAPSHOT_BRANCH:-regops-snapshot}"
BOT=(-c user.name="regops-bot" -c user.email="regops-bot@users.noreply.github.com")

die() { echo "gh-sync: $*" >&2; exit 1; }
api() { gh api -H "Accept: application/vnd.github+json" "$@"; }
run_url() {
  if [ -n "${GITHUB_RUN_ID:-}" ]; then
    echo "${GITHUB_SERVER_URL:-https://github.com}/${GH_REPO}/actions/runs/${GITHUB_RUN_ID}"
  fi
}

# A report that was never written: the job failed before regops could say why.
missing_report() {
  printf '%s\n### ❌ regops plan: the job failed before it could report\n\n' "$MARKER"
  printf 'No report was written (an earlier step failed, e.g. installing regops). '
  printf 'See the workflow run: %s\n' "$(run_url)"
}

report_or_note() {
  if [ -s "$1" ]; then cat "$1"; else missing_report; fi
}

# The first issue (or pull request) comment carrying the marker: the one we keep updating.
find_comment() {
  api "repos/$GH_REPO/issues/$1/comments" --paginate \
    --jq ".[] | select(.body | contains(\"$MARKER\")) | .id" | head -n 1
}

find_issue() {
  api "repos/$GH_REPO/issues?state=open&per_page=100" --paginate \
    --jq ".[] | select(.pull_request == null and .title == \"$1\") | .number" | head -n 1
}

find_pull() {
  api "repos/$GH_REPO/pulls?state=open&head=${GH_REPO%%/*}:$1" --jq '.[0].number // empty'
}

cmd="${1:-}"
shift || true
case "$cmd" in
  comment)
    [ $# -eq 2 ] || die "usage: comment NUMBER FILE"
    body="$(mktemp)"
    report_or_note "$2" > "$body"
    id="$(find_comment "$1")"
    if [ -n "$id" ]; then
      api --method PATCH "repos/$GH_REPO/issues/comments/$id" -F "body=@$body" --jq .html_url
    else
      api --method POST "repos/$GH_REPO/issues/$1/comments" -F "body=@$body" --jq .html_url
    fi
    ;;
  summary)
    [ $# -eq 1 ] || die "usage: summary FILE"
    report_or_note "$1" >> "${GITHUB_STEP_SUMMARY:-/dev/stdout}"
    ;;
  issue)
    [ $# -eq 2 ] || die "usage: issue TITLE FILE"
    number="$(find_issue "$1")"
    if [ -n "$number" ]; then
      api --method PATCH "repos/$GH_REPO/issues/$number" -F "body=@$2" --jq .html_url
    else
      api --method POST "repos/$GH_REPO/issues" -f "title=$1" -F "body=@$2" --jq .html_url
    fi
    ;;
  close-issue)
    [ $# -eq 2 ] || die "usage: close-issue TITLE MESSAGE"
    number="$(find_issue "$1")"
    if [ -n "$number" ]; then
      api --method POST "repos/$GH_REPO/issues/$number/comments" -f "body=$2 $(run_url)" > /dev/null
      api --method PATCH "repos/$GH_REPO/issues/$number" -f state=closed --jq .html_url
    fi
    ;;
  start-branch)
    [ $# -eq 2 ] || die "usage: start-branch BRANCH BASE"
    git fetch -q --no-tags origin "$2"
    git switch -q -C "$1" FETCH_HEAD
    ;;
  pull-request)
    [ $# -eq 4 ] || die "usage: pull-request BRANCH BASE TITLE FILE"
    branch="$1" base="$2" title="$3" body="$4"
    git add registry-state
    if git diff --cached --quiet; then
      echo "registry-state already holds these versions on $base: nothing to propose"
      exit 0
    fi
    git "${BOT[@]}" commit -q -m "$title" -m "Proposed by $(run_url)"
    # The one proposal branch is rebuilt from the base on every run (and re-run).
    git push -q --force origin "HEAD:refs/heads/$branch"
    number="$(find_pull "$branch")"
    if [ -n "$number" ]; then
      api --method PATCH "repos/$GH_REPO/pulls/$number" -f "title=$title" -F "body=@$body" --jq .html_url
    else
      api --method POST "repos/$GH_REPO/pulls" -f "title=$title" -f "head=$branch" \
        -f "base=$base" -F "body=@$body" --jq .html_url
    fi
    ;;
  publish-snapshot)
    [ $# -eq 1 ] || die "usage: publish-snapshot FILE"
    [ -s "$1" ] || die "$1: no snapshot to publish"
    # A commit on its own branch, built without touching the work tree.
    blob="$(git hash-object -w "$1")"
    tree="$(printf '100644 blob %s\tsnapshot.json\n' "$blob" | git mktree)"
    parent=()
    if git fetch -q --no-tags origin "$SNAPSHOT_BRANCH" 2> /dev/null; then
      parent=(-p FETCH_HEAD)
    fi
    commit="$(git "${BOT[@]}" commit-tree "$tree" "${parent[@]}" -m "Registry snapshot $(run_url)")"
    git push -q origin "$commit:refs/heads/$SNAPSHOT_BRANCH"
    echo "published $1 on $SNAPSHOT_BRANCH ($commit)"
    ;;
  fetch-snapshot)
    [ $# -eq 1 ] || die "usage: fetch-snapshot FILE"
    if git fetch -q --no-tags origin "$SNAPSHOT_BRANCH" 2> /dev/null; then
      git show FETCH_HEAD:snapshot.json > "$1"
    else
      echo "no $SNAPSHOT_BRANCH branch: no snapshot published yet" >&2
    fi
    ;;
  pr-state)
    [ $# -eq 1 ] || die "usage: pr-state NUMBER"
    git fetch -q --no-tags origin "refs/pull/$1/head"
    rm -rf registry-state
    git restore --source FETCH_HEAD --worktree -- registry-state
    ;;
  *)
    die "unknown command '${cmd}' (see the top of $0)"
    ;;
esac
