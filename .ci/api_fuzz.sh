#!/usr/bin/env bash
# Fuzz the sandbox service (`sandguard serve`) from its own OpenAPI document with schemathesis:
# bounded examples per operation; the checks are "no 5xx" and "every response matches its
# documented schema". Two runs: one with generated sandbox IDs (mostly 400/404, as they should
# be), one against a real sandbox (every operation runs for real). The server listens on
# loopback only and is stopped (SIGTERM: sandboxes destroyed) at the end; its audit log must
# then verify. About 30 s once schemathesis is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${API_FUZZ_EXAMPLES:-50}
venv=target/schemathesis-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
. bench/built_sandguard.sh
sandguard=$(built_sandguard)
schemathesis=$PWD/$venv/bin/schemathesis

# The default policy, without lockout and with a high rate limit: refusals the fuzzer provokes
# on purpose must not turn every later request into a 429.
. bench/serve_on_loopback.sh
serve_on_loopback "$sandguard" fuzzer <<'TOML'
version = 1
[rate_limit]
enabled = true
quota = "1000/s"
burst = 1000
[lockout]
enabled = false
TOML

# $1: a schemathesis config file (or /dev/null); the rest: more `run` options.
run_schemathesis() {
  local config=$1
  shift
  # From the scratch folder: schemathesis keeps a cache in its working directory.
  (cd "$work" && "$schemathesis" --config-file "$config" run "$base/openapi.json" "$@" \
    -H "Authorization: Bearer $token" \
    --checks not_a_server_error,response_schema_conformance \
    --phases examples,coverage,fuzzing -n "$EXAMPLES" --seed 1 \
    --generation-database none --no-color --request-timeout 60)
}

echo "-- generated sandbox IDs"
run_schemathesis /dev/null
echo "-- one real sandbox"
id=$(curl -fsS -X POST -H "Authorization: Bearer $token" "$base/v1/sandboxes" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
printf '[parameters]\n"path.id" = "%s"\n' "$id" > "$work/schemathesis.toml"
run_schemathesis "$work/schemathesis.toml" --exclude-operation-id destroySandbox

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" -eq 0 ] || { echo "api fuzz: the server exited with $status on SIGTERM" >&2; exit 1; }
grep -q "\"action\":\"sandbox.destroy\",\"outcome\":\"allowed\"" "$work/audit.jsonl" \
  || { echo "api fuzz: no sandbox destroyed at shutdown" >&2; exit 1; }
"$sandguard" audit verify "$work/audit.jsonl"
