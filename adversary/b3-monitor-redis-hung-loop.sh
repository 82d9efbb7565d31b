#!/usr/bin/env bash
# Monitor with a 500 ms loop, Redis paused, SIGTERM: how long and with what exit code it stops.
. "$(dirname "$0")/common.sh"
setup_schema; start_private_redis; export REDIS_URL=redis://127.0.0.1:$RP CCAT_MONITOR__LOOP_INTERVAL_MS=500; node $MONITOR > $OUT/m.log 2>&1 & p=$!; sleep 5; kill -STOP $RPID; sleep 1; t0=$(date +%s.%N); kill -TERM $p; wait $p; echo rc=$? took $(echo "$(date +%s.%N) - $t0" | bc); kill -CONT $RPID; stop_private_redis; cleanup_schema; cut -c1-400 $OUT/m.log | grep -v '"level":20' | tail -12
