#!/usr/bin/env bash
# Finding D: the Redis URL's database part is not checked.
#  redis://host:6379/abc -> the last-resort handler: "fatal: unhandled error; exiting:
#    unhandledRejection: ERR value is not an integer or out of range", exit 1 (a supervisor restarts
#    it forever). Expected: exit 2, one line naming redis.url.
#  redis://host:6379/99 (databases = 16) -> "ERR DB index is out of range" logged as a lost
#    connection, then the worker starts and writes its keys into database 0.
. "$(dirname "$0")/common.sh"
setup_schema
for app in "$WORKER" "$MONITOR"; do
  REDIS_URL=redis://127.0.0.1:6379/abc timeout -s KILL 20 node "$app" >"$OUT/app.log" 2>&1; rc=$?
  echo "$(basename "$(dirname "$(dirname "$app")")") /abc: rc=$rc; $(grep -o 'fatal: unhandled[^"]*' "$OUT/app.log" | head -1)"
done
REDIS_URL=redis://127.0.0.1:6379/abc timeout -s KILL 20 node "$CLI" status >"$OUT/cli.log" 2>&1; echo "cli /abc: rc=$?; $(head -c 300 "$OUT/cli.log")"
REDIS_URL=redis://127.0.0.1:6379/99 timeout -s TERM 8 node "$WORKER" >"$OUT/app.log" 2>&1
echo "worker /99: started=$(grep -c '"worker started"' "$OUT/app.log"); keys it wrote in db 0: $(redis-cli -n 0 --scan --pattern "adv$$:*" | wc -l)"
cleanup_schema
