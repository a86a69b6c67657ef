# The quickstart's steps, shared by scripts/quickstart.sh (Rust) and
# scripts/quickstart-python.sh (the seed's Python files): sourced, never run.
#
# Each step prints what it runs and fails the script, in red, when the quickstart's
# promised output does not appear. The worker is stopped on exit, whatever happened.

bold=$(tput bold 2>/dev/null || true); green=$(tput setaf 2 2>/dev/null || true)
red=$(tput setaf 1 2>/dev/null || true); reset=$(tput sgr0 2>/dev/null || true)
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
fail() { printf '%sFAILED: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }
done_in_green() { printf '\n%s%s%s%s\n' "$green" "$bold" "$*" "$reset"; }

worker_pid=""
trap '[ -n "$worker_pid" ] && kill "$worker_pid" 2>/dev/null || true' EXIT

# start_worker LOG COMMAND...: the worker in the background, ready once it has logged
# its listener (send_welcome_email); its log is shown.
start_worker() {
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  worker_pid=$!
  for _ in $(seq 100); do
    grep -q "send_welcome_email" "$log" 2>/dev/null && break
    kill -0 "$worker_pid" 2>/dev/null || { cat "$log"; fail "the worker exited"; }
    sleep 0.1
  done
  sed 's/^/    /' "$log"
}

# check_call COMMAND...: the RPC, which must print "Password valid!".
check_call() {
  local output
  output=$("$@")
  echo "    $output"
  [ "$output" = "Password valid!" ] || fail "expected 'Password valid!'"
}

# expect_welcome_email LOG: waits for the worker's event handler to print the email.
expect_welcome_email() {
  local log=$1
  step "Waiting for the worker to send the welcome email"
  for _ in $(seq 100); do
    grep -q "^To: admin@example.com" "$log" && break
    sleep 0.1
  done
  grep -E "^(Subject|To):" "$log" | sed 's/^/    /'
  grep -q "^Subject: Welcome to our site, admin$" "$log" || fail "the worker printed no welcome email"
}

# stop_worker: SIGTERM, and the worker must exit cleanly.
stop_worker() {
  step "Stopping the worker (SIGTERM)"
  kill -TERM "$worker_pid"
  local status=0
  wait "$worker_pid" || status=$?
  worker_pid=""
  [ "$status" -eq 0 ] || fail "the worker exited with status $status"
}
