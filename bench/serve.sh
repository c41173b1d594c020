#!/usr/bin/env bash
# `sandguard serve` under load, and the middleware's overhead, in one run.
#
# 1. Throughput and latency: wrk (a second process, installed from Debian when missing) sends
#    `POST /v1/sandboxes/{id}/exec {"command": ["/bin/true"]}` over loopback through the whole
#    stack (auth, ID check, rate limit, lockout, ownership, Enforcer + audit record, executor,
#    redaction) to SANDBOXES sandboxes for DURATION with CONNECTIONS connections.
#    Targets: >= 300 exec/s, p99 <= 50 ms.
# 2. Middleware overhead per request: the criterion bench `middleware` serves one axum handler
#    bare and behind the middleware stack (each request through `tower::ServiceExt::oneshot`);
#    the difference of the medians is the overhead. Target: <= 10 us.
# Needs root (the executor's namespaces and cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-20s}
connections=${CONNECTIONS:-8}
sandboxes=${SANDBOXES:-2}

command -v wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

. bench/built_sandguard.sh
sandguard=$(built_sandguard --release)
# The default policy with a rate limit the load never reaches: the check runs on every request.
. bench/serve_on_loopback.sh
serve_on_loopback "$sandguard" bench <<'TOML'
version = 1
[rate_limit]
enabled = true
quota = "1000000/s"
burst = 1000000
TOML

ids=()
for _ in $(seq "$sandboxes"); do
  ids+=("$(curl -fsS -X POST -H "Authorization: Bearer $token" "$base/v1/sandboxes" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')")
done
# One request by hand first: it must succeed, or the load would measure refusals.
curl -fsS -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"command":["/bin/true"]}' "$base/v1/sandboxes/${ids[0]}/exec" | grep -q '"exit_code":0'

lua_ids=$(printf '"%s", ' "${ids[@]}")
cat > "$work/exec.lua" <<LUA
local ids = { $lua_ids }
local n = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"command":["/bin/true"]}'
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/sandboxes/" .. ids[(n % #ids) + 1] .. "/exec")
end
local statuses = {}
response = function(status)
  if status ~= 200 then statuses[status] = (statuses[status] or 0) + 1 end
end
done = function(summary, latency)
  io.write(string.format("exec/s %.1f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("p50_ms %.2f\np99_ms %.2f\nmax_ms %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("errors %d\n", summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
wrk -t 2 -c "$connections" -d "$duration" --timeout 10s -s "$work/exec.lua" "$base" > "$work/wrk.out"
python3 - "$work/wrk.out" "$connections" "$sandboxes" <<'PY'
import sys
values = dict(line.split() for line in open(sys.argv[1]) if len(line.split()) == 2 and line.split()[0] in
              ("exec/s", "p50_ms", "p99_ms", "max_ms", "errors"))
rate, p50, p99 = float(values["exec/s"]), float(values["p50_ms"]), float(values["p99_ms"])
print(f"exec of /bin/true through sandguard serve ({sys.argv[2]} connections, {sys.argv[3]} sandboxes):")
print(f"  {rate:.0f} exec/s (target >= 300: {'met' if rate >= 300 else 'NOT met'})")
print(f"  p50 {p50:.2f} ms  p99 {p99:.2f} ms (target <= 50: {'met' if p99 <= 50 else 'NOT met'})  max {values['max_ms']} ms")
print(f"  non-200 answers or socket errors: {values['errors']}")
PY
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=
"$sandguard" audit verify "$work/audit.jsonl" | sed 's/^/  audit log after shutdown: /'

cargo bench -q -p sandguard --bench middleware -- --noplot > "$work/criterion.out" 2>&1
python3 - <<'PY'
import json
median = lambda name: json.load(open(f"target/criterion/middleware/{name}/new/estimates.json"))["median"]["point_estimate"] / 1000
bare, layered = median("bare"), median("layered")
overhead = layered - bare
print("middleware overhead per request (criterion medians, oneshot through the router):")
print(f"  bare axum route {bare:.2f} us, behind the sandguard stack {layered:.2f} us")
print(f"  overhead {overhead:.2f} us (target <= 10: {'met' if overhead <= 10 else 'NOT met'})")
PY
