#!/usr/bin/env bash
# cluster-vs-etcd.sh: the same load on a 3-node kvstore cluster and a
# 3-member etcd cluster, on this machine, and the median ratios.
#
# Starts both clusters on 127.0.0.1 (kvstore: client ports 50061-50063,
# raft 7061-7063; etcd: client 2382-2384, peer 2392-2394) in a temporary
# directory, waits until each has a leader, then for ROUNDS rounds runs
# kvstore-bench against each in turn (the order flips every round) for the
# mixes 100:0:0 (set only) and 50:50:0 (set:get), with the --conns
# connections spread over the three nodes (kvstore-bench --addr A1,A2,A3;
# --etcd for etcd's v3 KV API). The first run on each system --preloads
# every key; the data stays for the runs after it. It prints the median
# throughput and p99 of each system and workload, and the kvstore/etcd
# ratios (throughput above 1, p99 below 1: kvstore does better).
#
# Both sides are durable and replicated: kvstore commits every write on a
# quorum of raft logs (fsynced), etcd on a quorum of WALs; gets are
# linearizable on both (kvstore's default, etcd's Range without
# serializable). Followers forward to the leader on both.
#
# Usage, from the repository (make build first):
#   docs/cluster-vs-etcd.sh
#   ROUNDS=1 DURATION=2s docs/cluster-vs-etcd.sh     # a quick look
# Settings (environment): ROUNDS (3), DURATION (6s), CLIENTS (50),
# VALUE_SIZE (16), KEYS (100000), MIXES ("100:0:0 50:50:0"), BIN (bin),
# ETCD (etcd on PATH, else /usr/bin/etcd).
#
# Installs nothing: it says what is missing (make build; apt-get install
# etcd-server; curl). Everything it starts is killed on exit.
set -euo pipefail

cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-6s}
CLIENTS=${CLIENTS:-50}
VALUE_SIZE=${VALUE_SIZE:-16}
KEYS=${KEYS:-100000}
MIXES=${MIXES:-"100:0:0 50:50:0"}
BIN=${BIN:-bin}
ETCD=${ETCD:-$(command -v etcd || echo /usr/bin/etcd)}

missing=()
for b in kvstore-server kvstore-client kvstore-bench; do
	[[ -x $BIN/$b ]] || missing+=("$BIN/$b (run: make build)")
done
[[ -x $ETCD ]] || missing+=("etcd at $ETCD (Debian/Ubuntu: apt-get install etcd-server; or set ETCD=/path/to/etcd)")
command -v curl >/dev/null || missing+=("curl (apt-get install curl)")
if ((${#missing[@]})); then
	echo "cluster-vs-etcd: missing:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi

# etcd refuses to start on architectures it does not support unless told.
case $(uname -m) in
x86_64 | aarch64 | ppc64le) ;;
*) export ETCD_UNSUPPORTED_ARCH=${ETCD_UNSUPPORTED_ARCH:-$("$ETCD" --version 2>/dev/null | sed -n 's,^Go OS/Arch: .*/,,p')} ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cluster-vs-etcd.XXXXXX")
pids=()
cleanup() {
	local code=$?
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if ((code != 0)) && [[ -d $tmp ]]; then
		for log in "$tmp"/*.log; do
			[[ -s $log ]] || continue
			echo "--- last lines of $(basename "$log")" >&2
			tail -n 5 "$log" >&2
		done
	fi
	rm -rf "$tmp"
	exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in 50061 50062 50063 7061 7062 7063 2382 2383 2384 2392 2393 2394; do
	if (: </dev/tcp/127.0.0.1/$port) 2>/dev/null; then
		echo "cluster-vs-etcd: 127.0.0.1:$port is in use; stop what listens there" >&2
		exit 1
	fi
done

kv_addrs=127.0.0.1:50061,127.0.0.1:50062,127.0.0.1:50063
etcd_addrs=127.0.0.1:2382,127.0.0.1:2383,127.0.0.1:2384

echo "starting a 3-node kvstore cluster ($kv_addrs) and a 3-member etcd cluster ($etcd_addrs) in $tmp" >&2
initial=n1=127.0.0.1:7061,n2=127.0.0.1:7062,n3=127.0.0.1:7063
for n in 1 2 3; do
	"$BIN/kvstore-server" --node-id "n$n" --listen "127.0.0.1:5006$n" --raft-listen "127.0.0.1:706$n" \
		--initial-cluster "$initial" --data-dir "$tmp/kv$n" --log-level warn >"$tmp/kv$n.log" 2>&1 &
	pids+=($!)
done
etcd_initial=e1=http://127.0.0.1:2392,e2=http://127.0.0.1:2393,e3=http://127.0.0.1:2394
for n in 1 2 3; do
	client=http://127.0.0.1:$((2381 + n))
	peer=http://127.0.0.1:$((2391 + n))
	"$ETCD" --name "e$n" --data-dir "$tmp/e$n" \
		--listen-client-urls "$client" --advertise-client-urls "$client" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$etcd_initial" --initial-cluster-state new \
		--logger zap --log-outputs stderr --log-level error >"$tmp/e$n.log" 2>&1 &
	pids+=($!)
done

# wait_for NAME CMD...: until CMD succeeds, for up to 30 s.
wait_for() {
	local name=$1
	shift
	for _ in $(seq 150); do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		for pid in "${pids[@]}"; do
			if ! kill -0 "$pid" 2>/dev/null; then
				echo "cluster-vs-etcd: a server exited while waiting for $name" >&2
				exit 1
			fi
		done
		sleep 0.2
	done
	echo "cluster-vs-etcd: $name not ready after 30s" >&2
	exit 1
}
kv_has_leader() {
	local status
	status=$("$BIN/kvstore-client" --addr 127.0.0.1:50061 cluster status 2>/dev/null) || return 1
	[[ $status == *"leader n"[0-9]* ]]
}
etcd_healthy() {
	local n health
	for n in 2382 2383 2384; do
		health=$(curl -fsS "http://127.0.0.1:$n/health" 2>/dev/null) || return 1
		[[ $health == *'"health":"true"'* ]] || return 1
	done
}
wait_for "the kvstore cluster's leader" kv_has_leader
wait_for "etcd's health" etcd_healthy
echo "both clusters are up" >&2

# total FILE: "ops_per_sec p99_ns" of the total of a kvstore-bench --json
# report (indented JSON: the total object is the last one).
total() {
	awk '/"total": \{/ { t = 1 }
		t && /"ops_per_sec":/ { gsub(/[ ,]/, "", $2); ops = $2 }
		t && /"p99_ns":/ { gsub(/[ ,]/, "", $2); p99 = $2 }
		END { if (ops == "" || p99 == "") exit 1; print ops, p99 }' "$1"
}

results=$tmp/results
: >"$results"
preloaded_kvstore="" preloaded_etcd=""

# measure SYSTEM MIX ROUND: one kvstore-bench run, appended to $results.
measure() {
	local sys=$1 mix=$2 round=$3 args=()
	local -n preloaded=preloaded_$sys
	if [[ $sys == etcd ]]; then
		args=(--addr "$etcd_addrs" --etcd)
	else
		args=(--addr "$kv_addrs")
	fi
	if [[ -z $preloaded ]]; then
		args+=(--preload)
		preloaded=yes
	fi
	local out=$tmp/$sys-$round-${mix//:/-}.json
	if ! "$BIN/kvstore-bench" "${args[@]}" --clients "$CLIENTS" --value-size "$VALUE_SIZE" --keys "$KEYS" \
		--duration "$DURATION" --mix "$mix" --progress 0 --json >"$out" 2>"$tmp/bench.log"; then
		echo "cluster-vs-etcd: kvstore-bench against $sys failed:" >&2
		cat "$tmp/bench.log" >&2
		exit 1
	fi
	local line ops p99
	if ! line=$(total "$out"); then
		echo "cluster-vs-etcd: no total in the report of $sys:" >&2
		cat "$out" >&2
		exit 1
	fi
	read -r ops p99 <<<"$line"
	printf '%s %s %s %s\n' "$sys" "$mix" "$ops" "$p99" >>"$results"
	printf 'round %d  %-8s %-8s %10.0f ops/s  p99 %8.2f ms\n' "$round" "$sys" "$mix" "$ops" "$(awk -v n="$p99" 'BEGIN { print n / 1e6 }')" >&2
}

for round in $(seq "$ROUNDS"); do
	order=(kvstore etcd)
	((round % 2)) || order=(etcd kvstore)
	for mix in $MIXES; do
		for sys in "${order[@]}"; do
			measure "$sys" "$mix" "$round"
		done
	done
done

# median SYSTEM MIX FIELD: the median of field 3 (ops/s) or 4 (p99 ns).
median() {
	awk -v s="$1" -v m="$2" -v f="$3" '$1 == s && $2 == m { print $f }' "$results" | sort -g |
		awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

echo
echo "kvstore (3 nodes) vs etcd $("$ETCD" --version 2>/dev/null | sed -n 's/^etcd Version: //p') (3 members), 127.0.0.1:" \
	"$ROUNDS rounds of $DURATION, $CLIENTS clients, $KEYS keys, $VALUE_SIZE-byte values; medians"
printf '%-9s %14s %11s %7s %12s %10s %7s\n' mix "kvstore ops/s" "etcd ops/s" ratio "kvstore p99" "etcd p99" ratio
for mix in $MIXES; do
	kops=$(median kvstore "$mix" 3) eops=$(median etcd "$mix" 3)
	kp99=$(median kvstore "$mix" 4) ep99=$(median etcd "$mix" 4)
	awk -v m="$mix" -v ko="$kops" -v eo="$eops" -v kp="$kp99" -v ep="$ep99" 'BEGIN {
		printf "%-9s %14.0f %11.0f %7.2f %10.2fms %8.2fms %7.2f\n", m, ko, eo, (eo > 0 ? ko / eo : 0),
			kp / 1e6, ep / 1e6, (ep > 0 ? kp / ep : 0) }'
done
