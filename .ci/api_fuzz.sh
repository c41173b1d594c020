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
cargo build --locked -q --bin sandguard
sandguard=target/debug/sandguard
schemathesis=$PWD/$venv/bin/schemathesis

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
# sandguard:allow(secret-in-command) -- printf is a builtin: the token goes to a 0600 file, not a command line
(umask 077 && printf 'fuzzer %s\n' "$token" > "$work/keys")
# The default policy, without lockout and with a high rate limit: refusals the fuzzer provokes
# on purpose must not turn every later request into a 429.
cat > "$work/policy.toml" <<'TOML'
version = 1
[rate_limit]
enabled = true
quota = "1000/s"
burst = 1000
[lockout]
enabled = false
TOML

"$sandguard" serve --listen 127.0.0.1:0 --keys "$work/keys" --audit-log "$work/audit.jsonl" \
  --policy "$work/policy.toml" > "$work/stdout" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/stdout" && break
  sleep 0.1
done
base=$(sed -n 's/^listening on //p' "$work/stdout")
[ -n "$base" ] || { echo "api fuzz: the server did not start" >&2; exit 1; }

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
