#!/usr/bin/env bash
# Cold start: `sandguard run -- /bin/true` against bubblewrap doing the same, in one run.
# Prints both medians and the ratio sandguard/bwrap (target: <= 1.0). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-200}

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need bwrap bubblewrap
need hyperfine hyperfine

. bench/built_sandguard.sh
sandguard=$(built_sandguard --release)
out=$(mktemp)
hyperfine -N --warmup 20 --runs "$runs" --export-json "$out" \
  "$sandguard run -- /bin/true" \
  "bwrap --unshare-all --die-with-parent --cap-drop ALL --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true" \
  >/dev/null
python3 - "$out" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
sg, bw = (r["median"] * 1000 for r in results)
p = lambda r, q: sorted(r["times"])[int(q * (len(r["times"]) - 1))] * 1000
print(f"sandguard run -- /bin/true : median {sg:.2f} ms  p99 {p(results[0], .99):.2f} ms")
print(f"bwrap ... /bin/true       : median {bw:.2f} ms  p99 {p(results[1], .99):.2f} ms")
print(f"ratio sandguard/bwrap     : {sg / bw:.2f}  (target <= 1.0)")
PY
rm -f "$out"
