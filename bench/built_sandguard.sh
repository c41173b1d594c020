# Sourced by the scripts in `bench/` and `.ci/`: builds the `sandguard` binary with the cargo
# flags given (e.g. `--release`) and prints its path, wherever the configured build target puts
# it (`.cargo/config.toml` sets one, so it is not simply `target/release`).
#
#   sandguard=$(built_sandguard --release)

built_sandguard() {
  local path
  path=$(cargo build --locked -q "$@" --bin sandguard --message-format=json |
    sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
  [ -x "$path" ] || { echo "built_sandguard: cargo built no sandguard binary" >&2; return 1; }
  printf '%s\n' "$path"
}
