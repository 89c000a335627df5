#!/usr/bin/env bash
# Reproduces every number in docs/BENCHMARKS.md, one section after the
# other on an otherwise idle machine, and keeps the raw output in OUT
# (default /tmp/kvstore-bench). Takes about 17 minutes on 2 cores.
# Usage: docs/benchmarks.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/kvstore-bench}
mkdir -p "$out"
make -s build

echo "== machine" | tee "$out/machine.txt"
{ nproc; grep -m1 'model name' /proc/cpuinfo; free -g | sed -n 2p; df -T . | tail -1; go version; uname -r; } | tee -a "$out/machine.txt"

echo "== go test -bench (actor, wal, snap, recovery)"
go test -run='^$' -bench='Store|Freeze|WriteAfterFreeze|ExpireMillion' -benchmem ./actor/ | tee "$out/actor.txt"
go test -run='^$' -bench='SnapshotMemory' -benchtime=1x ./actor/ | tee "$out/actor-memory.txt"
go test -run='^$' -bench='GroupCommit' -benchmem ./wal/ | tee "$out/wal.txt"
go test -run='^$' -bench='Write|Load' -benchmem ./snap/ | tee "$out/snap.txt"
go test -run='^$' -bench='Recovery' -benchtime=3x ./cmd/server/ | tee "$out/recovery.txt"

echo "== set throughput per fsync policy"
docs/fsync-matrix.sh 5s | tee "$out/fsync-matrix.txt"

compare() { # name, server args
  echo "== kvstore vs baseline: $2"
  bin/kvstore-bench --compare --server-bin bin/kvstore-server --rounds 3 --duration 5s \
    --clients 50 --value-size 16 --keys 100000 \
    --server-args "$2 --log-level warn" 2>/dev/null | tee "$out/compare-$1.txt"
}
echo "== kvstore vs baseline, --fsync everysec (draws docs/latency.svg)"
make -s bench-compare 2>/dev/null | tee "$out/compare-everysec.txt"
compare always "--fsync always"
# What the GC heap floor and the log's preallocation are worth.
compare everysec-nofloor "--fsync everysec --gc-heap-floor 0"
compare always-noprealloc "--fsync always --wal-prealloc-bytes 0"

echo "== redis, for context"
docs/redis-compare.sh everysec 200000 | tee "$out/redis-everysec.txt"
docs/redis-compare.sh always 200000 | tee "$out/redis-always.txt"
