package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

// benchServer is one of the servers --compare measures. start brings up a
// fresh instance and returns its address and a stop function that shuts it
// down and reports how it exited.
type benchServer struct {
	name  string
	start func(ctx context.Context) (addr string, stop func() error, err error)
}

// compareScenario is one workload of --compare: its name in reports,
// its name for --workloads, and its mix.
type compareScenario struct {
	name string
	flag string
	mix  mix
}

// compareScenarios are the workloads of --compare, in report order;
// --workloads picks some of them. The other workload flags (--clients,
// --keys, --value-size, ...) apply to all of them. Every run preloads the
// whole key space first, so gets hit.
var compareScenarios = []compareScenario{
	{"set:get 50:50", "mixed", mix{50, 50, 0}},
	{"set only", "set", mix{100, 0, 0}},
	{"get only", "get", mix{0, 100, 0}},
}

// compareRun is one measurement of --compare.
type compareRun struct {
	Round     int              `json:"round"`
	Workload  string           `json:"workload"`
	Server    string           `json:"server"`
	OpsPerSec float64          `json:"ops_per_sec"`
	P50       int64            `json:"p50_ns"`
	P99       int64            `json:"p99_ns"`
	Errors    int64            `json:"errors"`
	ByCode    map[string]int64 `json:"errors_by_code,omitempty"`
	// GetHitRate is the share of successful gets that found their key,
	// for workloads with gets: 1 unless the preload went wrong.
	GetHitRate *float64 `json:"get_hit_rate,omitempty"`

	// hist holds the latencies of the run's successful requests, for
	// --plot; compare drops it once merged.
	hist *hdrhistogram.Histogram
}

// compareSummary is one row of the ratio table: medians over the rounds.
// Ratios are kvstore / baseline, the median of the per-round ratios.
type compareSummary struct {
	Workload        string  `json:"workload"`
	Rounds          int     `json:"rounds"`
	KVOpsPerSec     float64 `json:"kvstore_ops_per_sec"`
	BaseOpsPerSec   float64 `json:"baseline_ops_per_sec"`
	ThroughputRatio float64 `json:"throughput_ratio"`
	KVP50           int64   `json:"kvstore_p50_ns"`
	BaseP50         int64   `json:"baseline_p50_ns"`
	KVP99           int64   `json:"kvstore_p99_ns"`
	BaseP99         int64   `json:"baseline_p99_ns"`
	P99Ratio        float64 `json:"p99_ratio"`
}

// compare runs every scenario on servers[0] (kvstore) and servers[1] (the
// baseline) for cfg.Rounds rounds, a fresh server per measurement, the
// order of the two servers alternating from round to round so that drift
// on a noisy machine hits both alike. It prints per-run lines to stderr,
// then the per-round numbers and the median ratio table (or --json).
//
// With cfg.Plot set it also draws the latency plot of the runs that
// finished (see comparePlot) to that file, SVG or PNG by its extension.
func compare(ctx context.Context, cfg config, servers []benchServer, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "kvstore-bench: compare %s vs %s: %d rounds x %d workloads, %s each after preloading all %d keys; %d clients over %d connections, %s keys, %d-byte values\n",
		servers[0].name, servers[1].name, cfg.Rounds, len(cfg.scenarios()), runLength(cfg), cfg.Keys, cfg.Clients, cfg.Conns, cfg.Dist, cfg.ValueSize)
	var (
		runs   []compareRun
		failed bool
		runErr error
		lat    *mergedLatencies
	)
	if cfg.Plot != "" {
		lat = newMergedLatencies()
	}
rounds:
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sc := range cfg.scenarios() {
			order := slices.Clone(servers)
			if round%2 == 0 {
				slices.Reverse(order)
			}
			for _, srv := range order {
				if ctx.Err() != nil {
					break rounds
				}
				c := cfg
				c.Mix = sc.mix
				r, err := measure(ctx, c, srv)
				if err != nil {
					runErr = fmt.Errorf("round %d, %s, %s: %w", round, sc.name, srv.name, err)
					break rounds
				}
				r.Round, r.Workload = round, sc.name
				if lat != nil {
					lat.add(sc.name, srv.name, r.hist)
				}
				r.hist = nil
				runs = append(runs, r)
				failed = failed || r.Errors > 0
				fmt.Fprintf(stderr, "round %d/%d  %-14s %-9s %9.0f ops/s  p99 %-8s errors %d\n",
					round, cfg.Rounds, sc.name, srv.name, r.OpsPerSec, formatLatency(r.P99), r.Errors)
			}
		}
	}
	summary := summarizeRuns(runs, cfg.scenarios(), servers[0].name, servers[1].name)
	switch {
	case len(runs) == 0:
		// Nothing to tabulate; the reason follows on stderr.
	case cfg.JSON:
		writeJSON(stdout, struct {
			Runs    []compareRun     `json:"runs"`
			Summary []compareSummary `json:"summary"`
		}{runs, summary})
	default:
		writeCompareTables(stdout, runs, summary, servers[0].name, servers[1].name)
	}
	var plotErr error
	if lat != nil && len(runs) > 0 {
		if plotErr = writeLatencyPlot(cfg.Plot, comparePlot(cfg, servers[0].name, servers[1].name, lat, summary, time.Now())); plotErr == nil {
			fmt.Fprintf(stderr, "kvstore-bench: wrote the latency plot to %s\n", cfg.Plot)
		}
	}
	switch {
	case plotErr != nil:
		fmt.Fprintf(stderr, "kvstore-bench: --plot: %v\n", plotErr)
		if runErr != nil {
			fmt.Fprintf(stderr, "kvstore-bench: compare: %v\n", runErr)
		}
		return exitFailed
	case runErr != nil:
		fmt.Fprintf(stderr, "kvstore-bench: compare: %v\n", runErr)
		return exitFailed
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "kvstore-bench: compare interrupted; the tables cover the runs that finished")
		return exitFailed
	case failed:
		for _, r := range runs {
			if r.Errors > 0 {
				fmt.Fprintf(stderr, "kvstore-bench: round %d, %s, %s: %d requests failed: %s\n",
					r.Round, r.Workload, r.Server, r.Errors, formatByName(r.ByCode))
			}
		}
		return exitFailed
	}
	return exitOK
}

func runLength(cfg config) string {
	if cfg.Requests > 0 {
		return fmt.Sprintf("%d requests", cfg.Requests)
	}
	return cfg.Duration.String()
}

// measure starts srv, sets every key once (not measured, so that gets
// hit and sets overwrite, as on a server in use), runs cfg's workload
// against it and stops it.
func measure(ctx context.Context, cfg config, srv benchServer) (r compareRun, err error) {
	addr, stop, err := srv.start(ctx)
	if err != nil {
		return r, err
	}
	defer func() {
		if stopErr := stop(); err == nil {
			err = stopErr
		}
	}()
	p, err := dialPool(ctx, []string{addr}, cfg.Conns, cfg.Timeout, cfg.ValueSize, rpc.ClientOptions{})
	if err != nil {
		return r, err
	}
	defer p.Close()
	if err := preload(ctx, p, cfg.workload(), cfg.Clients); err != nil {
		return r, fmt.Errorf("preload: %w", err)
	}
	rc := cfg.runConfig(nil)
	rc.progress = 0
	res := runLoad(ctx, p, rc)
	total := res.total()
	rep := summarize("total", &total, res.elapsed.Seconds())
	r = compareRun{
		Server:    srv.name,
		OpsPerSec: rep.OpsPerSec,
		P50:       rep.P50,
		P99:       rep.P99,
		Errors:    rep.Errors,
		ByCode:    rep.ByCode,
		hist:      total.hist,
	}
	if get := res.ops[opGet]; get.count() > 0 {
		hits := float64(get.found) / float64(get.count())
		r.GetHitRate = &hits
	}
	return r, nil
}

// summarizeRuns pairs the two servers' runs of each round and workload and
// takes medians over the rounds, a row per workload in scenarios order.
func summarizeRuns(runs []compareRun, scenarios []compareScenario, kv, base string) []compareSummary {
	var out []compareSummary
	for _, sc := range scenarios {
		byRound := map[int]map[string]compareRun{}
		for _, r := range runs {
			if r.Workload != sc.name {
				continue
			}
			if byRound[r.Round] == nil {
				byRound[r.Round] = map[string]compareRun{}
			}
			byRound[r.Round][r.Server] = r
		}
		var kvOps, baseOps, thr, kvP50, baseP50, kvP99, baseP99, p99r []float64
		for _, pair := range byRound {
			k, ok1 := pair[kv]
			b, ok2 := pair[base]
			if !ok1 || !ok2 {
				continue // a round cut short by a signal
			}
			kvOps, baseOps = append(kvOps, k.OpsPerSec), append(baseOps, b.OpsPerSec)
			kvP50, baseP50 = append(kvP50, float64(k.P50)), append(baseP50, float64(b.P50))
			kvP99, baseP99 = append(kvP99, float64(k.P99)), append(baseP99, float64(b.P99))
			thr = append(thr, ratio(k.OpsPerSec, b.OpsPerSec))
			p99r = append(p99r, ratio(float64(k.P99), float64(b.P99)))
		}
		if len(thr) == 0 {
			continue
		}
		out = append(out, compareSummary{
			Workload:        sc.name,
			Rounds:          len(thr),
			KVOpsPerSec:     median(kvOps),
			BaseOpsPerSec:   median(baseOps),
			ThroughputRatio: median(thr),
			KVP50:           int64(median(kvP50)),
			BaseP50:         int64(median(baseP50)),
			KVP99:           int64(median(kvP99)),
			BaseP99:         int64(median(baseP99)),
			P99Ratio:        median(p99r),
		})
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// median returns the middle value of xs (the mean of the two middle ones
// for an even count); xs must not be empty.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func writeCompareTables(w io.Writer, runs []compareRun, summary []compareSummary, kv, base string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tworkload\tserver\tops/s\tp50\tp99\terrors")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f\t%s\t%s\t%d\n", r.Round, r.Workload, r.Server, r.OpsPerSec,
			formatLatency(r.P50), formatLatency(r.P99), r.Errors)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s vs %s, medians over rounds; ratios are %s / %s (median of the per-round ratios):\n"+
		"a throughput ratio below 1 or a p99 ratio above 1 means %s is slower.\n", kv, base, kv, base, kv)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "workload\t%s ops/s\t%s ops/s\tthroughput ratio\t%s p50\t%s p50\t%s p99\t%s p99\tp99 ratio\n",
		kv, base, kv, base, kv, base)
	for _, s := range summary {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2f\t%s\t%s\t%s\t%s\t%.2f\n", s.Workload, s.KVOpsPerSec, s.BaseOpsPerSec,
			s.ThroughputRatio, formatLatency(s.KVP50), formatLatency(s.BaseP50),
			formatLatency(s.KVP99), formatLatency(s.BaseP99), s.P99Ratio)
	}
	tw.Flush()
}

// childServers returns kvstore-server and the baseline as child processes
// on free 127.0.0.1 ports, building kvstore-server first unless
// --server-bin names it. cleanup removes the build directory.
func childServers(ctx context.Context, cfg config, stderr io.Writer) (servers []benchServer, cleanup func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("find own binary for the baseline: %w", err)
	}
	cleanup = func() {}
	bin := cfg.ServerBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "kvstore-bench-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		bin = filepath.Join(dir, "kvstore-server")
		fmt.Fprintf(stderr, "building kvstore-server (go build kvstore/cmd/server)...\n")
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		out, err := exec.CommandContext(bctx, "go", "build", "-o", bin, "kvstore/cmd/server").CombinedOutput()
		cancel()
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("build kvstore-server (run inside the module, or pass --server-bin): %v\n%s", err, out)
		}
	}
	serverArgs := strings.Fields(cfg.ServerArgs)
	kvstore := kvstoreChild("kvstore", bin, serverArgs)
	if cfg.BaselineBin != "" {
		// Another build of kvstore-server, with the same flags: a change
		// measured against the code before it.
		return []benchServer{kvstore, kvstoreChild("before", cfg.BaselineBin, serverArgs)}, cleanup, nil
	}
	baseline := benchServer{name: "baseline", start: func(ctx context.Context) (string, func() error, error) {
		addr, err := freeLoopbackAddr()
		if err != nil {
			return "", nil, err
		}
		stop, err := startChild(ctx, "baseline", self, []string{"--serve-baseline", addr}, addr)
		return addr, stop, err
	}}
	return []benchServer{kvstore, baseline}, cleanup, nil
}

// kvstoreChild is a kvstore-server binary run as a child process with a
// fresh data dir, which stop removes.
func kvstoreChild(name, bin string, serverArgs []string) benchServer {
	return benchServer{name: name, start: func(ctx context.Context) (string, func() error, error) {
		dataDir, err := os.MkdirTemp("", "kvstore-bench-data-")
		if err != nil {
			return "", nil, err
		}
		addr, err := freeLoopbackAddr()
		if err != nil {
			os.RemoveAll(dataDir)
			return "", nil, err
		}
		// Only gRPC is compared; no separate HTTP port (an older binary
		// opens localhost:8080 by default) to collide with.
		args := append([]string{"--listen", addr, "--http-listen", "", "--data-dir", dataDir}, serverArgs...)
		stop, err := startChild(ctx, name, bin, args, addr)
		if err != nil {
			os.RemoveAll(dataDir)
			return "", nil, err
		}
		return addr, func() error {
			defer os.RemoveAll(dataDir)
			return stop()
		}, nil
	}}
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port that was free a
// moment ago.
func freeLoopbackAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return "127.0.0.1:" + strconv.Itoa(lis.Addr().(*net.TCPAddr).Port), nil
}

// Bounds on a child server's lifetime.
const (
	childReadyTimeout = 30 * time.Second
	childStopTimeout  = 15 * time.Second // above the server's default 10s grace
)

// startChild runs bin with args and waits until it answers on addr. The
// stop function sends SIGTERM, kills the process if it has not exited
// within childStopTimeout, and reports an unclean exit with the tail of
// its output.
func startChild(ctx context.Context, name, bin string, args []string, addr string) (stop func() error, err error) {
	out := &tailBuffer{max: 16 << 10}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv()
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		timer := time.NewTimer(childStopTimeout)
		defer timer.Stop()
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%s exited after SIGTERM: %v; its output ends:\n%s", name, err, out)
			}
			return nil
		case <-timer.C:
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not exit within %v of SIGTERM and was killed; its output ends:\n%s", name, childStopTimeout, out)
		}
	}

	readyCtx, cancel := context.WithTimeout(ctx, childReadyTimeout)
	defer cancel()
	readyc := make(chan error, 1)
	go func() { readyc <- waitReady(readyCtx, addr) }()
	select {
	case err := <-readyc:
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s on %s is not ready after %v: %v; its output ends:\n%s", name, addr, childReadyTimeout, err, out)
		}
		return stop, nil
	case err := <-exited:
		cancel()
		<-readyc
		return nil, fmt.Errorf("%s exited at start (%v); its output ends:\n%s", name, err, out)
	}
}

// childEnv is this process's environment without KVSTORE_BENCH_*, which
// would otherwise configure the baseline child like its parent.
func childEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, envPrefix+"_")
	})
}

// waitReady returns once a Get on addr succeeds, or ctx ends. It retries
// the connection every 50ms rising to 500ms, not after grpc's default 1s
// first backoff, which would add a second to most server starts.
func waitReady(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = kvstorepb.NewKVStoreClient(conn).Get(ctx, &kvstorepb.GetRequest{Key: keyName(0)}, grpc.WaitForReady(true))
	return err
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
