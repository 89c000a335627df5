// Command kvstore-client talks to a kvstore server.
//
//	kvstore-client                       run the demo (set, get, delete)
//	kvstore-client set KEY VALUE [--ttl 30s]
//	kvstore-client set KEY -             the value from stdin
//	kvstore-client set KEY --file F      the value from file F
//	kvstore-client get KEY               print the value; exit 1 if missing
//	kvstore-client del KEY               exit 1 if there was no such key
//	kvstore-client backup -o FILE        stream a backup of the data to FILE
//	kvstore-client backup -o -           ... to stdout
//	kvstore-client info [--json]         the server's version, data and limits
//
// Every flag but --file, -o and --json can also be set by a KVSTORE_*
// environment variable, the flag name in upper snake case (--addr is
// KVSTORE_ADDR); a flag on the command line wins. Errors print the gRPC
// status code and message and exit 2; bad usage prints the error and a
// pointer to --help, exit 2. help, help CMD, --help and CMD --help print
// help to stdout, exit 0.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"kvstore/internal/cliflag"
	"kvstore/internal/units"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

// Exit codes.
const (
	exitOK      = 0
	exitMissing = 1 // get or del of a key that does not exist
	exitError   = 2 // bad usage or a failed request
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// envPrefix starts the environment variable of every flag: --addr is
// KVSTORE_ADDR, --tls-server-name KVSTORE_TLS_SERVER_NAME.
const envPrefix = "KVSTORE"

// envName is the variable ff.WithEnvVarPrefix(envPrefix) reads for the flag
// named flagName.
func envName(flagName string) string {
	return envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usageError is bad command-line usage, as opposed to a failed request.
type usageError struct{ error }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvstore-client", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		addr string
		co   rpc.ClientOptions
	)
	fs.StringVar(&addr, "addr", "localhost:50051", "server `address`")
	fs.StringVar(&co.TLS.CAFile, "tls-ca", "", "PEM CA `file` to verify the server with (turns TLS on; default: system roots)")
	fs.StringVar(&co.TLS.CertFile, "tls-cert", "", "PEM client certificate `file`, for servers that require one (mTLS)")
	fs.StringVar(&co.TLS.KeyFile, "tls-key", "", "PEM private key `file` of --tls-cert")
	fs.StringVar(&co.TLS.ServerName, "tls-server-name", "", "`name` to verify the server certificate against (default: the host of --addr)")
	fs.StringVar(&co.Token, "token", "", "bearer `token` for servers started with --auth-file")
	var timeout time.Duration
	cliflag.DurationVar(fs, &timeout, "timeout", 5*time.Second, "deadline for each request (for backup: for each message), a `duration` such as 5s or 500ms")
	file := fs.String("file", "", "with set: read the value from this `file` (set KEY --file F); set KEY - reads it from stdin")
	var ttl time.Duration
	cliflag.DurationVar(fs, &ttl, "ttl", 0, "with set: expire the key after this `duration` (whole seconds, e.g. 30s or 1h); get and del refuse the flag but ignore the variable")
	output := fs.String("o", "", "with backup: write the backup to this `file`, - for stdout (required)")
	jsonOut := fs.Bool("json", false, "with info and cluster status: print the response as JSON, every field, named as in the proto")
	nonvoter := fs.Bool("nonvoter", false, "with cluster add: add the node as a nonvoter, a read replica that does not vote")
	fs.VisitAll(func(f *flag.Flag) {
		if !noEnv[f.Name] {
			f.Usage += " (env " + envName(f.Name) + ")"
		}
	})

	// Flags may come before or after the subcommand and its arguments, so
	// the command line is parsed here, a piece at a time.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				// set --help is help on set.
				topic := ""
				if len(pos) > 0 {
					topic = pos[0]
				}
				return help(stdout, stderr, fs, topic)
			}
			return fail(stderr, usageError{err})
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(pos) > 0 && pos[0] == "help" {
		if len(pos) > 2 {
			return fail(stderr, usageError{errors.New("help takes at most one command")})
		}
		return help(stdout, stderr, fs, strings.Join(pos[1:], ""))
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	// The flags without a variable are marked set (to their defaults), so
	// that ff leaves them alone: a KVSTORE_JSON=maybe is no error either.
	for name := range noEnv {
		if !onCommandLine[name] {
			fs.Set(name, fs.Lookup(name).DefValue)
		}
	}
	// Then the environment, for the flags the command line left unset: ff
	// reads no variable for a flag already set, and no arguments are left.
	if err := ff.Parse(fs, nil, ff.WithEnvVarPrefix(envPrefix)); err != nil {
		return fail(stderr, usageError{errors.Unwrap(err)})
	}
	ttlFrom := "--ttl"
	if !onCommandLine["ttl"] {
		ttlFrom = envName("ttl")
	}
	if ttl < 0 || ttl%time.Second != 0 {
		return fail(stderr, usageError{fmt.Errorf("%s must be a non-negative whole number of seconds, got %v", ttlFrom, ttl)})
	}

	dial, err := rpc.DialOptions(co)
	if err != nil {
		return fail(stderr, usageError{err})
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return fail(stderr, err)
	}
	defer conn.Close()
	c := &client{kv: kvstorepb.NewKVStoreClient(conn), admin: kvstorepb.NewAdminClient(conn),
		timeout: timeout, out: stdout, addr: addr, tls: co.TLS != (rpc.ClientTLSOptions{})}

	if len(pos) == 0 {
		return c.demo(stderr)
	}
	cmd, rest := pos[0], pos[1:]
	// cluster checks its own arguments, which depend on its subcommand.
	want := map[string]int{"set": 2, "get": 1, "del": 1, "backup": 0, "info": 0, "cluster": -1}
	n, ok := want[cmd]
	if !ok {
		return fail(stderr, usageError{fmt.Errorf("unknown command %q (want %s)", cmd, commandList)})
	}
	if cmd == "set" && *file != "" {
		n = 1 // the value is the file's
	}
	if n >= 0 && len(rest) != n {
		return fail(stderr, usageError{fmt.Errorf("%s takes %d argument(s), got %d", cmd, n, len(rest))})
	}
	if *file != "" && cmd != "set" {
		return fail(stderr, usageError{errors.New("--file applies to set only")})
	}
	// KVSTORE_TTL is a default for the sets of a session; a get or del
	// there has no TTL to take, so only the flag is a mistake.
	if ttl != 0 && cmd != "set" && onCommandLine["ttl"] {
		return fail(stderr, usageError{errors.New("--ttl applies to set only")})
	}
	if onCommandLine["o"] && cmd != "backup" {
		return fail(stderr, usageError{errors.New("-o applies to backup only")})
	}
	if onCommandLine["json"] && cmd != "info" && (cmd != "cluster" || len(rest) == 0 || rest[0] != "status") {
		return fail(stderr, usageError{errors.New("--json applies to info and cluster status only")})
	}
	if onCommandLine["nonvoter"] && (cmd != "cluster" || len(rest) == 0 || rest[0] != "add") {
		return fail(stderr, usageError{errors.New("--nonvoter applies to cluster add only")})
	}
	if cmd == "backup" && *output == "" {
		return fail(stderr, usageError{errors.New("backup needs -o FILE, or -o - for stdout")})
	}
	if cmd == "backup" && *output == "-" && isTerminal(stdout) {
		return fail(stderr, usageError{errors.New("backup -o - writes binary data: redirect stdout, or use -o FILE")})
	}
	// gRPC would refuse these itself, but as an Internal error from the
	// client library ("string field contains invalid UTF-8"), which says
	// nothing about what to fix.
	if len(rest) > 0 && !utf8.ValidString(rest[0]) {
		return fail(stderr, errNotUTF8("key"))
	}
	switch cmd {
	case "backup":
		err = c.backup(*output, stderr)
	case "info":
		err = c.info(*jsonOut)
	case "cluster":
		if err = c.cluster(rest, *nonvoter, *jsonOut); errors.As(err, new(usageError)) {
			return fail(stderr, err)
		}
	case "set":
		var value string
		if value, err = readValue(rest[1:], *file, stdin); err != nil {
			return fail(stderr, err)
		}
		if !utf8.ValidString(value) {
			return fail(stderr, errNotUTF8("value"))
		}
		err = c.set(rest[0], value, int64(ttl/time.Second))
	case "get":
		var found bool
		if found, err = c.get(rest[0]); err == nil && !found {
			fmt.Fprintf(stderr, "key %q not found\n", rest[0])
			return exitMissing
		}
	case "del":
		var found bool
		if found, err = c.del(rest[0]); err == nil {
			if !found {
				fmt.Fprintf(stderr, "key %q not found\n", rest[0])
				return exitMissing
			}
			fmt.Fprintf(stdout, "deleted %q\n", rest[0])
		}
	}
	if err != nil {
		return c.fail(stderr, err)
	}
	return exitOK
}

// noEnv are the flags no environment variable sets: each names what one
// command works on, and as a variable --file would turn every set of a
// session into a read of the same file, -o every backup into an
// overwrite of the same one.
var noEnv = map[string]bool{"file": true, "o": true, "json": true, "nonvoter": true}

// commandList names the commands, for the errors that list them.
const commandList = "set, get, del, backup, info or cluster"

// errNotUTF8 is the error for a key or value that a proto3 string field
// cannot carry.
func errNotUTF8(what string) error {
	return fmt.Errorf("%s is not valid UTF-8 (kvstore keys and values are UTF-8 strings)", what)
}

// readValue is the value of a set: the argument, stdin for "-", or the
// contents of file. Reading it in full is what lets a value be larger than
// the ~128 KiB the kernel allows a single argument.
func readValue(arg []string, file string, stdin io.Reader) (string, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case file != "":
		if b, err = os.ReadFile(file); err != nil {
			return "", fmt.Errorf("--file: %w", err)
		}
	case arg[0] == "-":
		if b, err = io.ReadAll(stdin); err != nil {
			return "", fmt.Errorf("read the value from stdin: %w", err)
		}
	default:
		return arg[0], nil
	}
	return string(b), nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// commandHelp is the help of each command, for help CMD and CMD --help.
var commandHelp = map[string]string{
	"set": `Usage:
  kvstore-client [flags] set KEY VALUE [--ttl 30s]
  kvstore-client [flags] set KEY - [--ttl 30s]         the value from stdin
  kvstore-client [flags] set KEY --file F [--ttl 30s]  the value from file F

Stores VALUE under KEY, replacing any value it had. --ttl expires the key
after that many whole seconds. stdin and --file send values larger than a
command-line argument can hold (~128 KiB). Key and value must be UTF-8.
`,
	"get": `Usage:
  kvstore-client [flags] get KEY

Prints the value of KEY: exactly as stored when stdout is a pipe or a file,
with a newline added on a terminal. Exit 1 if there is no such key.
`,
	"del": `Usage:
  kvstore-client [flags] del KEY

Deletes KEY and prints deleted "KEY". Exit 1 if there was no such key.
`,
	"backup": `Usage:
  kvstore-client [flags] backup -o FILE
  kvstore-client [flags] backup -o -                   to stdout

Streams a consistent point-in-time copy of the whole data set from the
server (Admin.Backup; with --auth-file a token of the admin role) while
reads and writes go on. The file is a snapshot file: kvstore-server
restores it.

The backup goes to a temporary file next to FILE (FILE.tmp-*), which is
fsynced and renamed to FILE only once the whole stream has arrived and its
size matches what the server reports, so FILE is never a partial backup;
on any failure the temporary file is removed. -o - writes the backup bytes
alone to stdout (a pipe or a file, not a terminal). Progress, on a
terminal, and a summary go to stderr.

--timeout applies to each message, not to the whole backup: the backup
fails if the server sends nothing for that long (0: wait forever).
`,
	"info": `Usage:
  kvstore-client [flags] info
  kvstore-client [flags] info --json

Prints the server's version, uptime, keys, memory, log, newest snapshot
and limits (Admin.Info; with --auth-file a token of the admin role).
--json prints every field, named as in the proto, as the HTTP front's
GET /v1/admin/info does.
`,
	"cluster": `Usage:
  kvstore-client [flags] cluster status [--json]
  kvstore-client [flags] cluster add ID RAFTADDR [--nonvoter]
  kvstore-client [flags] cluster remove ID
  kvstore-client [flags] cluster transfer-leader [ID]

A cluster node's membership (Admin service; with --auth-file a token of
the admin role). status shows the members, their roles and raft and
client addresses, the leader, the term, the commit and applied index,
and each member's lag behind the commit index and its last contact with
the leader, as the leader sees them. add makes the node with that raft
address a member (start it with --raft-listen and no --initial-cluster
first; --nonvoter for a read replica); remove takes one out;
transfer-leader hands the leadership to ID, or to the voter most up to
date. Any node takes these: it passes changes to the leader.
`,
}

// help prints the usage of topic ("" for the whole command) to stdout.
func help(stdout, stderr io.Writer, fs *flag.FlagSet, topic string) int {
	if topic == "" {
		printUsage(stdout, fs)
		return exitOK
	}
	text, ok := commandHelp[topic]
	if !ok {
		return fail(stderr, usageError{fmt.Errorf("no help for %q (want %s)", topic, commandList)})
	}
	fmt.Fprint(stdout, text, "\nFlags:\n")
	fs.SetOutput(stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	return exitOK
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage:
  kvstore-client [flags]                      run the demo
  kvstore-client [flags] set KEY VALUE [--ttl 30s]
  kvstore-client [flags] set KEY -            the value from stdin
  kvstore-client [flags] set KEY --file F     the value from file F
  kvstore-client [flags] get KEY              prints the value; exit 1 if missing
  kvstore-client [flags] del KEY              exit 1 if there was no such key
  kvstore-client [flags] backup -o FILE       stream a backup to FILE (- for stdout)
  kvstore-client [flags] info [--json]        the server's version, data and limits
  kvstore-client [flags] cluster status|add|remove|transfer-leader   membership
  kvstore-client help [set|get|del|backup|info]  this help, or a command's

get writes the value as it is, with no newline added, unless stdout is a
terminal.

Every flag but --file, -o and --json has an environment variable (--addr
is KVSTORE_ADDR); a flag on the command line wins.

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// fail prints err (with its gRPC status code when it has one) and returns
// the exit code for it.
func fail(w io.Writer, err error) int {
	if s, ok := status.FromError(err); ok && s.Code() != 0 {
		fmt.Fprintf(w, "kvstore-client: %s: %s\n", s.Code(), s.Message())
		return exitError
	}
	fmt.Fprintf(w, "kvstore-client: %v\n", err)
	if errors.As(err, new(usageError)) {
		fmt.Fprintln(w, "Run 'kvstore-client --help' for usage.")
	}
	return exitError
}

type client struct {
	kv      kvstorepb.KVStoreClient
	admin   kvstorepb.AdminClient
	timeout time.Duration
	out     io.Writer
	addr    string
	tls     bool // whether the client speaks TLS
}

// fail is fail for a request's error: a server that cannot be reached is
// probed for a TLS mismatch, which gRPC's error does not name.
func (c *client) fail(w io.Writer, err error) int {
	if status.Code(err) == codes.Unavailable {
		if m := rpc.ProbeTLSMismatch(context.Background(), c.addr, c.tls); m != nil {
			fmt.Fprintf(w, "kvstore-client: %s: %v\n", c.addr, m)
			return exitError
		}
	}
	return fail(w, err)
}

func (c *client) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

func (c *client) set(key, value string, ttlSeconds int64) error {
	ctx, cancel := c.ctx()
	defer cancel()
	_, err := c.kv.Set(ctx, &kvstorepb.SetRequest{Key: key, Value: value, TtlSeconds: ttlSeconds})
	return err
}

func (c *client) get(key string) (bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.kv.Get(ctx, &kvstorepb.GetRequest{Key: key})
	if err != nil || !resp.GetFound() {
		return false, err
	}
	// Raw, so that get > file gives back exactly what set --file sent; a
	// newline only for a person at a terminal.
	if isTerminal(c.out) {
		fmt.Fprintln(c.out, resp.GetValue())
	} else {
		io.WriteString(c.out, resp.GetValue())
	}
	return true, nil
}

// del deletes key and reports whether it existed.
func (c *client) del(key string) (bool, error) {
	ctx, cancel := c.ctx()
	defer cancel()
	resp, err := c.kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: key})
	return resp.GetDeleted(), err
}

// demo runs the original client's walk through the API and prints its
// lines exactly.
func (c *client) demo(stderr io.Writer) int {
	ctx, cancel := c.ctx()
	defer cancel()
	p := func(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

	p("Testing Set operation...\n")
	set, err := c.kv.Set(ctx, &kvstorepb.SetRequest{Key: "test_key", Value: "test_value"})
	if err != nil {
		return c.fail(stderr, err)
	}
	p("Set response: Success=%v, Error=%s\n\n", set.GetSuccess(), set.GetError())

	p("Testing Get operation...\n")
	get, err := c.kv.Get(ctx, &kvstorepb.GetRequest{Key: "test_key"})
	if err != nil {
		return c.fail(stderr, err)
	}
	p("Get response: Found=%v, Value=%s, Error=%s\n\n", get.GetFound(), get.GetValue(), get.GetError())

	p("Testing Get for non-existent key...\n")
	get, err = c.kv.Get(ctx, &kvstorepb.GetRequest{Key: "non_existent_key"})
	if err != nil {
		return c.fail(stderr, err)
	}
	p("Get response: Found=%v, Value=%s, Error=%s\n\n", get.GetFound(), get.GetValue(), get.GetError())

	p("Testing Delete operation...\n")
	del, err := c.kv.Delete(ctx, &kvstorepb.DeleteRequest{Key: "test_key"})
	if err != nil {
		return c.fail(stderr, err)
	}
	p("Delete response: Success=%v, Error=%s\n\n", del.GetSuccess(), del.GetError())

	p("Verifying deletion...\n")
	get, err = c.kv.Get(ctx, &kvstorepb.GetRequest{Key: "test_key"})
	if err != nil {
		return c.fail(stderr, err)
	}
	p("Get after delete: Found=%v, Value=%s, Error=%s\n\n", get.GetFound(), get.GetValue(), get.GetError())

	p("All tests completed successfully!\n")
	return exitOK
}

// errStalled cancels a backup whose server sent nothing for --timeout.
var errStalled = errors.New("stalled")

// backup streams a backup to path, or to stdout for "-", and prints its
// summary to stderr. A file is written under a temporary name and renamed
// into place only once the stream is complete and its size checks out.
func (c *client) backup(path string, stderr io.Writer) error {
	// --timeout is a stall timeout here: a backup of a large data set
	// rightly takes longer than any one request, a server that stops
	// sending does not.
	base, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stall := time.AfterFunc(time.Hour, func() { cancel(errStalled) })
	stall.Stop()
	defer stall.Stop()
	arm := func() {
		if c.timeout > 0 {
			stall.Reset(c.timeout)
		}
	}
	// Ctrl-C ends the stream, so that the temporary file is removed.
	ctx, stopSignals := signal.NotifyContext(base, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	var (
		sink *backupFile
		w    = c.out
		dest = "stdout"
	)
	if path != "-" {
		var err error
		if sink, err = createBackupFile(path); err != nil {
			return err
		}
		defer sink.abort()
		w, dest = sink.f, path
	}

	start := time.Now()
	progress := newBackupProgress(stderr, start)
	defer progress.clear()
	var (
		first, last *kvstorepb.BackupChunk
		written     uint64
	)
	arm()
	stream, err := c.admin.Backup(ctx, &kvstorepb.BackupRequest{})
	for err == nil {
		var m *kvstorepb.BackupChunk
		m, err = stream.Recv()
		stall.Stop()
		if err != nil {
			break
		}
		if last != nil {
			return fmt.Errorf("backup stream sent a message after its last one, after %d bytes", written)
		}
		if first == nil {
			first = m
		}
		if len(m.GetData()) > 0 {
			if _, werr := w.Write(m.GetData()); werr != nil {
				return fmt.Errorf("write the backup to %s: %w", dest, werr)
			}
			written += uint64(len(m.GetData()))
		}
		if m.GetLast() {
			last = m
		}
		progress.update(written, first.GetKeys())
		arm()
	}
	progress.clear()
	switch {
	case context.Cause(base) == errStalled:
		return fmt.Errorf("backup failed: the server stopped sending (nothing for %v, the --timeout) after %d bytes", c.timeout, written)
	case ctx.Err() != nil && base.Err() == nil:
		return fmt.Errorf("backup interrupted after %d bytes", written)
	case err != io.EOF && first == nil:
		return err // nothing arrived: the call's own error, for c.fail
	case err != io.EOF:
		s := status.Convert(err)
		return fmt.Errorf("backup stream ended early after %d bytes: %s: %s", written, s.Code(), s.Message())
	case last == nil || written < last.GetSize():
		return fmt.Errorf("backup stream ended early after %d bytes", written)
	case written > last.GetSize():
		return fmt.Errorf("backup stream sent %d bytes, more than the %d it reported", written, last.GetSize())
	}
	if sink != nil {
		if err := sink.commit(); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stderr, "backup: %d bytes, %d keys, seq %d, checksum %08x, %v (%s) -> %s\n",
		written, first.GetKeys(), first.GetSeq(), last.GetChecksum(), roundElapsed(elapsed), rate(written, elapsed), dest)
	return nil
}

// backupFile is a backup on its way to path, under a temporary name in the
// same directory, so that the rename is atomic and path is either absent,
// as it was, or a complete backup.
type backupFile struct {
	f    *os.File
	path string
	done bool
}

func createBackupFile(path string) (*backupFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("-o: %w", err)
	}
	return &backupFile{f: f, path: path}, nil
}

// commit makes the backup durable under its name: fsync, rename, and an
// fsync of the directory for the rename.
func (b *backupFile) commit() error {
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", b.f.Name(), err)
	}
	if err := b.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", b.f.Name(), err)
	}
	if err := os.Rename(b.f.Name(), b.path); err != nil {
		return err
	}
	b.done = true
	dir, err := os.Open(filepath.Dir(b.path))
	if err != nil {
		return fmt.Errorf("fsync the directory of %s: %w", b.path, err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("fsync the directory of %s: %w", b.path, err)
	}
	return nil
}

// abort removes the temporary file unless commit renamed it.
func (b *backupFile) abort() {
	if b.done {
		return
	}
	b.f.Close()
	os.Remove(b.f.Name())
}

// backupProgress is the line a backup refreshes on a terminal's stderr.
type backupProgress struct {
	w          io.Writer
	start      time.Time
	lastPrint  time.Time
	lastLength int
	on         bool
}

// progressInterval is how often the progress line is refreshed at most
// (a variable for the tests).
var progressInterval = 500 * time.Millisecond

func newBackupProgress(w io.Writer, start time.Time) *backupProgress {
	return &backupProgress{w: w, start: start, lastPrint: start, on: isTerminal(w)}
}

func (p *backupProgress) update(written, keys uint64) {
	if !p.on {
		return
	}
	now := time.Now()
	if now.Sub(p.lastPrint) < progressInterval {
		return
	}
	p.lastPrint = now
	line := fmt.Sprintf("backup: %s, %d keys, %s", units.Bytes(written), keys, rate(written, now.Sub(p.start)))
	// Spaces over what is left of a longer line before.
	fmt.Fprintf(p.w, "\r%-*s", p.lastLength, line)
	p.lastLength = len(line)
}

// clear blanks the progress line, for the summary or an error.
func (p *backupProgress) clear() {
	if p.lastLength > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.lastLength, "")
		p.lastLength = 0
	}
}

// roundElapsed is d as the summary shows it: 12ms, 1.2s, 2m3.4s.
func roundElapsed(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}

// rate is n bytes over d in MiB/s.
func rate(n uint64, d time.Duration) string {
	if d <= 0 {
		return "- MiB/s"
	}
	return fmt.Sprintf("%.1f MiB/s", float64(n)/(1<<20)/d.Seconds())
}

// bytesField is a size for the info table: in units, with the exact
// count when the unit rounds it.
func bytesField(n uint64) string {
	if n < 1<<10 {
		return units.Bytes(n)
	}
	return fmt.Sprintf("%s (%d bytes)", units.Bytes(n), n)
}

// limitField is a limit for the info table, where 0 is none.
func limitField(n uint64, format func(uint64) string) string {
	if n == 0 {
		return "none"
	}
	return format(n)
}

// seconds is a duration in seconds, rounded for a person to read.
func seconds(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	if d >= time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// infoJSON is what the HTTP front's /v1/admin/info answers: every field,
// zeros included, under its proto name.
var infoJSON = protojson.MarshalOptions{EmitUnpopulated: true, UseProtoNames: true}

// info prints the server's Info as a table, or as JSON.
func (c *client) info(asJSON bool) error {
	ctx, cancel := c.ctx()
	defer cancel()
	r, err := c.admin.Info(ctx, &kvstorepb.InfoRequest{})
	if err != nil {
		return err
	}
	if asJSON {
		return c.writeJSON(r)
	}
	snapshotAge, snapshotSize := "-", "-"
	snapshotSeq := "none"
	if r.GetSnapshotSeq() != 0 {
		snapshotSeq = strconv.FormatUint(r.GetSnapshotSeq(), 10)
		snapshotAge = seconds(r.GetSnapshotAgeSeconds()).String()
		snapshotSize = bytesField(r.GetSnapshotBytes())
	}
	writes := "accepted"
	if r.GetWritesRefused() {
		writes = "REFUSED (storage fault)"
	}
	count := func(n uint64) string { return strconv.FormatUint(n, 10) }
	rows := [][2]string{
		{"version", r.GetVersion()},
		{"go version", r.GetGoVersion()},
		{"uptime", seconds(r.GetUptimeSeconds()).String()},
		{"keys", count(r.GetKeys())},
		{"keys with ttl", count(r.GetKeysWithTtl())},
		{"seq", count(r.GetSeq())},
		{"memory", bytesField(r.GetMemoryBytes())},
		{"max memory", limitField(r.GetMaxMemoryBytes(), bytesField)},
		{"heap", bytesField(r.GetHeapBytes())},
		{"log size", bytesField(r.GetLogBytes())},
		{"log segments", strconv.FormatUint(uint64(r.GetLogSegments()), 10)},
		{"fsync", r.GetFsync()},
		{"snapshot seq", snapshotSeq},
		{"snapshot age", snapshotAge},
		{"snapshot size", snapshotSize},
		{"data dir", r.GetDataDir()},
		{"max key size", limitField(r.GetMaxKeyBytes(), bytesField)},
		{"max value size", limitField(r.GetMaxValueBytes(), bytesField)},
		{"max connections", limitField(r.GetMaxConnections(), count)},
		{"writes", writes},
	}
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

// cluster runs `cluster status|add|remove|transfer-leader`.
func (c *client) cluster(args []string, nonvoter, asJSON bool) error {
	usage := func(format string, a ...any) error {
		return usageError{fmt.Errorf("cluster: "+format, a...)}
	}
	if len(args) == 0 {
		return usage("missing subcommand (want status, add, remove or transfer-leader)")
	}
	sub, args := args[0], args[1:]
	want := map[string][2]int{"status": {0, 0}, "add": {2, 2}, "remove": {1, 1}, "transfer-leader": {0, 1}}
	n, ok := want[sub]
	if !ok {
		return usage("unknown subcommand %q (want status, add, remove or transfer-leader)", sub)
	}
	if len(args) < n[0] || len(args) > n[1] {
		return usage("%s takes %d to %d argument(s), got %d", sub, n[0], n[1], len(args))
	}
	ctx, cancel := c.ctx()
	defer cancel()
	var (
		resp *kvstorepb.MembershipResponse
		err  error
	)
	switch sub {
	case "status":
		return c.clusterStatus(ctx, asJSON)
	case "add":
		resp, err = c.admin.AddMember(ctx, &kvstorepb.AddMemberRequest{Id: args[0], RaftAddress: args[1], Nonvoter: nonvoter})
	case "remove":
		resp, err = c.admin.RemoveMember(ctx, &kvstorepb.RemoveMemberRequest{Id: args[0]})
	case "transfer-leader":
		req := &kvstorepb.TransferLeaderRequest{}
		if len(args) == 1 {
			req.Id = args[0]
		}
		resp, err = c.admin.TransferLeader(ctx, req)
	}
	if err != nil {
		return err
	}
	switch sub {
	case "transfer-leader":
		fmt.Fprintf(c.out, "leader is now %s\n", resp.GetLeaderId())
	default:
		fmt.Fprintf(c.out, "%s done by leader %s at index %d\n", sub, resp.GetLeaderId(), resp.GetIndex())
	}
	return nil
}

// writeJSON prints m as the HTTP routes' JSON: every field, named as in
// the proto, then a newline.
func (c *client) writeJSON(m proto.Message) error {
	b, err := infoJSON.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode the response: %w", err)
	}
	_, err = c.out.Write(append(b, '\n'))
	return err
}

// clusterStatus prints the cluster as the leader sees it.
func (c *client) clusterStatus(ctx context.Context, asJSON bool) error {
	r, err := c.admin.ClusterStatus(ctx, &kvstorepb.ClusterStatusRequest{})
	if err != nil {
		return err
	}
	if asJSON {
		return c.writeJSON(r)
	}
	leader := r.GetLeaderId()
	if leader == "" {
		leader = "none known"
	}
	fmt.Fprintf(c.out, "answered by %s (%s); leader %s; term %d; commit index %d, applied %d\n\n",
		r.GetNodeId(), r.GetState(), leader, r.GetTerm(), r.GetCommitIndex(), r.GetAppliedIndex())
	tw := tabwriter.NewWriter(c.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tROLE\tSUFFRAGE\tRAFT ADDRESS\tCLIENT ADDRESS\tAPPLIED\tLAG\tLAST CONTACT")
	members := slices.SortedFunc(slices.Values(r.GetMembers()), func(a, b *kvstorepb.ClusterMember) int {
		return cmp.Compare(a.GetId(), b.GetId())
	})
	for _, m := range members {
		role := "follower"
		if m.GetLeader() {
			role = "leader"
		}
		applied, lag, contact := "?", "?", "?"
		if m.GetLastContactSeconds() >= 0 {
			applied = strconv.FormatUint(m.GetAppliedIndex(), 10)
			lag = strconv.FormatUint(r.GetCommitIndex()-min(m.GetAppliedIndex(), r.GetCommitIndex()), 10)
			contact = "-"
			if !m.GetLeader() {
				contact = seconds(m.GetLastContactSeconds()).String() + " ago"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetId(), role, m.GetSuffrage(), m.GetRaftAddress(),
			cmp.Or(m.GetClientAddress(), "-"), applied, lag, contact)
	}
	return tw.Flush()
}
