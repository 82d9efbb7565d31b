#!/usr/bin/env bash
# Finding B (start side): rediss:// to a plain Redis. The worker logs "could not start" and then
# never exits (the catch awaits redis.quit() on a connection whose TLS handshake never completes).
# Expected: exit at once, non-zero. Here: still alive 30 s later (timeout kills it: rc 124).
. "$(dirname "$0")/common.sh"
setup_schema
for app in "$WORKER" "$MONITOR"; do
  REDIS_URL=rediss://127.0.0.1:6379 timeout -s KILL 30 node "$app" >"$OUT/app.log" 2>&1; rc=$?
  echo "$(basename "$(dirname "$(dirname "$app")")"): rc=$rc ($( [ $rc = 137 ] && echo 'HUNG: killed by timeout after 30 s' || echo exited))"
  grep -o 'could not start[^"]*' "$OUT/app.log" | head -1
done
cleanup_schema
