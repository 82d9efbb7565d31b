#!/usr/bin/env bash
# Finding C: SIGHUP (a closed terminal, a supervisor's reload) and SIGUSR2 kill worker and monitor at
# once by Node's default action: no graceful shutdown, running tasks neither finished nor released
# (their rows stay in_progress until the stall timeout, 1 h by default).
# Expected: SIGHUP handled like SIGTERM (graceful, exit 0).
. "$(dirname "$0")/common.sh"
setup_schema
for app in "$WORKER" "$MONITOR"; do
  for sig in HUP USR2; do
    node "$app" >"$OUT/app.log" 2>&1 & p=$!
    for _ in $(seq 100); do grep -q '"msg":"\(worker\|monitor\) started"' "$OUT/app.log" && break; sleep 0.2; done
    kill -$sig $p; wait $p 2>/dev/null; rc=$?
    echo "$(basename "$(dirname "$(dirname "$app")")") SIG$sig: exit $rc; shutdown logged: $(grep -c 'signal received' "$OUT/app.log")"
  done
done
cleanup_schema
