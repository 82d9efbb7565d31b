# Shared setup for the adversary scripts: a migrated schema of our own on the shared PostgreSQL
# (test database), a key prefix of our own, HTTP on a free port. Run from the worktree root after
# `pnpm build`.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORKER="$ROOT/apps/worker/dist/main.js"
MONITOR="$ROOT/apps/monitor-runner/dist/main.js"
CLI="$ROOT/apps/monitor-runner/dist/cli.js"
SCHEMA=${ADV_SCHEMA:-adv_conn_$$}
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/test DATABASE_SCHEMA=$SCHEMA
export CCAT_KEY_PREFIX="adv$$:" CCAT_HTTP__PORT=0 CCAT_LOG__PRETTY=false REDIS_URL=redis://127.0.0.1:6379
OUT=$(mktemp -d)
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
setup_schema() {
  psql -q -h 127.0.0.1 -U postgres test -c "create schema if not exists $SCHEMA" >/dev/null
  node "$CLI" migrate >/dev/null
}
cleanup_schema() {
  psql -q -h 127.0.0.1 -U postgres test -c "drop schema if exists $SCHEMA cascade" >/dev/null 2>&1
  redis-cli -n 0 --scan --pattern "adv$$:*" | xargs -r redis-cli -n 0 del >/dev/null
}
# A private redis-server on a free port (pid in RPID, port in RP), never the shared one.
start_private_redis() {
  RP=$(free_port)
  redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no "$@" >"$OUT/redis.log" 2>&1 &
  RPID=$!
  for _ in $(seq 50); do redis-cli -p "$RP" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "private redis did not start"; return 1
}
stop_private_redis() { kill -CONT "$RPID" 2>/dev/null; kill -KILL "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; }
