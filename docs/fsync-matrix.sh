#!/usr/bin/env bash
# Set throughput and fsyncs per acknowledged write for each --fsync policy
# at 1, 16 and 64 concurrent clients. Each run gets a fresh server and data
# dir on 127.0.0.1; the server's own counters (logged when it closes the
# log) give the fsyncs. Usage: docs/fsync-matrix.sh [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-5s}
make -s build
port=50300
printf "%-9s %7s %9s %9s %9s %14s\n" policy clients "ops/s" p50 p99 "fsyncs/write"
for policy in always everysec no; do
  for clients in 1 16 64; do
    dir=$(mktemp -d)
    bin/kvstore-server --listen 127.0.0.1:$port --http-listen "" --data-dir "$dir" --fsync $policy \
      --no-final-snapshot >/dev/null 2>"$dir.log" &
    pid=$!
    until grep -q serving "$dir.log" 2>/dev/null; do
      kill -0 $pid 2>/dev/null || { cat "$dir.log"; exit 1; }
      sleep 0.1
    done
    out=$(bin/kvstore-bench --addr 127.0.0.1:$port --clients $clients --duration "$dur" \
      --mix 100:0:0 --progress 0 2>/dev/null | awk '$1=="set"{print $3, $4, $6}')
    kill -TERM $pid; wait $pid || true
    fpw=$(awk '/log closed/ {for (i=1;i<=NF;i++) {split($i,kv,"="); v[kv[1]]=kv[2]}
      if (v["records"] > 0) printf "%.5f", v["fsyncs"]/v["records"]}' "$dir.log")
    read -r ops p50 p99 <<<"$out"
    printf "%-9s %7s %9s %9s %9s %14s\n" $policy $clients "$ops" "$p50" "$p99" "$fpw"
    rm -rf "$dir" "$dir.log"
  done
done
