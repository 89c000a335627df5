// Command kvstore-client talks to a kvstore server.
//
//	kvstore-client                       run the demo (set, get, delete)
//	kvstore-client set KEY VALUE [--ttl 30s]
//	kvstore-client set KEY -             the value from stdin
//	kvstore-client set KEY --file F      the value from file F
//	kvstore-client get KEY               print the value; exit 1 if missing
//	kvstore-client del KEY               exit 1 if there was no such key
//
// Every flag can also be set by a KVSTORE_* environment variable, the flag
// name in upper snake case (--addr is KVSTORE_ADDR); a flag on the command
// line wins. Errors print the gRPC status code and message and exit 2;
// bad usage prints the error and a pointer to --help, exit 2. help, help
// CMD, --help and CMD --help print help to stdout, exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kvstore/internal/cliflag"
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
	cliflag.DurationVar(fs, &timeout, "timeout", 5*time.Second, "deadline for each request, a `duration` such as 5s or 500ms")
	file := fs.String("file", "", "with set: read the value from this `file` (set KEY --file F); set KEY - reads it from stdin")
	var ttl time.Duration
	cliflag.DurationVar(fs, &ttl, "ttl", 0, "with set: expire the key after this `duration` (whole seconds, e.g. 30s or 1h); get and del refuse the flag but ignore the variable")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name != "file" {
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
	// Then the environment, for the flags the command line left unset: ff
	// reads no variable for a flag already set, and no arguments are left.
	if err := ff.Parse(fs, nil, ff.WithEnvVarPrefix(envPrefix)); err != nil {
		return fail(stderr, usageError{errors.Unwrap(err)})
	}
	// --file names the value of one set: as a variable it would turn
	// every set of a session into a read of the same file.
	if !onCommandLine["file"] {
		*file = ""
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
	c := &client{kv: kvstorepb.NewKVStoreClient(conn), timeout: timeout, out: stdout,
		addr: addr, tls: co.TLS != (rpc.ClientTLSOptions{})}

	if len(pos) == 0 {
		return c.demo(stderr)
	}
	cmd, rest := pos[0], pos[1:]
	want := map[string]int{"set": 2, "get": 1, "del": 1}
	n, ok := want[cmd]
	if !ok {
		return fail(stderr, usageError{fmt.Errorf("unknown command %q (want set, get or del)", cmd)})
	}
	if cmd == "set" && *file != "" {
		n = 1 // the value is the file's
	}
	if len(rest) != n {
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
	// gRPC would refuse these itself, but as an Internal error from the
	// client library ("string field contains invalid UTF-8"), which says
	// nothing about what to fix.
	if !utf8.ValidString(rest[0]) {
		return fail(stderr, errNotUTF8("key"))
	}
	switch cmd {
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
}

// help prints the usage of topic ("" for the whole command) to stdout.
func help(stdout, stderr io.Writer, fs *flag.FlagSet, topic string) int {
	if topic == "" {
		printUsage(stdout, fs)
		return exitOK
	}
	text, ok := commandHelp[topic]
	if !ok {
		return fail(stderr, usageError{fmt.Errorf("no help for %q (want set, get or del)", topic)})
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
  kvstore-client help [set|get|del]           this help, or a command's

get writes the value as it is, with no newline added, unless stdout is a
terminal.

Every flag has an environment variable (--addr is KVSTORE_ADDR); a flag on
the command line wins.

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
