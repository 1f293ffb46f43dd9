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
#   pack NAME FILE               FILE, gzipped and base64, as step output NAME (none: nothing)
#   unpack FILE                  $PACKED (a `pack` output handed over by another job) into
#                                FILE; empty: no FILE (the comment then says the job failed)
#   pr-state NUMBER SHA          the pull request's registry-state/ files at SHA (its head,
#                                as the event named it), as data: regular files only
#   overrides SHA ARGS ACTOR     the labels `regops-override:RULE` on the pull request merged
#                                as SHA as `regops reconcile` arguments in ARGS (NUL-separated:
#                                --override RULE ... --reason "PR #N: title"), and who put
#                                them on it in ACTOR; no merged pull request or no label:
#                                both empty
#
# Needs GH_REPO (owner/name) and GH_TOKEN for the `gh` calls. Works on a laptop too.
# The workflows check out with persist-credentials: false, so no token sits in .git/config
# for the steps that run regops and its dependencies; the git commands here that talk to
# the remote get GH_TOKEN (when set) for that one command, through git's environment.
set -euo pipefail

MARKER="<!-- regops-plan -->"
SNAPSHOT_BRANCH="${REGOPS_SNAPSHOT_BRANCH:-regops-snapshot}"
BOT=(-c user.name="regops-bot" -c user.email="regops-bot@users.noreply.github.com")

die() { echo "gh-sync: $*" >&2; exit 1; }
# git talking to the remote: GH_TOKEN as this one command's credential (an http.extraheader
# in GIT_CONFIG_* variables, like actions/checkout's), never on a command line or on disk.
remote_git() {
  if [ -z "${GH_TOKEN:-}" ]; then
    git "$@"
    return
  fi
  local basic
  basic="$(printf 'x-access-token:%s' "$GH_TOKEN" | base64 | tr -d '\n')"
  GIT_CONFIG_COUNT=1 \
    GIT_CONFIG_KEY_0="http.${GITHUB_SERVER_URL:-https://github.com}/.extraheader" \
    GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $basic" \
    git "$@"
}
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
    remote_git fetch -q --no-tags origin "$2"
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
    remote_git push -q --force origin "HEAD:refs/heads/$branch"
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
    if remote_git fetch -q --no-tags origin "$SNAPSHOT_BRANCH" 2> /dev/null; then
      parent=(-p FETCH_HEAD)
    fi
    commit="$(git "${BOT[@]}" commit-tree "$tree" "${parent[@]}" -m "Registry snapshot $(run_url)")"
    remote_git push -q origin "$commit:refs/heads/$SNAPSHOT_BRANCH"
    echo "published $1 on $SNAPSHOT_BRANCH ($commit)"
    ;;
  fetch-snapshot)
    [ $# -eq 1 ] || die "usage: fetch-snapshot FILE"
    if remote_git fetch -q --no-tags origin "$SNAPSHOT_BRANCH" 2> /dev/null; then
      git show FETCH_HEAD:snapshot.json > "$1"
    else
      echo "no $SNAPSHOT_BRANCH branch: no snapshot published yet" >&2
    fi
    ;;
  pack)
    [ $# -eq 2 ] || die "usage: pack NAME FILE"
    if [ -s "$2" ]; then
      printf '%s=%s\n' "$1" "$(gzip -9cn "$2" | base64 | tr -d '\n')" >> "${GITHUB_OUTPUT:-/dev/stdout}"
    fi
    ;;
  unpack)
    [ $# -eq 1 ] || die "usage: unpack FILE"
    rm -f "$1"
    if [ -n "${PACKED:-}" ]; then
      # A report is at most GitHub's comment size; more is not a report.
      printf '%s' "$PACKED" | base64 -d | gzip -dc | head -c 1000000 > "$1"
    fi
    ;;
  pr-state)
    # A fork's files are data: only regular files directly under registry-state/ are
    # written, from git's objects (never checked out), so a symlink, a submodule or a
    # folder in the pull request cannot make regops read anything else.
    [ $# -eq 2 ] || die "usage: pr-state NUMBER SHA"
    remote_git fetch -q --no-tags origin "refs/pull/$1/head"
    head="$(git rev-parse FETCH_HEAD)"
    [ "$head" = "$2" ] || die "pull request #$1 is at $head now, not $2 (a newer push): its own run plans it"
    rm -rf registry-state
    mkdir registry-state
    count=0
    while IFS= read -r -d '' entry; do
      read -r mode type object size <<< "${entry%%$'\t'*}"
      path="${entry#*$'\t'}"
      case "$mode" in
        100644 | 100755) ;;
        *) die "$path: not a regular file in pull request #$1 (git mode $mode): refused" ;;
      esac
      [ "$size" -le "${REGOPS_PR_STATE_MAX_BYTES:-5000000}" ] || die "$path: $size bytes: refused"
      count=$((count + 1))
      [ "$count" -le 1000 ] || die "pull request #$1: more than 1000 files in registry-state/: refused"
      git cat-file blob "$object" > "$path"
    done < <(git ls-tree -z --long "$2" -- registry-state/)
    echo "registry-state/ from pull request #$1 at $2: $count file(s), as data"
    ;;
  overrides)
    [ $# -eq 3 ] || die "usage: overrides SHA ARGS ACTOR"
    : > "$2"
    : > "$3"
    number="$(gh api "repos/$GH_REPO/commits/$1/pulls" \
      --jq '[.[] | select(.merged_at != null)][0].number // empty')"
    if [ -z "$number" ]; then
      echo "no merged pull request for $1: no overrides"
      exit 0
    fi
    # Labels on the pull request now, and who last put each on it (the issue's events).
    mapfile -t labels < <(gh api "repos/$GH_REPO/issues/$number/labels" --paginate --jq \
      '.[].name | select(startswith("regops-override:"))')
    if [ "${#labels[@]}" -eq 0 ]; then
      echo "pull request #$number: no regops-override label"
      exit 0
    fi
    events="$(gh api "repos/$GH_REPO/issues/$number/events" --paginate --jq \
      '.[] | select(.event == "labeled") | [.label.name, .actor.login] | @tsv')"
    title="$(gh api "repos/$GH_REPO/pulls/$number" --jq '.title')"
    title="${title//[$'\t\r\n']/ }"
    actors=()
    for label in "${labels[@]}"; do
      rule="${label#regops-override:}"
      # the rule names of the state schema; anything else never reaches the command line
      [[ "$rule" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] || die "label '${label}': not a rule name"
      who="$(awk -F'\t' -v l="$label" '$1 == l { w = $2 } END { print w }' <<< "$events")"
      [[ "$who" =~ ^[A-Za-z0-9-]{1,39}(\[bot\])?$ ]] || die "label '${label}': no author found"
      printf '%s\0' --override "$rule" >> "$2"
      [[ " ${actors[*]} " == *" $who "* ]] || actors+=("$who")
    done
    printf '%s\0' --reason "PR #$number: ${title:0:400}" >> "$2"
    (IFS=,; printf '%s' "${actors[*]}") > "$3"
    echo "pull request #$number: ${#labels[@]} override(s), labelled by ${actors[*]}"
    ;;
  *)
    die "unknown command '${cmd}' (see the top of $0)"
    ;;
esac
