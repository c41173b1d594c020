#!/usr/bin/env bash
# Cold start: `sandguard run -- /bin/true` against bubblewrap doing the same, in one run.
# Prints both medians and the ratio sandguard/bwrap (target: <= 1.0). Needs root.
#
# The two alternate in ROUNDS rounds of RUNS runs each (hyperfine per round), and every sample
# counts: on a shared or virtual machine the speed drifts over seconds, and timing one tool after
# the other would charge the drift to whichever ran in the slower half. Each round's ratio is
# printed too, to show the spread.
#
# Both programs run from copies in a fresh directory, as installed programs do (`cargo install`
# and dpkg write their files with write(2)). The linker's own output is not a fair subject: the
# page cache keeps what the linker wrote in small pages, and every start then takes more, costlier
# page faults (measured on this machine: `sandguard --version` 1.14 ms of CPU from the linker's
# file, 0.82 ms from a copy of it, and 0.65 ms from the same file once evicted and read back with
# read(2): the cost is in the page cache, not in the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-10}
runs=${RUNS:-40}

need() { command -v "$1" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need bwrap bubblewrap
need hyperfine hyperfine

. bench/built_sandguard.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$(built_sandguard --release)" "$work/sandguard"
cp "$(command -v bwrap)" "$work/bwrap"
sandguard=$work/sandguard
bwrap=$work/bwrap
for round in $(seq "$rounds"); do
  hyperfine -N --warmup 10 --runs "$runs" --export-json "$work/round-$round.json" \
    "$sandguard run -- /bin/true" \
    "$bwrap --unshare-all --die-with-parent --cap-drop ALL --ro-bind / / --dev /dev --proc /proc --tmpfs /tmp /bin/true" \
    >/dev/null
done
python3 - "$work"/round-*.json <<'PY'
import json, statistics, sys
rounds = [json.load(open(path))["results"] for path in sys.argv[1:]]
sg = [t * 1000 for r in rounds for t in r[0]["times"]]
bw = [t * 1000 for r in rounds for t in r[1]["times"]]
p99 = lambda times: sorted(times)[int(0.99 * (len(times) - 1))]
print(f"sandguard run -- /bin/true : median {statistics.median(sg):.2f} ms  p99 {p99(sg):.2f} ms  ({len(sg)} runs)")
print(f"bwrap ... /bin/true       : median {statistics.median(bw):.2f} ms  p99 {p99(bw):.2f} ms  ({len(bw)} runs)")
per_round = " ".join(f"{r[0]['median'] / r[1]['median']:.2f}" for r in rounds)
print(f"ratio per round           : {per_round}")
print(f"ratio sandguard/bwrap     : {statistics.median(sg) / statistics.median(bw):.2f}  (target <= 1.0)")
PY
