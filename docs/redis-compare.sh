#!/usr/bin/env bash
# Redis, for context: Debian's redis-server on 127.0.0.1 with an append-only
# file at the given appendfsync policy, driven by redis-benchmark with the
# workload of `make bench-compare` (50 clients, 16-byte values, 100k keys,
# no pipelining). Installs redis-server via apt-get when missing.
# Usage: docs/redis-compare.sh [always|everysec|no] [REQUESTS]
set -euo pipefail
policy=${1:-everysec}
requests=${2:-200000}
port=6390
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
fi
dir=$(mktemp -d)
redis-server --port $port --bind 127.0.0.1 --dir "$dir" --save "" \
  --appendonly yes --appendfsync "$policy" --daemonize no --loglevel warning >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
until redis-cli -p $port ping >/dev/null 2>&1; do sleep 0.1; done
echo "redis $(redis-server --version | awk '{print $3}') appendfsync=$policy, $requests requests per test"
# Set first so that the gets hit, as --preload does for kvstore-bench.
redis-benchmark -h 127.0.0.1 -p $port -c 50 -d 16 -r 100000 -n "$requests" -t set,get --csv
