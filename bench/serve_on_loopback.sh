# Sourced by `.ci/api_fuzz.sh` and `bench/serve.sh`: starts `sandguard serve` on a free loopback
# port with a fresh keys file (mode 0600, one user, a random token) and the policy read from
# stdin, and stops it on exit (SIGTERM: the server destroys its sandboxes).
#
#   serve_on_loopback BINARY USER < policy.toml
#
# Sets `work` (a scratch folder: keys, policy.toml, audit.jsonl, stdout), `token`, `base`
# (http://127.0.0.1:PORT) and `server_pid`; clear `server_pid` after stopping the server yourself.

serve_on_loopback_stop() {
  if [ -n "${server_pid:-}" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}

serve_on_loopback() {
  local binary=$1 user=$2
  work=$(mktemp -d)
  server_pid=
  trap serve_on_loopback_stop EXIT
  token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
  # sandguard:allow(secret-in-command) -- printf is a builtin: the token goes to a 0600 file, not a command line
  (umask 077 && printf '%s %s\n' "$user" "$token" > "$work/keys")
  cat > "$work/policy.toml"
  "$binary" serve --listen 127.0.0.1:0 --keys "$work/keys" --audit-log "$work/audit.jsonl" \
    --policy "$work/policy.toml" > "$work/stdout" &
  server_pid=$!
  for _ in $(seq 100); do
    grep -q '^listening on ' "$work/stdout" && break
    sleep 0.1
  done
  base=$(sed -n 's/^listening on //p' "$work/stdout")
  [ -n "$base" ] || { echo "$0: the server did not start" >&2; return 1; }
}
