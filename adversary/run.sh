#!/bin/sh
# Runs an adversary reproduction (written as a test of apps/monitor-runner) inside that package:
#   adversary/run.sh adversary/<name>.test.ts
# It is copied into apps/monitor-runner/test/ for the run and removed afterwards.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$1")
cp "$root/adversary/$name" "$root/apps/monitor-runner/test/zz-$name"
trap 'rm -f "$root/apps/monitor-runner/test/zz-$name"' EXIT
cd "$root/apps/monitor-runner" && npx vitest run "test/zz-$name"
