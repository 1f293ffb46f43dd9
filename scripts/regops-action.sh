#!/usr/bin/env bash
# The regops Action's two steps that are not GitHub plumbing (that is gh-sync.sh):
#
#   install   install regops: VERSION from the package index into $RUNNER_TEMP, else the
#             action's own checkout ($ACTION_PATH) with `make install-core` (its venv is
#             $VENV, default .venv under the checkout); prints bin=DIR as a step output and
#             puts DIR on the job's PATH
#   run       run COMMAND (plan | apply | drift | snapshot) with STATE_DIR, ENV_NAME,
#             ALL_ENVS, REPORT, PLAN_JSON, LIVE; writes exit-code, changes-pending, plan-json, report
#             and snapshot as step outputs, and always exits 0 (the action's last step
#             turns the code into the verdict, after the comment and the issue are posted)
#
# Every value comes from the environment (action.yml's env:), never from a template. Works
# on a laptop too (outputs then go to stdout), and on bash 3.2 (macOS runners): an empty
# array is expanded as ${a[@]+"${a[@]}"} under set -u.
set -euo pipefail

die() { echo "regops-action: $*" >&2; exit 1; }
OUT="${GITHUB_OUTPUT:-/dev/stdout}"

install() {
  local venv bin
  if [ -n "${VERSION:-}" ]; then
    [[ "$VERSION" =~ ^[0-9][0-9A-Za-z.+!-]{0,63}$ ]] || die "version '$VERSION' is not a version"
    venv="${RUNNER_TEMP:-/tmp}/regops-venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "regops[rules]==$VERSION"
  else
    [ -n "${ACTION_PATH:-}" ] || die "ACTION_PATH (the action's checkout) is not set"
    make -C "$ACTION_PATH" --no-print-directory install-core
    venv="${VENV:-.venv}"
    case "$venv" in /*) ;; *) venv="$ACTION_PATH/$venv" ;; esac
  fi
  bin="$(cd "$venv/bin" && pwd)"
  "$bin/regops" --version
  echo "bin=$bin" >> "$OUT"
  if [ -n "${GITHUB_PATH:-}" ]; then echo "$bin" >> "$GITHUB_PATH"; fi
}

run() {
  local regops="${REGOPS_BIN:+$REGOPS_BIN/}regops" code=0 args=()
  [ -z "${STATE_DIR:-}" ] || args+=(--state-dir "$STATE_DIR")
  [ -z "${ENV_NAME:-}" ] || args+=(--env "$ENV_NAME")
  local report="${REPORT:-report.md}" plan="${PLAN_JSON:-plan.json}" live="${LIVE:-}"
  case "${COMMAND:-}" in
    plan | drift)
      local from=()
      if [ "${ALL_ENVS:-false}" = true ]; then
        from=(--all-envs)
      fi
      if [ "${COMMAND}" = plan ] && [ -n "$live" ]; then
        [ "$live" != published ] || live=snapshot.json
        from+=(--live "$live")
        echo "snapshot=$live" >> "$OUT"
      fi
      # The drift check tells the notify: receivers of regops.yaml about drift; a PR's
      # plan never sends (it runs where no secret may be).
      if [ "${COMMAND}" = drift ]; then from+=(--notify-drift); fi
      rm -f "$plan"
      "$regops" ${args[@]+"${args[@]}"} plan --detailed-exitcode ${from[@]+"${from[@]}"} --report "$report" --out "$plan" || code=$?
      if [ -s "$plan" ]; then echo "plan-json=$plan" >> "$OUT"; fi
      ;;
    apply)
      # Overrides from the merged PR's labels: arguments read back as data (NUL-separated),
      # with a loop that bash 3.2 (macOS runners) has too.
      local overrides=()
      if [ -n "${OVERRIDES:-}" ] && [ -s "$OVERRIDES" ]; then
        while IFS= read -r -d '' a; do overrides+=("$a"); done < "$OVERRIDES"
      fi
      if [ -n "${OVERRIDE_ACTOR:-}" ] && [ -s "$OVERRIDE_ACTOR" ]; then
        REGOPS_OVERRIDE_ACTOR="$(cat "$OVERRIDE_ACTOR")"
        export REGOPS_OVERRIDE_ACTOR
      fi
      # pipefail (set above): the code is regops', not tee's.
      "$regops" ${args[@]+"${args[@]}"} reconcile ${overrides[@]+"${overrides[@]}"} --format markdown | tee "$report" >> "${GITHUB_STEP_SUMMARY:-/dev/stdout}" || code=$?
      ;;
    snapshot)
      "$regops" ${args[@]+"${args[@]}"} snapshot --out snapshot.json || code=$?
      echo "snapshot=snapshot.json" >> "$OUT"
      ;;
    *)
      die "command '${COMMAND:-}' is not one of plan, apply, drift, snapshot"
      ;;
  esac
  case "$code" in 2 | 3) pending=true ;; *) pending=false ;; esac
  {
    echo "exit-code=$code"
    echo "changes-pending=$pending"
    echo "report=$report"
  } >> "$OUT"
}

case "${1:-}" in
  install) install ;;
  run) run ;;
  *) die "usage: $0 install|run" ;;
esac
