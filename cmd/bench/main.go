package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/peterbourgon/ff/v3"

	"kvstore/actor"
	"kvstore/internal/cliflag"
	"kvstore/rpc"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a request failed, or the run could not start
	exitUsage  = 2 // bad flags, or TLS on one side only (tlsMismatch)
	// exitUnreachable: the run stopped early because every request for
	// --give-up failed Unavailable.
	exitUnreachable = 3
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// config is the command line, filled by parseFlags.
type config struct {
	Addr        string
	Clients     int
	Conns       int
	Duration    time.Duration
	Requests    int64
	Keys        int
	ValueSize   int
	Mix         mix
	TTL         time.Duration
	TTLFraction float64
	Dist        string
	ZipfS       float64
	Preload     bool
	Rate        float64
	Timeout     time.Duration
	GiveUp      time.Duration
	Seed        uint64
	Progress    time.Duration
	JSON        bool
	Inproc      bool
	// Etcd drives etcd's v3 KV API at the --addr list (etcdPool).
	Etcd bool
	// Redis drives a Redis-protocol server at --addr (redisTarget).
	Redis bool

	// Client is how to reach --addr: TLS and a bearer token.
	Client rpc.ClientOptions

	ServeBaseline string

	Compare bool
	Rounds  int
	// Workloads are the --flag names of the compareScenarios that
	// --compare runs; empty means all of them.
	Workloads   []string
	ServerBin   string
	ServerArgs  string
	BaselineBin string
	// Plot is the --plot file, its format by extension (plotFormatOf).
	Plot string

	// clock is the run's clock (runConfig.clock), not a flag: nil is the
	// wall clock; tests set a mock.
	clock clock.Clock
}

// workloadsFlag is --workloads: a comma-separated list of
// compareScenario flag names.
type workloadsFlag struct{ v *[]string }

func (w workloadsFlag) String() string {
	if w.v == nil || len(*w.v) == 0 {
		var all []string
		for _, sc := range compareScenarios {
			all = append(all, sc.flag)
		}
		return strings.Join(all, ",")
	}
	return strings.Join(*w.v, ",")
}

func (w workloadsFlag) Set(s string) error {
	var names []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(compareScenarios, func(sc compareScenario) bool { return sc.flag == name }) {
			return fmt.Errorf("unknown workload %q: want a comma-separated list of %s", name, workloadsFlag{}.String())
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	*w.v = names
	return nil
}

// scenarios returns the workloads --compare runs, in report order.
func (c *config) scenarios() []compareScenario {
	if len(c.Workloads) == 0 {
		return compareScenarios
	}
	var out []compareScenario
	for _, sc := range compareScenarios {
		if slices.Contains(c.Workloads, sc.flag) {
			out = append(out, sc)
		}
	}
	return out
}

// distFlag accepts only the known key distributions.
type distFlag struct{ v *string }

func (d distFlag) String() string {
	if d.v == nil {
		return ""
	}
	return *d.v
}

func (d distFlag) Set(s string) error {
	if s != distUniform && s != distZipf {
		return fmt.Errorf("want %s or %s", distUniform, distZipf)
	}
	*d.v = s
	return nil
}

// envPrefix starts the environment variable of every flag: --clients is
// KVSTORE_BENCH_CLIENTS. It is not the server's KVSTORE: KVSTORE_TLS_CERT
// and KVSTORE_TLS_KEY are the server's own certificate, and --compare
// hands KVSTORE_* on to the kvstore-server it starts.
const envPrefix = "KVSTORE_BENCH"

// envName is the variable ff.WithEnvVarPrefix(envPrefix) reads for the flag
// named flagName.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

const usageHeader = `Usage: kvstore-bench [flags]

Load generator for kvstore.v1.KVStore: drives a server with a configurable
workload and reports throughput and latency percentiles per operation.

Modes:
  (default)              drive the gRPC server at --addr; a comma-separated
                         list (a cluster's nodes) spreads the --conns
                         connections round-robin over them, at least one each
  --etcd                 drive etcd's v3 KV gRPC API (Put, Range, DeleteRange)
                         at the --addr list instead, plaintext, with the same
                         load: kvstore and etcd compared; no --ttl
  --redis                drive a Redis-protocol server at --addr (kvstore's
                         --resp-listen, or Redis) with go-redis v9, one
                         connection per client: kvstore's Redis front and
                         Redis compared with the same Go client
  --inproc               drive an actor in this process directly, without gRPC
                         and without a log: the data path alone
  --serve-baseline ADDR  serve the same API from plain grpc-go over a
                         mutex-guarded map (the gRPC ceiling) until SIGINT/SIGTERM
  --compare              start kvstore and the baseline as child processes on
                         127.0.0.1, alternate them for --rounds rounds of three
                         workloads (--mix 50:50:0, 100:0:0 and 0:100:0, or
                         those picked by --workloads), each run on a fresh
                         server preloaded with all --keys keys (not counted),
                         and print the median kvstore/baseline
                         ratios; --plot FILE also draws the latency percentile
                         distributions of both servers, as SVG or PNG by the
                         name's extension (--svg FILE is its old name)

Closed loop by default: every client sends its next request when the last one
returns. --rate N runs open loop: requests are due at N per second whether or
not the server keeps up, and latency counts from each request's due time, so
a stall shows in the percentiles instead of slowing the load (no coordinated
omission). Latencies and ops/s count successful requests; failed requests are
counted by gRPC status code.

A server that answers nothing but Unavailable for --give-up (default 5s) is
taken as gone: the run stops there, says so on stderr and still reports what
ran. A server that cannot be reached is probed once for TLS on one side only
(a plaintext bench at a TLS port, or the reverse), which is then named.

Progress goes to stderr once a second; the summary (or --json) to stdout.
Exit status: 0 when every request succeeded, 1 when any failed (the counts by
status code are on stderr) or the run could not start, 2 for bad flags or a
TLS mismatch, 3 when the run stopped at --give-up.

Every flag has an environment variable (--clients is KVSTORE_BENCH_CLIENTS);
a flag on the command line wins.

Flags:
`

// parseFlags reads args and then, for the flags args leaves unset, the
// environment (envName of each) into a config. It returns flag.ErrHelp
// after printing help to stdout for -h/--help.
func parseFlags(args []string, stdout io.Writer) (config, error) {
	c := config{Mix: mix{50, 50, 0}, Dist: distUniform}
	fs := flag.NewFlagSet("kvstore-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Addr, "addr", "localhost:50051", "server `address`, or a comma-separated list of them (the nodes of a cluster):\nthe --conns connections go round-robin over the list, at least one per address")
	fs.StringVar(&c.Client.TLS.CAFile, "tls-ca", "", "PEM CA `file` to verify the server with (turns TLS on; default: system roots)")
	fs.StringVar(&c.Client.TLS.CertFile, "tls-cert", "", "PEM client certificate `file`, for servers that require one (mTLS)")
	fs.StringVar(&c.Client.TLS.KeyFile, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.Client.TLS.ServerName, "tls-server-name", "", "`name` to verify the server certificate against (default: the host of --addr)")
	fs.StringVar(&c.Client.Token, "token", "", "bearer `token` for servers started with --auth-file")
	fs.IntVar(&c.Clients, "clients", 50, "concurrent clients, each with one request in flight (open loop: the most requests in flight)")
	fs.IntVar(&c.Conns, "conns", 4, "gRPC connections the clients share, each call taking the next; one HTTP/2\nconnection would cap the load at what its single TCP stream carries")
	cliflag.DurationVar(fs, &c.Duration, "duration", 10*time.Second, "how long to run, a `duration` such as 10s or 2m (per run in --compare); excludes --requests")
	fs.Int64Var(&c.Requests, "requests", 0, "run exactly this many requests instead of for --duration")
	fs.IntVar(&c.Keys, "keys", 100_000, "key space: keys are key:00000000 to key:<keys-1>")
	fs.IntVar(&c.ValueSize, "value-size", 16, "`bytes` of each value (random printable, the same for every set)")
	fs.Var(&c.Mix, "mix", "relative weights of `set:get:del`, e.g. 50:50:0 or 100:0:0 (ignored by --compare)")
	cliflag.DurationVar(fs, &c.TTL, "ttl", 0, "give sets this TTL, a `duration` in whole seconds such as 30s; 0 for none")
	fs.Float64Var(&c.TTLFraction, "ttl-fraction", 1, "`share` (0 to 1) of the sets that carry --ttl")
	fs.Var(distFlag{&c.Dist}, "dist", "key `distribution`: uniform, or zipf (key:00000000 hottest)")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.1, "zipf exponent `s`, > 1; higher is more skewed")
	fs.BoolVar(&c.Preload, "preload", false, "set every key once before measuring (not counted); --compare always does")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop at this many `ops/s` in total; 0 for closed loop")
	cliflag.DurationVar(fs, &c.Timeout, "timeout", 5*time.Second, "deadline of each gRPC request, and of connecting (a `duration`)")
	cliflag.DurationVar(fs, &c.GiveUp, "give-up", 5*time.Second, "stop the run, exit status 3, once every request for this `duration` has failed\nUnavailable (the server is unreachable); 0 for never")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the workload, so runs can be repeated")
	cliflag.DurationVar(fs, &c.Progress, "progress", time.Second, "print progress to stderr this often (a `duration`); 0 for never")
	fs.BoolVar(&c.JSON, "json", false, "print the summary as one JSON object")
	fs.BoolVar(&c.Inproc, "inproc", false, "drive an in-process actor instead of a server (no gRPC, no log)")
	fs.BoolVar(&c.Redis, "redis", false, "drive a Redis-protocol server at --addr (kvstore's --resp-listen, or Redis) with go-redis, one connection per client, plaintext, no auth")
	fs.BoolVar(&c.Etcd, "etcd", false, "drive etcd's v3 KV gRPC API at --addr (plaintext) instead of kvstore's; no --ttl")
	fs.StringVar(&c.ServeBaseline, "serve-baseline", "", "serve the baseline (grpc-go over a mutex-guarded map) on `address` until SIGINT/SIGTERM")
	fs.BoolVar(&c.Compare, "compare", false, "compare kvstore with the baseline (see Modes)")
	fs.IntVar(&c.Rounds, "rounds", 3, "--compare: rounds, each running every workload on both servers")
	fs.Var(workloadsFlag{&c.Workloads}, "workloads", "--compare: the workloads to run, a comma-separated `list` of mixed (set:get 50:50),\nset (set only) and get (get only); all three by default")
	fs.StringVar(&c.ServerBin, "server-bin", "", "--compare: kvstore-server `binary`; empty builds ./cmd/server with go build")
	fs.StringVar(&c.BaselineBin, "baseline-bin", "", "--compare: measure against this kvstore-server `binary` (an older build, same --server-args) instead of the plain grpc-go baseline")
	fs.StringVar(&c.ServerArgs, "server-args", "", "--compare: extra kvstore-server `flags`, split on spaces, e.g. \"--fsync everysec\"")
	fs.StringVar(&c.Plot, "plot", "", "--compare: also draw the latency percentile plot of both servers, one panel\nper workload, to this `file`: .svg or .png")
	fs.StringVar(&c.Plot, "svg", "", "--compare: the old name of --plot `file`")

	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	// Help goes to stdout on request only; a parse error gets one line on
	// stderr, not the whole help.
	fs.Usage = func() {}
	printHelp := func() {
		fmt.Fprint(stdout, usageHeader)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(envPrefix)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp()
			return c, err
		}
		// ff's "error parsing commandline arguments: " says nothing the
		// flag's own error does not.
		if inner := errors.Unwrap(err); inner != nil {
			err = inner
		}
		return c, err
	}
	if fs.NArg() == 1 && fs.Arg(0) == "help" {
		printHelp()
		return c, flag.ErrHelp
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["duration"] && set["requests"] {
		return c, errors.New("use either --duration or --requests, not both")
	}
	for _, mode := range []struct {
		on   bool
		name string
	}{{c.Etcd, "--etcd drives etcd"}, {c.Redis, "--redis drives a Redis-protocol server"}} {
		for _, name := range []string{"tls-ca", "tls-cert", "tls-key", "tls-server-name", "token"} {
			if mode.on && set[name] {
				return c, fmt.Errorf("%s in plaintext without auth: --%s does not apply", mode.name, name)
			}
		}
	}
	return c, c.validate()
}

func (c *config) validate() error {
	modes := 0
	for _, on := range []bool{c.Inproc, c.Compare, c.ServeBaseline != ""} {
		if on {
			modes++
		}
	}
	if c.Plot != "" {
		if _, err := plotFormatOf(c.Plot); err != nil {
			return fmt.Errorf("--plot %v", err)
		}
	}
	switch {
	case modes > 1:
		return errors.New("--inproc, --compare and --serve-baseline exclude each other")
	case c.Redis && (c.Etcd || modes > 0):
		return errors.New("--redis drives a Redis-protocol server at --addr: it excludes --etcd, --inproc, --compare and --serve-baseline")
	case c.Etcd && modes > 0:
		return errors.New("--etcd drives etcd at --addr: it excludes --inproc, --compare and --serve-baseline")
	case c.Etcd && c.TTL != 0:
		return errors.New("--etcd does not set TTLs (etcd needs leases): drop --ttl")
	case c.Plot != "" && !c.Compare:
		return errors.New("--plot draws the --compare runs: use it with --compare")
	case len(c.Workloads) > 0 && !c.Compare:
		return errors.New("--workloads picks the --compare runs: use it with --compare; --mix sets the workload otherwise")
	case c.ServeBaseline != "":
		return nil // the other flags do not apply
	case c.Addr == "" && !c.Inproc && !c.Compare:
		return errors.New("--addr must not be empty")
	case !c.Inproc && !c.Compare && slices.Contains(splitAddrs(c.Addr), ""):
		return fmt.Errorf("--addr %q: an empty address in the list", c.Addr)
	case c.Clients < 1:
		return fmt.Errorf("--clients must be at least 1, got %d", c.Clients)
	case c.Conns < 1:
		return fmt.Errorf("--conns must be at least 1, got %d", c.Conns)
	case c.Requests < 0:
		return fmt.Errorf("--requests must not be negative, got %d", c.Requests)
	case c.Requests == 0 && c.Duration <= 0:
		return fmt.Errorf("--duration must be positive, got %v", c.Duration)
	case c.Keys < 1:
		return fmt.Errorf("--keys must be at least 1, got %d", c.Keys)
	case c.ValueSize < 0:
		return fmt.Errorf("--value-size must not be negative, got %d", c.ValueSize)
	case c.TTL < 0 || c.TTL%time.Second != 0:
		return fmt.Errorf("--ttl must be a non-negative whole number of seconds, got %v", c.TTL)
	case !(c.TTLFraction >= 0 && c.TTLFraction <= 1):
		return fmt.Errorf("--ttl-fraction must be between 0 and 1, got %v", c.TTLFraction)
	case !(c.ZipfS > 1):
		return fmt.Errorf("--zipf-s must be greater than 1, got %v", c.ZipfS)
	case !(c.Rate >= 0) || c.Rate > 1e9:
		return fmt.Errorf("--rate must be between 0 (closed loop) and 1e9, got %v", c.Rate)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %v", c.Timeout)
	case c.GiveUp < 0:
		return fmt.Errorf("--give-up must not be negative, got %v", c.GiveUp)
	case c.Progress < 0:
		return fmt.Errorf("--progress must not be negative, got %v", c.Progress)
	case c.Rounds < 1:
		return fmt.Errorf("--rounds must be at least 1, got %d", c.Rounds)
	}
	return nil
}

func (c *config) workload() *workload {
	return &workload{
		mix:         c.Mix,
		keys:        c.Keys,
		dist:        c.Dist,
		zipfS:       c.ZipfS,
		value:       randomValue(c.ValueSize, c.Seed),
		ttlSeconds:  int64(c.TTL / time.Second),
		ttlFraction: c.TTLFraction,
		seed:        c.Seed,
	}
}

func (c *config) runConfig(progressOut io.Writer) runConfig {
	return runConfig{
		clients:     c.Clients,
		requests:    c.Requests,
		duration:    c.Duration,
		rate:        c.Rate,
		progress:    c.Progress,
		progressOut: progressOut,
		workload:    c.workload(),
		giveUp:      c.GiveUp,
		clock:       c.clock,
	}
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-bench: %v\nRun 'kvstore-bench --help' for usage.\n", err)
		return exitUsage
	}
	// The first SIGINT/SIGTERM ends the run (the report still prints);
	// after it the default action is back, so a second one kills.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop)

	switch {
	case cfg.ServeBaseline != "":
		return serveBaseline(ctx, cfg.ServeBaseline, stdout, stderr)
	case cfg.Compare:
		// Find a mistyped --plot directory now, not after minutes of runs.
		if cfg.Plot != "" {
			if err := checkDirOf(cfg.Plot); err != nil {
				fmt.Fprintf(stderr, "kvstore-bench: --plot: %v\n", err)
				return exitFailed
			}
		}
		servers, cleanup, err := childServers(ctx, cfg, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "kvstore-bench: %v\n", err)
			return exitFailed
		}
		defer cleanup()
		return compare(ctx, cfg, servers, stdout, stderr)
	case cfg.Inproc:
		a := actor.New(actor.Config{})
		defer a.Stop()
		return bench(ctx, cfg, actorTarget{a}, stdout, stderr)
	}
	if cfg.Redis {
		p, err := dialRedis(ctx, cfg.Addr, cfg.Clients, cfg.Timeout)
		if err != nil {
			fmt.Fprintf(stderr, "kvstore-bench: redis: %v\n", err)
			return exitFailed
		}
		defer p.Close()
		return bench(ctx, cfg, p, stdout, stderr)
	}
	if cfg.Etcd {
		p, err := dialEtcd(ctx, splitAddrs(cfg.Addr), cfg.Conns, cfg.Timeout, cfg.ValueSize)
		if err != nil {
			fmt.Fprintf(stderr, "kvstore-bench: etcd: %v\n", err)
			return exitFailed
		}
		defer p.Close()
		return bench(ctx, cfg, p, stdout, stderr)
	}
	p, err := dialPool(ctx, splitAddrs(cfg.Addr), cfg.Conns, cfg.Timeout, cfg.ValueSize, cfg.Client)
	var na notAnswering
	if errors.As(err, &na) && tlsMismatch(ctx, cfg, na.addr, stderr) {
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-bench: %v\n", err)
		return exitFailed
	}
	defer p.Close()
	return bench(ctx, cfg, p, stdout, stderr)
}

// checkDirOf reports whether the directory that would hold file exists.
func checkDirOf(file string) error {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// bench runs one measurement against t and prints its report.
func bench(ctx context.Context, cfg config, t target, stdout, stderr io.Writer) int {
	conns := poolSize(cfg.Conns, splitAddrs(cfg.Addr))
	where := "gRPC " + cfg.Addr + fmt.Sprintf(" over %d connections", conns)
	switch {
	case cfg.Inproc:
		where = "in-process actor (no gRPC, no log)"
	case cfg.Etcd:
		where = "etcd v3 KV API at " + cfg.Addr + fmt.Sprintf(" over %d connections", conns)
	case cfg.Redis:
		where = "Redis protocol (go-redis) at " + cfg.Addr + fmt.Sprintf(" over %d connections", cfg.Clients)
	}
	loop := "closed loop"
	if cfg.Rate > 0 {
		loop = fmt.Sprintf("open loop at %.0f ops/s", cfg.Rate)
	}
	length := cfg.Duration.String()
	if cfg.Requests > 0 {
		length = fmt.Sprintf("%d requests", cfg.Requests)
	}
	fmt.Fprintf(stderr, "kvstore-bench: %s, %d clients, %s, %s; mix %s, %d keys %s, %d-byte values\n",
		where, cfg.Clients, loop, length, cfg.Mix, cfg.Keys, cfg.Dist, cfg.ValueSize)

	w := cfg.workload()
	if cfg.Preload {
		begin := time.Now()
		if err := preload(ctx, t, w, cfg.Clients); err != nil {
			fmt.Fprintf(stderr, "kvstore-bench: preload: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(stderr, "preloaded %d keys in %v\n", cfg.Keys, time.Since(begin).Round(time.Millisecond))
	}
	res := runLoad(ctx, t, cfg.runConfig(stderr))
	mismatch := false
	if res.unreachable != nil {
		who := "server at " + cfg.Addr
		switch {
		case cfg.Inproc:
			who = "in-process actor"
		case cfg.Etcd:
			who = "etcd at " + cfg.Addr
		case cfg.Redis:
			who = "Redis-protocol server at " + cfg.Addr
		}
		fmt.Fprintf(stderr, "kvstore-bench: %s unreachable for %v (last error: %v); stopping\n", who, cfg.GiveUp, res.unreachable)
		// A cluster may have lost one node or all: probe the first.
		mismatch = !cfg.Inproc && !cfg.Etcd && !cfg.Redis && tlsMismatch(ctx, cfg, splitAddrs(cfg.Addr)[0], stderr)
	}
	rep := newReport(cfg, &res)
	if cfg.JSON {
		writeJSON(stdout, &rep)
	} else {
		rep.writeTable(stdout)
	}
	code := exitStatus(&res, stderr)
	switch {
	case mismatch:
		return exitUsage
	case res.unreachable != nil:
		return exitUnreachable
	}
	return code
}

// tlsMismatch probes addr (one of cfg.Addr), which failed to answer, for
// TLS on one side only, which gRPC's own error does not name, and says so
// on stderr. It reports whether it found one.
func tlsMismatch(ctx context.Context, cfg config, addr string, stderr io.Writer) bool {
	m := rpc.ProbeTLSMismatch(ctx, addr, cfg.Client.TLS != (rpc.ClientTLSOptions{}))
	if m == nil {
		return false
	}
	// rpc's words name kvstore-client's KVSTORE_TLS_CA.
	msg := m.Error()
	if errors.Is(m, rpc.ErrServerSpeaksTLS) {
		msg = "server speaks TLS; pass --tls-ca (or " + envName("tls-ca") + ")"
	}
	fmt.Fprintf(stderr, "kvstore-bench: %s: %s\n", addr, msg)
	return true
}

// exitStatus reports failed requests, by status code, on stderr.
func exitStatus(res *result, stderr io.Writer) int {
	total := res.total()
	failed := total.failed()
	if failed == 0 {
		return exitOK
	}
	fmt.Fprintf(stderr, "kvstore-bench: %d of %d requests failed: %s\n",
		failed, failed+total.count(), formatCodes(total.errs))
	return exitFailed
}

// preload sets every key of w once, with clients requests in flight and no
// TTL. It stops at the first failure.
func preload(ctx context.Context, t target, w *workload, clients int) error {
	var (
		next    atomic.Int64
		errOnce sync.Once
		first   error
		failed  atomic.Bool
		wg      sync.WaitGroup
	)
	for range min(clients, w.keys) {
		wg.Go(func() {
			for !failed.Load() && ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(w.keys) {
					return
				}
				if err := t.Set(ctx, keyName(int(i)), w.value, 0); err != nil {
					errOnce.Do(func() { first = fmt.Errorf("set %s: %s: %w", keyName(int(i)), codeOf(err), err) })
					failed.Store(true)
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
