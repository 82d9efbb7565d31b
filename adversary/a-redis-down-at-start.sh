#!/usr/bin/env bash
# Finding A: Redis not reachable at start (being restarted, not up yet) -> worker and monitor exit 1
# within 100 ms ("Reached the max retries per request limit"), while an unreachable PostgreSQL is
# waited for. A connection fault at start kills the process (a supervisor crash-loop).
# Expected: wait for Redis as for PostgreSQL (readiness 503 meanwhile), start when it comes.
. "$(dirname "$0")/common.sh"
setup_schema; RP=$(free_port)
for app in "$WORKER" "$MONITOR"; do
  REDIS_URL=redis://127.0.0.1:$RP timeout -s KILL 20 node "$app" >"$OUT/app.log" 2>&1; rc=$?
  echo "$(basename "$(dirname "$(dirname "$app")")"): rc=$rc; $(grep -o 'could not start[^"]*' "$OUT/app.log" | head -1)"
done
cleanup_schema
