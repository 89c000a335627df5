// Command kvstore-bench is the load generator for kvstore.v1.KVStore.
//
// It drives a running server over gRPC (--addr) with --clients concurrent
// clients sharing a small pool of --conns connections, a key space of
// --keys keys (uniform or zipf), --value-size values and a --mix of
// set:get:del, for --duration or exactly --requests requests. Closed loop by
// default; --rate N runs open loop at N ops/s and measures each latency
// from the request's intended start, so a stalled server shows up in the
// percentiles (no coordinated omission). Progress goes to stderr once a
// second; the summary — throughput and p50/p90/p99/p99.9/max per operation
// from an HDR histogram — to stdout, or as JSON with --json. The exit
// status is 1 when any request failed, with the failures counted by gRPC
// status code, and 2 for bad flags. Once every request for --give-up
// (default 5s; 0 never) has failed Unavailable, the server is taken as
// unreachable: the run stops with a line saying so, the partial report
// and exit status 3. A server that does not answer is probed once for TLS
// on one side only ("server speaks TLS; pass --tls-ca", or the reverse),
// which exits 2.
//
// --addr takes a comma-separated list too, the nodes of a cluster: the
// --conns connections go round-robin over the addresses (at least one per
// address, so --conns 1 over three nodes opens three), every one of them
// checked with a first Get before the run, and each call takes the next
// connection, so the load spreads evenly over the nodes. One address is
// exactly the single-server case.
//
// --etcd drives etcd's v3 KV gRPC API (etcdserverpb.KV Put, Range and
// DeleteRange, plaintext) at the --addr list instead, with the same
// workload, so that a script can compare kvstore with etcd (see
// docs/cluster-vs-etcd.sh). It does not link etcd's modules: requests are
// encoded by hand with protowire and sent through a raw-bytes grpc codec
// (etcd.go). A get is found when the RangeResponse holds a kv (or a count
// above 0), a delete when DeleteRangeResponse.deleted (field
// 2) > 0. etcd needs
// leases for TTLs, so --etcd refuses --ttl; it also refuses the TLS and
// token flags and excludes --inproc, --compare and --serve-baseline.
// --preload works as for kvstore; reports say "mode": "etcd".
//
// --redis drives a Redis-protocol server (kvstore's --resp-listen, or
// Redis) with go-redis v9 and its defaults, but a pool of one connection
// per client, as redis-benchmark opens (redis.go); plaintext, no auth;
// reports say "mode": "redis".
//
// Other modes:
//
//	--inproc               drive an actor.Actor in this process, without gRPC
//	                       and without a log: the data path alone
//	--serve-baseline ADDR  serve the same API from plain grpc-go over a
//	                       mutex-guarded map: the gRPC ceiling
//	--compare              run kvstore-server and the baseline as child
//	                       processes on 127.0.0.1, alternating them over
//	                       --rounds rounds of three workloads (set:get
//	                       50:50, set only, get only; --workloads picks
//	                       some), each run on a fresh
//	                       server preloaded with every key (not counted),
//	                       and print the median ratios; --plot FILE also
//	                       draws both servers' latency percentile curves,
//	                       one panel per workload (plot.go); with
//	                       --baseline-bin BIN the other server is that
//	                       kvstore-server build instead: a change measured
//	                       against the code before it
//
// The engine is a workload (what to send: op and key pickers, one seeded
// generator per client), a runner (how: closed or open loop, recording into
// sharded HDR histograms) and a target (where: the gRPC pool, the etcd
// pool, the in-process actor, or a fake in tests).
//
// Run with --help for every flag; `make bench-compare` runs the comparison.
package main
