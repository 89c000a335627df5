// Command kvstore-server runs the kvstore gRPC server.
//
// Every flag has an environment variable (--listen is KVSTORE_LISTEN);
// flags win over the environment. Run with --help for the list.
// `kvstore-server aof dump|check [--fix]` inspects and repairs the log;
// `kvstore-server token new --role ROLE` makes an API token.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/oklog/run"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/fftoml"

	"kvstore/actor"
	"kvstore/rpc"
	"kvstore/wal"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "aof" {
		os.Exit(runAOF(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "token" {
		os.Exit(runToken(os.Args[2:], os.Stdout, os.Stderr))
	}
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:], os.Getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "kvstore-server: %v\nRun 'kvstore-server --help' for usage.\n", err)
		os.Exit(2)
	}
	if m.Config.PrintConfig {
		if err := m.WriteConfig(os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	if err := m.Run(context.Background()); err != nil {
		m.Logger.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// Config is the server's configuration, filled by ParseFlags.
type Config struct {
	Listen         string
	DataDir        string
	ExpireInterval time.Duration
	MaxKeyBytes    int
	MaxValueBytes  int
	ShutdownGrace  time.Duration
	LogLevel       slog.Level

	Fsync            wal.FsyncPolicy
	SegmentBytes     int64
	PreallocBytes    byteSize
	SnapshotInterval time.Duration
	NoFinalSnapshot  bool

	// ConfigFile is the TOML file the other settings were read from, if
	// any; LogFormat is text or json.
	ConfigFile  string
	LogFormat   string
	PrintConfig bool

	// HTTPListen is the HTTP (REST, health, metrics) address; empty
	// disables it. Pprof serves /debug/pprof/ there.
	HTTPListen string
	Pprof      bool

	// Security: TLS files, the token file, and the switches of protected
	// mode and of /metrics without a token.
	TLSCert, TLSKey, TLSClientCA string
	AuthFile                     string
	MetricsOpen                  bool
	Insecure                     bool

	// Limits: memory of the data, connections per listener, and how long
	// any request may hold the server.
	MaxMemory      byteSize
	MaxConnections int
	RequestTimeout time.Duration

	// GCHeapFloor is the heap size below which the garbage collector does
	// not start a cycle (see gcFloor); 0 leaves it to GOGC alone.
	GCHeapFloor byteSize
}

// Main is the server process: ParseFlags, then Run until a signal, ctx, or
// Close. End-to-end tests drive it in-process.
type Main struct {
	Config Config
	// Stdout receives the startup banner; Logger the structured logs.
	// Logger nil makes Run log to stderr per --log-format and --log-level.
	Stdout io.Writer
	Logger *slog.Logger
	// Clock drives expiry and TTLs; tests inject a mock.
	Clock clock.Clock

	flags    *flag.FlagSet // as parsed, for PrintConfig
	stopc    chan struct{}
	stopOnce sync.Once
	ready    chan struct{}
	done     chan struct{}
	addr     net.Addr
	httpAddr net.Addr
}

// NewMain returns a Main with default configuration, writing the banner to
// stdout and logs to stderr.
func NewMain() *Main {
	return &Main{
		Stdout: os.Stdout,
		Clock:  clock.New(),
		stopc:  make(chan struct{}),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// ParseFlags fills m.Config from, in order of precedence, args, the
// environment (getenv; KVSTORE_ and the flag name in upper snake case) and
// the TOML file named by --config (keys are flag names). It returns
// flag.ErrHelp after printing help for -h/--help.
func (m *Main) ParseFlags(args []string, getenv func(string) string) error {
	c := &m.Config
	fs := flag.NewFlagSet("kvstore-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	m.flags = fs
	fs.StringVar(&c.ConfigFile, "config", "", "TOML `file` of settings, keys named like the flags (see docs/kvstore.example.toml); flags and env win over it")
	fs.BoolVar(&c.PrintConfig, "print-config", false, "print the effective configuration as TOML and exit")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&c.Listen, "listen", "localhost:50051", "`address` to serve gRPC on")
	fs.StringVar(&c.DataDir, "data-dir", "./data", "`directory` for the data files, created if missing")
	fs.StringVar(&c.HTTPListen, "http-listen", "localhost:8080", "`address` for HTTP: REST API under /v1/keys/, /healthz, /readyz, /metrics (empty disables)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the HTTP listener")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `file`: serve gRPC and HTTP over TLS (with --tls-key; reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM CA `file`: require client certificates signed by it (mTLS)")
	fs.StringVar(&c.AuthFile, "auth-file", "", "token `file`, one 'ROLE SHA256HEX [NAME]' per line: require a bearer token (reloaded on SIGHUP)")
	fs.BoolVar(&c.MetricsOpen, "metrics-open", false, "serve /metrics without a token when --auth-file is set")
	fs.Var(&c.MaxMemory, "max-memory", "limit on the estimated memory of the data, e.g. `512MiB`: past it, writes that grow the data get ResourceExhausted (0: none)")
	c.GCHeapFloor = DefaultGCHeapFloor
	fs.Var(&c.GCHeapFloor, "gc-heap-floor", "heap `size` below which Go's garbage collector does not start a cycle, e.g. 64MiB: with a small data set it would otherwise collect every few MB of request garbage (0: GOGC alone)")
	fs.IntVar(&c.MaxConnections, "max-connections", 4096, "most open connections per listener (gRPC and HTTP each)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 30*time.Second, "longest any request may take on the server, whatever the client's deadline (0: none)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow a non-loopback listen address without --auth-file or TLS (protected mode off)")
	fs.DurationVar(&c.ExpireInterval, "expire-interval", actor.DefaultExpireInterval, "how often active expiry removes expired keys")
	fs.IntVar(&c.MaxKeyBytes, "max-key-bytes", rpc.DefaultMaxKeyBytes, "largest accepted key, in `bytes`")
	fs.IntVar(&c.MaxValueBytes, "max-value-bytes", rpc.DefaultMaxValueBytes, "largest accepted value, in `bytes`")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "how long shutdown waits for in-flight requests before cancelling them")
	fs.TextVar(&c.LogLevel, "log-level", slog.LevelInfo, "log `level`: debug, info, warn or error")
	fs.TextVar(&c.Fsync, "fsync", wal.FsyncAlways, "log durability `policy`: always (acknowledge after fsync), everysec (fsync once a second; a crash may lose about 1 s of acknowledged writes) or no (leave it to the OS)")
	fs.Int64Var(&c.SegmentBytes, "wal-segment-bytes", wal.DefaultSegmentBytes, "size at which the log starts a new segment file, in `bytes`")
	c.PreallocBytes = wal.DefaultPreallocBytes
	fs.Var(&c.PreallocBytes, "wal-prealloc-bytes", "how far ahead of its records the log zero-fills its file, e.g. `1MiB`, so an fsync need not update the file size (0: off, for copy-on-write file systems)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", 30*time.Second, "how often to write a snapshot (0 disables periodic snapshots)")
	fs.BoolVar(&c.NoFinalSnapshot, "no-final-snapshot", false, "skip the snapshot at shutdown (restart then replays the log)")

	// The environment is applied first and the command line over it;
	// ff then reads the config file for the flags neither has set.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		f.Usage += " (env " + env + ")"
		if v := getenv(env); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, env, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	fs.Usage = func() {
		fmt.Fprintf(m.Stdout, "Usage: kvstore-server [flags]\n\nRuns the kvstore gRPC server (kvstore.v1.KVStore).\n\nFlags:\n")
		fs.SetOutput(m.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := ff.Parse(fs, args, ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(fftoml.Parser))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return flag.ErrHelp
		}
		if c.ConfigFile != "" && !strings.HasPrefix(err.Error(), "error parsing commandline") {
			return fmt.Errorf("config file %s: %w", c.ConfigFile, err)
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c.validate()
}

// WriteConfig writes the effective configuration, after ParseFlags, as a
// TOML file that --config accepts. No setting is secret yet; one that is
// must be redacted here.
func (m *Main) WriteConfig(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# kvstore-server effective configuration\n")
	m.flags.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "print-config" {
			return
		}
		v := f.Value.String()
		if _, isBool := f.Value.(interface{ IsBoolFlag() bool }); !isBool {
			if _, err := strconv.ParseInt(v, 10, 64); err != nil {
				v = strconv.Quote(v)
			}
		}
		fmt.Fprintf(&b, "%s = %s\n", f.Name, v)
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// newLogger returns the logger --log-format and --log-level ask for.
func newLogger(w io.Writer, c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func envName(flagName string) string {
	return "KVSTORE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (c *Config) validate() error {
	switch {
	case c.Listen == "":
		return errors.New("--listen must not be empty")
	case c.DataDir == "":
		return errors.New("--data-dir must not be empty")
	case c.ExpireInterval <= 0:
		return fmt.Errorf("--expire-interval must be positive, got %v", c.ExpireInterval)
	case c.MaxKeyBytes <= 0:
		return fmt.Errorf("--max-key-bytes must be positive, got %d", c.MaxKeyBytes)
	case c.MaxValueBytes <= 0 || c.MaxValueBytes > 256<<20:
		return fmt.Errorf("--max-value-bytes must be between 1 and %d, got %d", 256<<20, c.MaxValueBytes)
	case c.ShutdownGrace < 0:
		return fmt.Errorf("--shutdown-grace must not be negative, got %v", c.ShutdownGrace)
	case c.SegmentBytes < 1<<10:
		return fmt.Errorf("--wal-segment-bytes must be at least 1024, got %d", c.SegmentBytes)
	case c.SnapshotInterval < 0:
		return fmt.Errorf("--snapshot-interval must not be negative, got %v", c.SnapshotInterval)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format must be text or json, got %q", c.LogFormat)
	case c.MaxConnections <= 0:
		return fmt.Errorf("--max-connections must be positive, got %d", c.MaxConnections)
	case c.RequestTimeout < 0:
		return fmt.Errorf("--request-timeout must not be negative, got %v", c.RequestTimeout)
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case c.TLSClientCA != "" && c.TLSCert == "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	}
	return c.checkProtected()
}

// Ready is closed once the server accepts requests and reports SERVING.
func (m *Main) Ready() <-chan struct{} { return m.ready }

// Addr is the address the gRPC server listens on; valid once Ready is
// closed.
func (m *Main) Addr() net.Addr { return m.addr }

// HTTPAddr is the address of the HTTP listener, nil without one; valid
// once Ready is closed.
func (m *Main) HTTPAddr() net.Addr { return m.httpAddr }

// Run starts the server and blocks until it has shut down in order after
// SIGINT/SIGTERM, ctx's end or Close. A clean shutdown returns nil. A
// second signal during shutdown kills the process at once: the signal
// handler has stopped catching signals by then.
func (m *Main) Run(ctx context.Context) (err error) {
	defer close(m.done)
	c := m.Config
	if m.Logger == nil {
		m.Logger = newLogger(os.Stderr, c)
	}
	log := m.Logger

	// Lock first: a second server on the same dir must fail before it
	// claims a port or prints that it is starting.
	lock, err := lockDataDir(c.DataDir)
	if err != nil {
		return err
	}
	_, stopGC := startGCFloor(uint64(c.GCHeapFloor))
	defer stopGC()
	_, port, _ := net.SplitHostPort(c.Listen)
	fmt.Fprintf(m.Stdout, "gRPC server starting on port %s...\n", port)
	metrics := rpc.NewMetrics(m.Clock)
	svc := rpc.NewService(nil, rpc.Options{
		MaxKeyBytes:    c.MaxKeyBytes,
		MaxValueBytes:  c.MaxValueBytes,
		Clock:          m.Clock,
		Logger:         log,
		RequestTimeout: c.RequestTimeout,
	})
	metrics.SetMemoryLimit(int64(c.MaxMemory))
	sec, err := loadSecurity(c)
	if err != nil {
		lock.release()
		return err
	}
	fr, err := listenFronts(c, svc, metrics, sec)
	if err != nil {
		lock.release()
		return err
	}
	m.addr = fr.grpcLis.Addr()
	if fr.httpLis != nil {
		m.httpAddr = fr.httpLis.Addr()
	}
	// Serving starts before recovery so health checks get an answer
	// (NOT_SERVING) while the data loads; KVStore calls are Unavailable
	// until the actor is attached.
	fr.serve()
	abort := func(err error) error {
		fr.stop()
		return err
	}

	st, err := openStorage(lock, c, m.Clock, log, metrics)
	if err != nil {
		return abort(err)
	}
	a := actor.New(actor.Config{
		State:          st.state,
		Seq:            st.seq,
		Log:            st.log,
		Clock:          m.Clock,
		ExpireInterval: c.ExpireInterval,
		ObserveBatch:   metrics.ObserveBatch,
		MaxMemory:      int64(c.MaxMemory),
	})
	st.state = nil // the actor owns it now
	snaps, err := st.snapshotter(a, c, m.Clock, log, metrics)
	if err != nil {
		a.Stop()
		st.close(log)
		return abort(err)
	}
	metrics.Attach(a, st.log, snaps)
	svc.Attach(a)
	fr.grpc.SetServing()

	realPort := strconv.Itoa(m.addr.(*net.TCPAddr).Port)
	fmt.Fprintf(m.Stdout, "Key-Value Store gRPC server is running on port %s\n", realPort)
	fmt.Fprintf(m.Stdout, "Press Ctrl+C to stop the server\n")
	log.Info("serving", "grpc", m.addr.String(), "http", c.HTTPListen, "data_dir", c.DataDir, "fsync", c.Fsync.String())
	close(m.ready)

	// Interrupts run in the order added, each returning once its
	// component has stopped: drain RPCs, final snapshot (the actor still
	// answers it), stop the actor, then flush and close the log.
	var g run.Group
	{
		g.Add(run.SignalHandler(ctx, syscall.SIGINT, syscall.SIGTERM))
	}
	{
		g.Add(func() error {
			<-m.stopc
			return nil
		}, func(error) {
			m.stopOnce.Do(func() { close(m.stopc) })
		})
	}
	if sec.tls != nil || sec.auth != nil {
		// SIGHUP re-reads certificates and tokens without dropping a
		// connection.
		hupc := make(chan os.Signal, 1)
		signal.Notify(hupc, syscall.SIGHUP)
		stop := make(chan struct{})
		g.Add(func() error {
			for {
				select {
				case <-hupc:
					sec.reload(log)
				case <-stop:
					return nil
				}
			}
		}, func(error) {
			signal.Stop(hupc)
			close(stop)
		})
	}
	{
		g.Add(fr.wait, func(error) {
			log.Info("shutting down: draining in-flight requests", "grace", c.ShutdownGrace)
			ctx, cancel := m.Clock.WithTimeout(context.Background(), c.ShutdownGrace)
			defer cancel()
			fr.shutdown(ctx)
		})
	}
	{
		ctx, cancel := context.WithCancel(context.Background())
		stopped := make(chan struct{})
		g.Add(func() error {
			defer close(stopped)
			return snaps.Run(ctx)
		}, func(error) {
			cancel()
			<-stopped
			if c.NoFinalSnapshot {
				return
			}
			if _, err := snaps.Snapshot(context.Background()); err != nil {
				log.Error("final snapshot failed; the log still holds every write", "err", err)
			}
		})
	}
	{
		stopped := make(chan struct{})
		g.Add(func() error {
			<-stopped
			return nil
		}, func(error) {
			a.Stop()
			close(stopped)
		})
	}
	var closeErr error
	{
		closed := make(chan struct{})
		g.Add(func() error {
			<-closed
			return nil
		}, func(error) {
			if closeErr = st.close(log); closeErr != nil {
				log.Error("closing the log failed", "err", closeErr)
			}
			close(closed)
		})
	}
	err = g.Run()
	if closeErr != nil {
		return fmt.Errorf("close log: %w", closeErr)
	}
	// The handler returns *SignalError (see its doc): match the pointer.
	var sig *run.SignalError
	switch {
	case errors.As(err, &sig):
		log.Info("shutdown complete", "signal", sig.Signal.String())
		return nil
	case err == nil, errors.Is(err, context.Canceled):
		log.Info("shutdown complete")
		return nil
	}
	return err
}

// Close shuts a running server down in order and waits for Run to return.
// Call it only after Run has been started.
func (m *Main) Close() error {
	m.stopOnce.Do(func() { close(m.stopc) })
	<-m.done
	return nil
}
