#!/usr/bin/env bash
# kvstore's Redis front beside Redis itself, on this machine, in one run:
# the table of issue 16 in docs/BENCHMARKS.md. Both servers run at once on
# 127.0.0.1 with the same persistence (kvstore --fsync P, Redis
# appendonly yes appendfsync P, no RDB saves), for P = everysec, then
# always. kvstore runs twice: as started by default (GOMAXPROCS = the
# CPUs) and with GOMAXPROCS=1, Redis' one thread for commands — on a
# small machine shared with the load generator the second is faster.
# Each round runs every line on all three, the order rotating by round,
# and the table shows the median of the rounds:
#   redis-benchmark -t set,get -c 50 -n REQUESTS -d 16 -r 100000 [-P 16]
#   kvstore-bench --redis (go-redis v9, 50 clients), SET then GET, DURATION (10s) each
# Installs redis-server and redis-tools via apt-get when missing; builds
# kvstore from this checkout.
# Usage: docs/resp-compare.sh [ROUNDS] [REQUESTS] [POLICIES]
set -euo pipefail
rounds=${1:-3}
requests=${2:-1000000}
policies=${3:-everysec always}
duration=${DURATION:-10s} # of each go-redis run
declare -A port=([kvstore]=6391 [kvstore-1p]=6393 [redis]=6392)

cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get install -y -qq redis-server redis-tools >/dev/null
fi
work=$(mktemp -d)
pids=()
stop() {
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  pids=()
}
trap 'stop; rm -rf "$work"' EXIT
go build -o "$work/kvstore-server" ./cmd/server
go build -o "$work/kvstore-bench" ./cmd/bench

results=$work/results.csv # policy,line,server,test,rps,p99_ms
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)" >&2
echo "redis: $(redis-server --version | awk '{print $3}'); kvstore: $(git rev-parse --short HEAD)$(git diff --quiet || echo +dirty)" >&2

for policy in $policies; do
  "$work/kvstore-server" --data-dir "$work/kv-$policy" --fsync "$policy" \
    --listen 127.0.0.1:50072 --resp-listen 127.0.0.1:${port[kvstore]} >"$work/kv-$policy.log" 2>&1 &
  pids+=($!)
  GOMAXPROCS=1 "$work/kvstore-server" --data-dir "$work/kv1-$policy" --fsync "$policy" \
    --listen 127.0.0.1:50073 --resp-listen 127.0.0.1:${port[kvstore-1p]} >"$work/kv1-$policy.log" 2>&1 &
  pids+=($!)
  redis-server --port ${port[redis]} --bind 127.0.0.1 --dir "$work" --save "" \
    --appendonly yes --appendfsync "$policy" --appendfilename "ao-$policy.aof" \
    --daemonize no --loglevel warning >"$work/redis-$policy.log" 2>&1 &
  pids+=($!)
  for server in "${!port[@]}"; do
    until redis-cli -p ${port[$server]} ping >/dev/null 2>&1; do sleep 0.1; done
  done
  for round in $(seq "$rounds"); do
    case $((round % 3)) in
    1) order="kvstore redis kvstore-1p" ;;
    2) order="redis kvstore-1p kvstore" ;;
    0) order="kvstore-1p kvstore redis" ;;
    esac
    for pipeline in 1 16; do
      for server in $order; do
        redis-benchmark -h 127.0.0.1 -p ${port[$server]} -c 50 -n "$requests" -d 16 -r 100000 \
          -P $pipeline -t set,get --csv | tail -n +2 | tr -d '"' |
          awk -F, -v p="$policy" -v l="redis-benchmark -P $pipeline" -v s=$server \
            '{print p "," l "," s "," $1 "," $2 "," $7}' >>"$results"
        echo "$policy round $round: $server -P $pipeline done" >&2
      done
    done
    for server in $order; do
      for mix in 100:0:0 0:100:0; do
        "$work/kvstore-bench" --redis --addr 127.0.0.1:${port[$server]} --clients 50 --mix $mix \
          --duration "$duration" --progress 0 --json |
          python3 -c '
import json, sys
r = json.load(sys.stdin)
op = r["ops"][0]
print("%s,go-redis,%s,%s,%.2f,%.3f" % (sys.argv[1], sys.argv[2], op["op"].upper(), op["ops_per_sec"], op["p99_ns"] / 1e6))
' "$policy" $server >>"$results"
      done
      echo "$policy round $round: $server go-redis done" >&2
    done
  done
  stop
done

python3 - "$results" <<'EOF'
import csv, statistics, sys
cells = {}
for policy, line, server, test, rps, p99 in csv.reader(open(sys.argv[1])):
    cells.setdefault((policy, line, test), {}).setdefault(server, []).append((float(rps), float(p99)))
print("| fsync | client | test | kvstore | kvstore req/s | Redis req/s | ratio | kvstore p99 ms | Redis p99 ms | p99 ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (policy, line, test), by in cells.items():
    rd = by["redis"]
    rrps, rp99 = statistics.median(r for r, _ in rd), statistics.median(p for _, p in rd)
    for variant, name in (("kvstore", "default"), ("kvstore-1p", "GOMAXPROCS=1")):
        kv = by[variant]
        krps, kp99 = statistics.median(r for r, _ in kv), statistics.median(p for _, p in kv)
        print(f"| {policy} | {line} | {test} | {name} | {krps:,.0f} | {rrps:,.0f} | {krps / rrps:.2f} | "
              f"{kp99:.3f} | {rp99:.3f} | {kp99 / rp99:.2f} |")
EOF
