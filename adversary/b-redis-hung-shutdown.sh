#!/usr/bin/env bash
# Finding B: a hung Redis (SIGSTOP) makes SIGTERM end in "shutdown took too long; exiting", exit 1,
# after graceMs + closeTimeoutMs + 5 s (worker, 50 s with defaults) / 15 s (monitor), though nothing
# was in flight: main.ts awaits redis.quit(), which never settles while Redis does not answer.
# Expected: exit 0 within the shutdown bound, connections dropped when quit gets no answer.
. "$(dirname "$0")/common.sh"
setup_schema; start_private_redis; export REDIS_URL=redis://127.0.0.1:$RP
for app in "$WORKER" "$MONITOR"; do
  node "$app" >"$OUT/app.log" 2>&1 & p=$!
  for _ in $(seq 100); do grep -q '"msg":"\(worker\|monitor\) started"' "$OUT/app.log" && break; sleep 0.2; done
  kill -STOP "$RPID"; sleep 1
  t0=$(date +%s); kill -TERM $p; wait $p; rc=$?; t1=$(date +%s)
  kill -CONT "$RPID"
  echo "$(basename "$(dirname "$(dirname "$app")")"): exit $rc after $((t1 - t0)) s; last line: $(tail -1 "$OUT/app.log" | cut -c1-200)"
done
stop_private_redis; cleanup_schema
