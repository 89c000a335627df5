// Command kvstore-server runs the kvstore server (package kvstore/server).
//
// This file is flag parsing and nothing else: every setting is a flag, a
// KVSTORE_* environment variable (--listen is KVSTORE_LISTEN) or a key of
// the TOML file named by --config, in that order of precedence. Run with
// --help for the list.
//
//	kvstore-server aof dump|check [--fix [--force]]  inspect and repair the log
//	kvstore-server backup check FILE                 validate a backup
//	kvstore-server restore FILE --data-dir D         make a data dir of a backup
//	kvstore-server token new --role ROLE             make an API token
//
// From a fresh clone, `cd cmd/server && go run main.go` serves on
// localhost:50051 with its data in ./data.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/fftoml"

	"kvstore/internal/units"
	"kvstore/rpc"
	"kvstore/server"
	"kvstore/snap"
	"kvstore/wal"
)

const envPrefix = "KVSTORE"

func main() {
	if code, ok := runSubcommand(os.Args[1:], os.Stdout, os.Stderr); ok {
		os.Exit(code)
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
	fs.StringVar(&c.Listen, "listen", c.Listen, "`address` to serve gRPC and HTTP (REST, health, metrics) on")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "`directory` for the data files, created if missing")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "`address` of a separate HTTP port (REST API under /v1/keys/, /healthz, /readyz, /metrics); HTTP is always served on --listen too (empty: no separate port)")
	fs.StringVar(&c.RESPListen, "resp-listen", c.RESPListen, "`address` of the Redis-protocol front (redis-cli, Redis client libraries; single-node mode only for now; empty: off)")
	fs.BoolVar(&c.Pprof, "pprof", c.Pprof, "serve /debug/pprof/ on the HTTP listener")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate `file`: serve gRPC and HTTP over TLS (with --tls-key; reloaded on SIGHUP)")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&c.TLSClientCA, "tls-client-ca", "", "PEM CA `file`: require client certificates signed by it (mTLS)")
	fs.StringVar(&c.AuthFile, "auth-file", "", "token `file`, one 'ROLE SHA256HEX [NAME]' per line: require a bearer token (reloaded on SIGHUP)")
	fs.BoolVar(&c.MetricsOpen, "metrics-open", false, "serve /metrics without a token when --auth-file is set")
	fs.Var(&c.MaxMemory, "max-memory", "limit on the estimated memory of the data, a `size` like 512MiB: past it, writes that grow the data get ResourceExhausted (0: none)")
	fs.Var(&c.GCHeapFloor, "gc-heap-floor", "heap `size` below which Go's garbage collector does not start a cycle, e.g. 64MiB: with a small data set it would otherwise collect every few MB of request garbage (0: GOGC alone)")
	fs.IntVar(&c.MaxConnections, "max-connections", c.MaxConnections, "most open connections per listener (gRPC and HTTP each)")
	fs.Var((*durationValue)(&c.RequestTimeout), "request-timeout", "longest any request may take on the server, whatever the client's deadline, a `duration` like 30s (0s: none)")
	fs.BoolVar(&c.Insecure, "insecure", false, "allow a non-loopback listen address without --auth-file or TLS (protected mode off)")
	fs.Var((*durationValue)(&c.ExpireInterval), "expire-interval", "how often active expiry removes expired keys, a `duration` like 1s")
	fs.Var(&c.MaxKeyBytes, "max-key-bytes", "largest accepted key `size`, e.g. 1KiB")
	fs.Var(&c.MaxValueBytes, "max-value-bytes", "largest accepted value `size`, e.g. 1MiB; with --max-key-bytes it must fit one log record (64 MiB)")
	fs.Var((*durationValue)(&c.ShutdownGrace), "shutdown-grace", "how long shutdown waits for in-flight requests before cancelling them, a `duration` like 10s")
	fs.TextVar(&c.LogLevel, "log-level", c.LogLevel, "log `level`: debug, info, warn or error")
	fs.TextVar(&c.Fsync, "fsync", c.Fsync, "log durability `policy`: always (acknowledge after fsync), everysec (fsync once a second; a crash may lose about 1 s of acknowledged writes) or no (leave it to the OS)")
	fs.Var(&c.WALSegmentBytes, "wal-segment-bytes", "`size` at which the log starts a new segment file, e.g. 64MiB")
	fs.Var(&c.WALPreallocBytes, "wal-prealloc-bytes", "how far ahead of its records the log zero-fills its file, a `size` like 1MiB, so an fsync need not update the file size (0: off, for copy-on-write file systems)")
	fs.Var((*durationValue)(&c.SnapshotInterval), "snapshot-interval", "how often to write a snapshot, a `duration` like 30s (0s disables periodic snapshots)")
	fs.BoolVar(&c.NoFinalSnapshot, "no-final-snapshot", false, "skip the snapshot at shutdown (restart then replays the log)")
	fs.StringVar(&c.NodeID, "node-id", "", "this node's `name` in the cluster (cluster mode)")
	fs.StringVar(&c.RaftListen, "raft-listen", "", "`address` for raft traffic between nodes: turns cluster mode on (empty: a single node)")
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", "", "raft `address` the other nodes dial (default: --raft-listen)")
	fs.StringVar(&c.Join, "join", "", "client `address` of a running cluster's node: ask it to add this node (once; ignored when the data dir holds cluster state)")
	fs.StringVar(&c.JoinAs, "join-as", "voter", "with --join: `role` voter, or nonvoter for a read replica that replicates without voting")
	fs.StringVar(&c.PeerTokenFile, "peer-token-file", "", "`file` holding the admin token this node presents to the other nodes (--join, publishing its address) when they run with --auth-file")
	fs.StringVar(&c.RaftPeerAddrs, "raft-peer-addrs", "", "`addresses` to dial some nodes' raft ports at, ID=HOST:PORT,..., instead of their configured raft addresses (a NAT or a proxy between nodes)")
	fs.StringVar(&c.InitialCluster, "initial-cluster", "", "`members` of a new cluster, ID=RAFTADDR,..., the same on every node; ignored once the data dir holds cluster state")
	fs.VisitAll(func(f *flag.Flag) { f.Usage += " (env " + envName(f.Name) + ")" })
	// The flag package calls Usage on every parse error too; a bad flag
	// gets its error and one line pointing at --help instead (see main).
	fs.Usage = func() {}
	usage := func() {
		out := cmp.Or[io.Writer](m.Stdout, os.Stdout)
		fmt.Fprintf(out, "Usage: kvstore-server [flags]\n       kvstore-server COMMAND [flags]\n\n"+
			"Runs the kvstore server (gRPC kvstore.v1.KVStore, HTTP/JSON), or one of its tools.\n\nCommands:\n")
		for _, g := range commandGroups {
			writeCommandList(out, g.commands)
		}
		fmt.Fprintf(out, "  kvstore-server %-12s %s\n", "help [CMD]", "this help, or a command's")
		fmt.Fprintf(out, "\nRun 'kvstore-server COMMAND --help' for a command's flags.\n\nFlags:\n")
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

// durationValue is a time.Duration flag whose error says what to write.
// A plain number is refused rather than read as seconds: Go, TOML and
// people disagree on its unit (--snapshot-interval 30 could mean ms), and
// one spelling everywhere (flag, env, file, --print-config) is simpler.
// 0 needs no unit.
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }

func (d *durationValue) Get() any { return time.Duration(*d) }

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err == nil {
		*d = durationValue(v)
		return nil
	}
	if _, numErr := strconv.ParseFloat(strings.TrimSpace(s), 64); numErr == nil {
		return fmt.Errorf("%q is not a duration; want a duration like %ss", s, strings.TrimSpace(s))
	}
	return fmt.Errorf("%q is not a duration; want a duration like 30s, 500ms or 1h", s)
}

// envName is the environment variable ff reads for a flag.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// runSubcommand runs `kvstore-server NAME ...` when NAME is a command
// rather than a flag: a group (aof, token) or help. ok is false when
// args are the server's flags.
func runSubcommand(args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if len(args) == 0 {
		return 0, false
	}
	if args[0] == "help" {
		if len(args) == 1 {
			m := NewMain()
			m.Stdout = stdout
			m.ParseFlags([]string{"--help"})
			return 0, true
		}
		for _, g := range commandGroups {
			if g.name == args[1] {
				return runGroup(g.name, g.commands, append([]string{"help"}, args[2:]...), stdout, stderr), true
			}
		}
		return usageError(stderr, "", "unknown command %q (want %s)", args[1], groupNames()), true
	}
	for _, g := range commandGroups {
		if g.name == args[0] {
			return runGroup(g.name, g.commands, args[1:], stdout, stderr), true
		}
	}
	return 0, false
}

// A command is one leaf of `kvstore-server NAME [SUB] [ARG...] [flags]`:
// its arguments and flags, its synopsis for the usage lines and what it
// does. Flags may come before, between or after the arguments.
type command struct {
	name     string   // "aof dump"
	args     []string // names of its arguments, in order: "FILE"
	synopsis string   // after the name: "[--data-dir D] [--full]"
	about    string   // one line for the lists; more lines for its own --help
	flags    func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int
}

// commandGroups are the subcommands by their first word, in the order
// the usage lists them. A group of one command named like the group
// (restore) is that command: `kvstore-server restore FILE`.
var commandGroups = []struct {
	name     string
	commands []command
}{
	{"aof", aofCommands},
	{"backup", backupCommands},
	{"cluster", clusterCommands},
	{"restore", restoreCommands},
	{"token", tokenCommands},
}

// groupNames lists the commands' first words for an error message.
func groupNames() string {
	names := make([]string, len(commandGroups))
	for i, g := range commandGroups {
		names[i] = g.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// isHelp reports whether arg asks for help the way every command accepts.
func isHelp(arg string) bool {
	switch arg {
	case "help", "-h", "-help", "--help":
		return true
	}
	return false
}

// writeCommandList writes one line per subcommand, for usages.
func writeCommandList(w io.Writer, cmds []command) {
	for _, c := range cmds {
		about, _, _ := strings.Cut(c.about, "\n")
		fmt.Fprintf(w, "  kvstore-server %-12s %s\n", c.name, about)
	}
}

// usageError prints err and the one line that says where the usage is,
// and returns 2, the exit status of bad usage.
func usageError(stderr io.Writer, cmd, format string, args ...any) int {
	prefix := strings.TrimSpace("kvstore-server " + cmd)
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", prefix, fmt.Sprintf(format, args...), prefix)
	return 2
}

// runGroup is `kvstore-server NAME ...` for a group of subcommands (aof,
// token): help for the group or one of them (--help, help, help SUB,
// SUB --help; stdout, exit 0), else the subcommand's exit status; 2 with
// the error first and a hint for an unknown or missing subcommand.
func runGroup(group string, cmds []command, args []string, stdout, stderr io.Writer) int {
	if len(cmds) == 1 && cmds[0].name == group {
		return runCommand(cmds[0], args, stdout, stderr)
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = strings.TrimPrefix(c.name, group+" ")
	}
	want := strings.Join(names, " or ")
	groupUsage := func(w io.Writer) {
		fmt.Fprintf(w, "Usage:\n")
		writeCommandList(w, cmds)
		fmt.Fprintf(w, "\nRun 'kvstore-server %s COMMAND --help' for a command's flags.\n", group)
	}
	if len(args) == 0 {
		return usageError(stderr, group, "missing command (want %s)", want)
	}
	sub, rest := args[0], args[1:]
	if isHelp(sub) {
		if len(rest) == 0 {
			groupUsage(stdout)
			return 0
		}
		sub, rest = rest[0], []string{"--help"}
	}
	for i, c := range cmds {
		if names[i] == sub {
			return runCommand(c, rest, stdout, stderr)
		}
	}
	return usageError(stderr, group, "unknown command %q (want %s)", sub, want)
}

// runCommand parses c's arguments and flags and runs it. --help (or a
// lone help) prints its usage and flags to stdout, exit 0; a bad flag, a
// missing or a stray argument gets the error and a hint, exit 2.
func runCommand(c command, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	run := c.flags(fs)
	usage := func() {
		fmt.Fprintf(stdout, "Usage: kvstore-server %s\n\n%s\n", strings.Join(append(append([]string{c.name}, c.args...), c.synopsis), " "), c.about)
		fmt.Fprintf(stdout, "\nFlags:\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	// package flag stops at the first argument; the rest is parsed again
	// after it, so that `restore FILE --data-dir D` works.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return 0
			}
			return usageError(stderr, c.name, "%v", flagError(err))
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) == 1 && pos[0] == "help" {
		usage()
		return 0
	}
	if len(pos) > len(c.args) {
		return usageError(stderr, c.name, "unexpected argument %q", pos[len(c.args)])
	}
	if len(pos) < len(c.args) {
		return usageError(stderr, c.name, "missing %s", c.args[len(pos)])
	}
	return run(pos, stdout, stderr)
}

// dataDirFlag is --data-dir of the aof commands, which default to the
// server's own setting (flag, then KVSTORE_DATA_DIR).
func dataDirFlag(fs *flag.FlagSet) *string {
	return fs.String("data-dir", cmp.Or(os.Getenv(envName("data-dir")), server.DefaultDataDir),
		"data `directory` (env KVSTORE_DATA_DIR)")
}

// dumpValueBytes is how much of a value `aof dump` shows without --full:
// enough to recognise it, little enough for a terminal line.
const dumpValueBytes = 64

// aofCommands are `kvstore-server aof dump|check`: the log as a tool, like
// redis-check-aof. Exit status: 0 fine, 1 the log has a problem left, 2
// bad usage or an I/O failure.
var aofCommands = []command{
	{
		name:     "aof check",
		synopsis: "[--data-dir D] [--fix [--force]]",
		about: `validate the log against the snapshot; --fix repairs it
Validates every segment against the snapshot start-up loads, and says
what each repair drops. --fix makes the repairs that drop nothing the
snapshot lacks, --force also the others (dropped data is kept in .broken
files); stop the server first. Exit status: 0 the log is valid, 1 a
problem is left, 2 bad usage or an I/O error.`,
		flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
			dataDir := dataDirFlag(fs)
			fix := fs.Bool("fix", false, "repair the log (the server must be stopped)")
			force := fs.Bool("force", false, "with --fix: also make repairs that drop acknowledged records the snapshot does not cover")
			return func(_ []string, stdout, stderr io.Writer) int {
				if *force && !*fix {
					return usageError(stderr, "aof check", "--force needs --fix")
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
		},
	},
	{
		name:     "aof dump",
		synopsis: "[--data-dir D] [--full]",
		about: `print every log record as a JSON line
A value longer than 64 bytes shows its first 64 bytes, then "… (N bytes)",
and its line has "truncated":true; --full prints every value whole.
Reads only, so it works beside a running server. Exit status: 0, or 2
for bad usage, an I/O error or a corrupt record (after the records
before it).`,
		flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
			dataDir := dataDirFlag(fs)
			full := fs.Bool("full", false, "print every value whole, however long")
			return func(_ []string, stdout, stderr io.Writer) int {
				opts := wal.DumpOptions{MaxValueBytes: dumpValueBytes}
				if *full {
					opts.MaxValueBytes = 0
				}
				if err := wal.DumpDataDir(*dataDir, stdout, opts); err != nil {
					fmt.Fprintf(stderr, "kvstore-server aof dump: %v\n", err)
					return 2
				}
				return 0
			}
		},
	},
}

// tokenCommands are `kvstore-server token new`. Exit 0, or 2 for bad
// usage.
var tokenCommands = []command{{
	name:     "token new",
	synopsis: "--role read|write|admin [--name NAME]",
	about: `make an API token and its --auth-file line
Prints the token (give it to the client) and the line to add to the
file named by --auth-file, which holds only the token's SHA-256.`,
	flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
		role := fs.String("role", "", "`role`: read (Get), write (Get, Set, Delete) or admin (everything)")
		name := fs.String("name", "", "a `name` for the token, kept in the auth file to tell tokens apart")
		return func(_ []string, stdout, stderr io.Writer) int {
			if err := rpc.PrintNewToken(*role, *name, stdout, stderr); err != nil {
				fmt.Fprintf(stderr, "kvstore-server token: %v\n", err)
				return 2
			}
			return 0
		}
	},
}}

func runAOF(args []string, stdout, stderr io.Writer) int {
	return runGroup("aof", aofCommands, args, stdout, stderr)
}

func runToken(args []string, stdout, stderr io.Writer) int {
	return runGroup("token", tokenCommands, args, stdout, stderr)
}

// backupCommands are `kvstore-server backup check`, etcdutl's `snapshot
// status` for kvstore's backups. Exit status: 0 valid, 1 damaged (or in a
// format this build cannot read), 2 bad usage or an I/O error.
var backupCommands = []command{{
	name:     "backup check",
	args:     []string{"FILE"},
	synopsis: "[--json]",
	about: `validate a backup offline; print its seq, keys, size and checksum
Reads FILE (from kvstore-client backup, GET /v1/admin/backup or a data
dir's snap/) end to end and checks every checksum, without keeping any
of it in memory. Keys whose TTL has passed by now are counted: a restore
does not bring them back. Exit status: 0 the backup is valid, 1 it is
damaged (the message names the offset), 2 bad usage or an I/O error.`,
	flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
		asJSON := fs.Bool("json", false, "print the result as one JSON object")
		return func(args []string, stdout, stderr io.Writer) int {
			st, err := server.CheckBackup(args[0], time.Now())
			return reportBackup("backup check", args[0], st, err, *asJSON, stdout, stderr)
		}
	},
}}

// backupJSON is `backup check --json`.
type backupJSON struct {
	File     string `json:"file"`
	Valid    bool   `json:"valid"`
	Error    string `json:"error,omitempty"`
	Seq      uint64 `json:"seq"`
	Keys     uint64 `json:"keys"`
	Expired  uint64 `json:"expired"`
	Size     int64  `json:"size"`
	Checksum string `json:"checksum"`
}

// isDamage reports whether err says a backup cannot be restored as it
// is, as opposed to failing to read it.
func isDamage(err error) bool {
	return errors.Is(err, snap.ErrCorrupt) || errors.Is(err, snap.ErrVersion)
}

// reportBackup prints what CheckBackup found and returns the exit status.
func reportBackup(cmd, file string, st snap.Status, err error, asJSON bool, stdout, stderr io.Writer) int {
	if err != nil && !isDamage(err) {
		fmt.Fprintf(stderr, "kvstore-server %s: %v\n", cmd, err)
		return 2
	}
	if asJSON {
		out := backupJSON{File: file, Valid: err == nil}
		if err != nil {
			out.Error = err.Error()
		} else {
			out.Seq, out.Keys, out.Expired, out.Size = st.Seq, st.Count, st.Expired, st.Bytes
			out.Checksum = fmt.Sprintf("%08x", st.Checksum)
		}
		b, _ := json.Marshal(out)
		fmt.Fprintf(stdout, "%s\n", b)
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvstore-server %s: %s is damaged: %v\n", cmd, file, err)
		return 1
	}
	if !asJSON {
		fmt.Fprintf(stdout, "%s: valid backup\n", file)
		fmt.Fprintf(stdout, "  seq       %d\n", st.Seq)
		fmt.Fprintf(stdout, "  keys      %d", st.Count)
		if st.Expired > 0 {
			fmt.Fprintf(stdout, " (%d expired by now: a restore leaves them out)", st.Expired)
		}
		fmt.Fprintf(stdout, "\n  size      %d bytes", st.Bytes)
		if st.Bytes >= 1<<10 {
			fmt.Fprintf(stdout, " (%s)", units.Bytes(uint64(st.Bytes)))
		}
		fmt.Fprintf(stdout, "\n")
		fmt.Fprintf(stdout, "  checksum  %08x\n", st.Checksum)
	}
	return 0
}

// restoreCommands are `kvstore-server restore`, etcdutl's `snapshot
// restore`. Exit status: 0 restored, 1 the backup is damaged (nothing
// changed), 2 bad usage, a data dir in use or not empty, or an I/O error.
var restoreCommands = []command{{
	name:     "restore",
	args:     []string{"FILE"},
	synopsis: "[--data-dir D] [--force] [--node-id ID --initial-cluster ID=RAFTADDR,...]",
	about: `make a data dir whose content is exactly a backup (offline)
Validates FILE first, then makes it the only snapshot of the data dir,
so that a server started on the dir serves exactly the backup's data;
keys whose TTL has passed are not loaded. Refuses the dir of a running
server, and a dir that holds data unless --force, which deletes that
data. The dir is replaced in one step: a failure leaves it as it was.
With --node-id and --initial-cluster it makes a node of a new cluster
instead, as etcdutl snapshot restore does: run it with the same backup
and members for every member, then start each with its --node-id and
--raft-listen. Exit status: 0 restored, 1 the backup is damaged (nothing
changed), 2 bad usage, a dir in use or not empty, or an I/O error.`,
	flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
		dataDir := dataDirFlag(fs)
		force := fs.Bool("force", false, "replace a data dir that holds data, deleting it")
		nodeID := fs.String("node-id", "", "restore a cluster node: its `ID` (with --initial-cluster)")
		initial := fs.String("initial-cluster", "", "restore a cluster node: the new cluster's `members`, ID=RAFTADDR,...")
		return func(args []string, stdout, stderr io.Writer) int {
			if (*nodeID == "") != (*initial == "") {
				return usageError(stderr, "restore", "--node-id and --initial-cluster go together")
			}
			res, err := server.Restore(args[0], *dataDir, server.RestoreOptions{Force: *force, NodeID: *nodeID, InitialCluster: *initial})
			if isDamage(err) {
				fmt.Fprintf(stderr, "kvstore-server restore: %s is damaged, nothing restored: %v\n", args[0], err)
				return 1
			}
			if err != nil {
				fmt.Fprintf(stderr, "kvstore-server restore: %v\n", err)
				return 2
			}
			b := res.Backup
			fmt.Fprintf(stdout, "restored %s into %s: seq %d, %d keys", args[0], *dataDir, b.Seq, b.Count-b.Expired)
			if b.Expired > 0 {
				fmt.Fprintf(stdout, " (%d more had expired and are left out)", b.Expired)
			}
			fmt.Fprintf(stdout, "\n")
			if len(res.Replaced) > 0 {
				fmt.Fprintf(stdout, "deleted what %s held before: %s\n", *dataDir, strings.Join(res.Replaced, ", "))
			}
			if *nodeID != "" {
				raftAddr := "RAFTADDR"
				for part := range strings.SplitSeq(*initial, ",") {
					if id, addr, _ := strings.Cut(strings.TrimSpace(part), "="); id == *nodeID {
						raftAddr = addr
					}
				}
				fmt.Fprintf(stdout, "start it with: kvstore-server --node-id %s --raft-listen %s --data-dir %s (once every member is restored)\n", *nodeID, raftAddr, *dataDir)
				return 0
			}
			fmt.Fprintf(stdout, "start it with: kvstore-server --data-dir %s\n", *dataDir)
			return 0
		}
	},
}}

// clusterCommands are `kvstore-server cluster recover`. Exit status: 0
// done, 2 bad usage or a failure.
var clusterCommands = []command{{
	name:     "cluster recover",
	synopsis: "--node-id ID --members ID=RAFTADDR,... [--data-dir D]",
	about: `force a cluster node's membership after a quorum is lost (offline)
When a majority of a cluster's nodes is gone for good, writes and
linearizable reads stop. Stop the survivors and run this on each with the
same --members (the survivors, or one alone), then start them with their
usual flags: they form a cluster of those members, from their own data.
Entries a node holds that were not committed become committed. Add new
nodes with --join afterwards.`,
	flags: func(fs *flag.FlagSet) func(args []string, stdout, stderr io.Writer) int {
		dataDir := dataDirFlag(fs)
		nodeID := fs.String("node-id", "", "this node's `ID`, as it ran")
		members := fs.String("members", "", "the `members` to keep, ID=RAFTADDR,... as --initial-cluster")
		return func(_ []string, stdout, stderr io.Writer) int {
			if *nodeID == "" || *members == "" {
				return usageError(stderr, "cluster recover", "--node-id and --members are required")
			}
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			if err := server.RecoverCluster(*dataDir, *nodeID, *members, log); err != nil {
				fmt.Fprintf(stderr, "kvstore-server cluster recover: %v\n", err)
				return 2
			}
			fmt.Fprintf(stdout, "recovered %s: its cluster is now %s; start it with its usual flags\n", *dataDir, *members)
			return 0
		}
	},
}}
