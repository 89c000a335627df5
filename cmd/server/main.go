// Command kvstore-server runs the kvstore server (package kvstore/server).
//
// This file is flag parsing and nothing else: every setting is a flag, a
// KVSTORE_* environment variable (--listen is KVSTORE_LISTEN) or a key of
// the TOML file named by --config, in that order of precedence. Run with
// --help for the list.
//
//	kvstore-server aof dump|check [--fix [--force]]  inspect and repair the log
//	kvstore-server token new --role ROLE             make an API token
//
// From a fresh clone, `cd cmd/server && go run main.go` serves on
// localhost:50051 with its data in ./data.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/fftoml"

	"kvstore/rpc"
	"kvstore/server"
	"kvstore/wal"
)

const envPrefix = "KVSTORE"

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "aof":
			os.Exit(runAOF(os.Args[2:], os.Stdout, os.Stderr))
		case "token":
			os.Exit(runToken(os.Args[2:], os.Stdout, os.Stderr))
		}
	}
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "kvstore-server: %v\nRun 'kvstore-server --help' for usage.\n", err)
		os.Exit(2)
	}
	if m.PrintConfig {
		if err := m.WriteConfig(os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	m.Config.Stdout = os.Stdout
	m.Config.HandleSignals = true
	s, err := server.New(m.Config)
	if err == nil {
		err = s.Run(context.Background())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kvstore-server: %v\n", err)
		os.Exit(1)
	}
}

// Main holds the parsed command line: the server's Config plus the flags
// that only the command has. End-to-end tests reuse it.
type Main struct {
	Config server.Config
	// ConfigFile is the TOML file the settings were read from, if any.
	ConfigFile  string
	PrintConfig bool
	// Stdout receives --help; nil is os.Stdout.
	Stdout io.Writer

	flags *flag.FlagSet // as parsed, for WriteConfig
}

// NewMain returns a Main holding server.DefaultConfig.
func NewMain() *Main { return &Main{Config: server.DefaultConfig()} }

// ParseFlags fills m from, in order of precedence, args, the environment
// (KVSTORE_ and the flag name in upper snake case) and the TOML file named
// by --config (keys are flag names), then validates the result. It
// returns flag.ErrHelp after printing help for -h/--help.
func (m *Main) ParseFlags(args []string) error {
	c := &m.Config
	fs := flag.NewFlagSet("kvstore-server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	m.flags = fs
	fs.StringVar(&m.ConfigFile, "config", "", "TOML `file` of settings, keys named like the flags (see docs/kvstore.example.toml); flags and env win over it")
	fs.BoolVar(&m.PrintConfig, "print-config", false, "print the effective configuration as TOML and exit")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log `format`: text or json")
	fs.StringVar(&c.Listen, "listen", c.Listen, "`address` to serve gRPC on")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "`directory` for the data files, created if missing")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "`address` for HTTP: REST API under /v1/keys/, /healthz, /readyz, /metrics (empty disables)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve /debug/pprof/ on the HTTP listener")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `file`: serve gRPC and HTTP over TLS (with --tls-key; reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM CA `file`: require client certificates signed by it (mTLS)")
	fs.StringVar(&c.AuthFile, "auth-file", "", "token `file`, one 'ROLE SHA256HEX [NAME]' per line: require a bearer token (reloaded on SIGHUP)")
	fs.BoolVar(&c.MetricsOpen, "metrics-open", false, "serve /metrics without a token when --auth-file is set")
	fs.Var(&c.MaxMemory, "max-memory", "limit on the estimated memory of the data, e.g. `512MiB`: past it, writes that grow the data get ResourceExhausted (0: none)")
	fs.Var(&c.GCHeapFloor, "gc-heap-floor", "heap `size` below which Go's garbage collector does not start a cycle, e.g. 64MiB: with a small data set it would otherwise collect every few MB of request garbage (0: GOGC alone)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most open connections per listener (gRPC and HTTP each)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "longest any request may take on the server, whatever the client's deadline (0: none)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow a non-loopback listen address without --auth-file or TLS (protected mode off)")
	fs.DurationVar(&c.ExpireInterval, "expire-interval", c.ExpireInterval, "how often active expiry removes expired keys")
	fs.Var(&c.MaxKeyBytes, "max-key-bytes", "largest accepted key, e.g. `1KiB`")
	fs.Var(&c.MaxValueBytes, "max-value-bytes", "largest accepted value, e.g. `1MiB`; with --max-key-bytes it must fit one log record (64 MiB)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long shutdown waits for in-flight requests before cancelling them")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn or error")
	fs.TextVar(&c.Fsync, "fsync", c.Fsync, "log durability `policy`: always (acknowledge after fsync), everysec (fsync once a second; a crash may lose about 1 s of acknowledged writes) or no (leave it to the OS)")
	fs.Var(&c.WALSegmentBytes, "wal-segment-bytes", "`size` at which the log starts a new segment file, e.g. 64MiB")
	fs.Var(&c.WALPreallocBytes, "wal-prealloc-bytes", "how far ahead of its records the log zero-fills its file, e.g. `1MiB`, so an fsync need not update the file size (0: off, for copy-on-write file systems)")
	fs.DurationVar(&c.SnapshotInterval, "snapshot-interval", c.SnapshotInterval, "how often to write a snapshot (0 disables periodic snapshots)")
	fs.BoolVar(&c.NoFinalSnapshot, "no-final-snapshot", false, "skip the snapshot at shutdown (restart then replays the log)")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	// The flag package calls Usage on every parse error too; a bad flag
	// gets its error and one line pointing at --help instead (see main).
	fs.Usage = func() {}
	usage := func() {
		out := cmp.Or[io.Writer](m.Stdout, os.Stdout)
		fmt.Fprintf(out, "Usage: kvstore-server [flags]\n       kvstore-server aof|token ... (--help for each)\n\nRuns the kvstore server (gRPC kvstore.v1.KVStore, HTTP/JSON).\n\nFlags:\n")
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	err := ff.Parse(fs, args,
		ff.WithEnvVarPrefix(envPrefix),
		ff.WithConfigFileFlag("config"),
		ff.WithConfigFileParser(fftoml.Parser))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return flag.ErrHelp
		}
		if m.ConfigFile != "" && !strings.HasPrefix(err.Error(), "error parsing commandline") &&
			!strings.HasPrefix(err.Error(), "error parsing environment") {
			return fmt.Errorf("config file %s: %w", m.ConfigFile, err)
		}
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c.Validate()
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

var (
	errCommandLine = regexp.MustCompile(`^error parsing commandline arguments: (.*)$`)
	errEnv         = regexp.MustCompile(`^error parsing environment variables: error setting flag ".*" from environment variable "(.*)": (.*)$`)
	errUndefined   = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	errNeedsValue  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	errBadValue    = regexp.MustCompile(`^invalid (?:boolean )?value ".*" for (?:flag )?-+([^:]*): (.*)$`)
)

// flagError says what ff and package flag report about a bad flag or
// environment variable in one clause that starts with the setting as the
// user writes it: "--snapshot-interval: ...", "KVSTORE_LISTEN: ...",
// "unknown flag --bogus". Package flag names a flag "-name" and ff
// prefixes where it looked; neither helps a person fix the command.
func flagError(err error) error {
	msg := err.Error()
	if m := errEnv.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s: %s", m[1], m[2])
	}
	if m := errCommandLine.FindStringSubmatch(msg); m != nil {
		msg = m[1]
	}
	if m := errUndefined.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("unknown flag --%s", m[1])
	}
	if m := errNeedsValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("--%s needs a value", m[1])
	}
	if m := errBadValue.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("--%s: %s", m[1], m[2])
	}
	if msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// envName is the environment variable ff reads for a flag.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseSubcommand parses the flags of `kvstore-server NAME ...`. When it
// reports !ok the caller returns code: 0 after --help (usage printed), 2
// for a bad flag or a stray argument (the problem printed).
func parseSubcommand(fs *flag.FlagSet, args []string, name string, usage func(), stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return 0, false
		}
		fmt.Fprintf(stderr, "kvstore-server %s: %v\nRun 'kvstore-server %s --help' for usage.\n", name, err, name)
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kvstore-server %s: unexpected argument %q\n", name, fs.Arg(0))
		return 2, false
	}
	return 0, true
}

// runAOF is `kvstore-server aof dump|check`: the log as a tool, like
// redis-check-aof. It returns the exit code: 0 fine, 1 the log has a
// problem left, 2 bad usage or an I/O failure.
func runAOF(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, `Usage:
  kvstore-server aof dump  [--data-dir D]          print every log record as a JSON line
  kvstore-server aof check [--data-dir D] [--fix [--force]]
                                                   validate every segment against the snapshot
                                                   start-up loads, and say what each repair
                                                   drops; --fix makes the repairs that drop
                                                   nothing the snapshot lacks, --force also the
                                                   others (dropped data is kept in .broken
                                                   files); stop the server first
`)
	}
	if len(args) == 0 {
		usage()
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet("aof "+cmd, flag.ContinueOnError)
	dataDir := fs.String("data-dir", cmp.Or(os.Getenv(envName("data-dir")), server.DefaultDataDir), "data directory (env KVSTORE_DATA_DIR)")
	fix := fs.Bool("fix", false, "with check: repair the log")
	force := fs.Bool("force", false, "with check --fix: also make repairs that drop acknowledged records the snapshot does not cover")
	if code, ok := parseSubcommand(fs, args[1:], "aof", usage, stderr); !ok {
		return code
	}
	switch cmd {
	case "dump":
		if *fix || *force {
			fmt.Fprintln(stderr, "kvstore-server aof: --fix and --force apply to check only")
			return 2
		}
		if err := wal.DumpDataDir(*dataDir, stdout); err != nil {
			fmt.Fprintf(stderr, "kvstore-server aof dump: %v\n", err)
			return 2
		}
		return 0
	case "check":
		if *force && !*fix {
			fmt.Fprintln(stderr, "kvstore-server aof check: --force needs --fix")
			return 2
		}
		res, err := server.CheckLog(*dataDir, server.CheckLogOptions{Fix: *fix, Force: *force}, stdout)
		if err != nil {
			fmt.Fprintf(stderr, "kvstore-server aof check: %v\n", err)
			return 2
		}
		if !res.OK() {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "kvstore-server aof: unknown command %q (want dump or check)\n", cmd)
	usage()
	return 2
}

// runToken is `kvstore-server token new --role ROLE [--name NAME]`. Exit
// 0, or 2 for bad usage.
func runToken(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, "Usage: kvstore-server token new --role read|write|admin [--name NAME]\n")
	}
	if len(args) == 0 || args[0] != "new" {
		usage()
		return 2
	}
	fs := flag.NewFlagSet("token new", flag.ContinueOnError)
	role := fs.String("role", "", "read (Get), write (Get, Set, Delete) or admin (everything)")
	name := fs.String("name", "", "a name for the token, kept in the auth file to tell tokens apart")
	if code, ok := parseSubcommand(fs, args[1:], "token", usage, stderr); !ok {
		return code
	}
	if err := rpc.PrintNewToken(*role, *name, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "kvstore-server token: %v\n", err)
		return 2
	}
	return 0
}
