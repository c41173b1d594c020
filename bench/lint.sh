#!/usr/bin/env bash
# `sandguard lint` (all rules) against kingfisher and gitleaks on the same >= 100 MB of real Rust
# sources, in one run: wall time, MB/s, peak RSS and the ratios. Targets: sandguard's wall time
# <= kingfisher's, peak RSS <= 300 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

corpus=${CORPUS:-$(mktemp -d)}
if [[ -z ${CORPUS:-} ]]; then
  # Every .rs file under the cargo registry, copied so the three tools read the same tree.
  find "${CARGO_HOME:-$HOME/.cargo}/registry/src" "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*/lib/rustlib/src \
    -name '*.rs' -size -1024k -print0 2>/dev/null |
    xargs -0 -I{} cp --parents {} "$corpus" 2>/dev/null || true
fi
bytes=$(du -sb "$corpus" | cut -f1)
echo "corpus: $corpus, $((bytes / 1000000)) MB"

command -v kingfisher >/dev/null 2>&1 || pip install -q kingfisher-bin >/dev/null 2>&1 || true
# gitleaks is measured when it is installed (it is not in this machine's Debian archive).
. bench/built_sandguard.sh
sandguard=$(built_sandguard --release)

measure() { # name, command...
  local name=$1; shift
  local out; out=$(mktemp)
  /usr/bin/time -f "%e %M" -o "$out" "$@" >/dev/null 2>&1 || true
  # time(1) writes "Command exited with non-zero status N" first when the tool reports findings.
  read -r secs kib < <(tail -n 1 "$out")
  printf '%-12s %7.2f s  %7.1f MB/s  peak RSS %6.1f MB\n' "$name" "$secs" "$(echo "$bytes / 1000000 / $secs" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
  echo "$secs" >"/tmp/bench-lint-$name"
}

sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
find "$corpus" -type f -exec cat {} + >/dev/null # warm the page cache equally for all
measure sandguard "$sandguard" lint --format json "$corpus"
if command -v kingfisher >/dev/null 2>&1; then
  measure kingfisher kingfisher scan "$corpus" --no-validate --git-history none
fi
if command -v gitleaks >/dev/null 2>&1; then
  measure gitleaks gitleaks dir "$corpus" --no-banner --exit-code 0 || measure gitleaks gitleaks detect --no-git -s "$corpus" --exit-code 0
fi
for peer in kingfisher gitleaks; do
  if [[ -f /tmp/bench-lint-$peer ]]; then
    printf 'wall time sandguard/%s: %.2f\n' "$peer" "$(echo "$(cat /tmp/bench-lint-sandguard) / $(cat /tmp/bench-lint-$peer)" | bc -l)"
  fi
done
