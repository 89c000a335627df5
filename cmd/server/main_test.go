package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kvstorepb "kvstore/proto"
	"kvstore/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
	}))
}

// newTestServer parses args after a loopback listener and a fresh data dir
// (args may override them), as kvstore-server would, and builds the
// server with a discarding logger, stdout captured and clk (nil: real).
func newTestServer(tb testing.TB, clk clock.Clock, args ...string) (*server.Server, *bytes.Buffer) {
	tb.Helper()
	m := NewMain()
	args = append([]string{"--listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0", "--data-dir", tb.TempDir()}, args...)
	if err := m.ParseFlags(args); err != nil {
		tb.Fatal(err)
	}
	var stdout bytes.Buffer
	m.Config.Stdout = &stdout
	m.Config.Logger = slog.New(slog.DiscardHandler)
	m.Config.Clock = clk
	s, err := server.New(m.Config)
	if err != nil {
		tb.Fatal(err)
	}
	return s, &stdout
}

// startTestServer runs s until it is ready and returns the stop function
// that closes it and checks that Run returned nil.
func startTestServer(tb testing.TB, s *server.Server) (stop func()) {
	tb.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Run(context.Background()) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		tb.Fatalf("Run: %v", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			tb.Helper()
			s.Close()
			if err := <-errc; err != nil {
				tb.Errorf("Run: %v", err)
			}
		})
	}
}

// MustRunMain starts an in-process server on a loopback port and closes
// it at cleanup, checking that Run returned nil.
func MustRunMain(tb testing.TB, args ...string) (*server.Server, *bytes.Buffer) {
	tb.Helper()
	s, stdout := newTestServer(tb, nil, args...)
	tb.Cleanup(startTestServer(tb, s))
	return s, stdout
}

func dial(tb testing.TB, addr string) kvstorepb.KVStoreClient {
	tb.Helper()
	return kvstorepb.NewKVStoreClient(dialConn(tb, addr))
}

// dialConn is a plaintext connection to addr, closed at cleanup.
func dialConn(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func TestMainServesAndShutsDown(t *testing.T) {
	m, stdout := MustRunMain(t)
	c := dial(t, m.Addr().String())
	ctx := context.Background()
	if _, err := c.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if get, err := c.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || get.GetValue() != "v" {
		t.Fatalf("Get = %v, %v", get, err)
	}
	_, port, _ := strings.Cut(m.Addr().String(), ":")
	want := "gRPC server starting on port 0...\n" +
		"Key-Value Store gRPC server is running on port " + port + "\n" +
		"Press Ctrl+C to stop the server\n"
	if stdout.String() != want {
		t.Fatalf("banner:\n%s\nwant:\n%s", stdout, want)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(server.Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c server.Config) bool {
			return c.Listen == "localhost:50051" && c.DataDir == "./data" && c.ExpireInterval == time.Second &&
				c.MaxKeyBytes == 1024 && c.MaxValueBytes == 1<<20 && c.ShutdownGrace == 10*time.Second
		}},
		{name: "env", env: map[string]string{"KVSTORE_LISTEN": "127.0.0.1:1234", "KVSTORE_SHUTDOWN_GRACE": "3s"},
			check: func(c server.Config) bool { return c.Listen == "127.0.0.1:1234" && c.ShutdownGrace == 3*time.Second }},
		{name: "flag beats env", args: []string{"--listen", "127.0.0.1:9"}, env: map[string]string{"KVSTORE_LISTEN": "127.0.0.1:1234"},
			check: func(c server.Config) bool { return c.Listen == "127.0.0.1:9" }},
		{name: "bad env", env: map[string]string{"KVSTORE_MAX_KEY_BYTES": "lots"}, wantErr: "KVSTORE_MAX_KEY_BYTES"},
		{name: "bad duration", args: []string{"--expire-interval", "0s"}, wantErr: "--expire-interval 0s is out of range: want 10ms to 1h"},
		{name: "negative key limit", args: []string{"--max-key-bytes", "-1"}, wantErr: `--max-key-bytes: want a size like`},
		{name: "huge value limit", args: []string{"--max-value-bytes", "1000000000"}, wantErr: "--max-value-bytes 1000000000 is out of range: want 1 to 67108841"},
		// Issue 11 bug 2: 65 MiB was accepted, and one such Set failed the
		// log for good.
		{name: "value limit past a log record", args: []string{"--max-value-bytes", "68157440"}, wantErr: "--max-value-bytes 65MiB is out of range"},
		{name: "value limit past a log record with the key", args: []string{"--max-value-bytes", "67108841"}, wantErr: "the largest value that fits is"},
		{name: "sizes take units", args: []string{"--max-value-bytes", "2MiB", "--max-key-bytes", "2KiB", "--wal-segment-bytes", "8MiB",
			"--wal-prealloc-bytes", "8KiB", "--max-memory", "1GB", "--gc-heap-floor", "16MiB"},
			check: func(c server.Config) bool {
				return c.MaxValueBytes == 2<<20 && c.MaxKeyBytes == 2<<10 && c.WALSegmentBytes == 8<<20 &&
					c.WALPreallocBytes == 8<<10 && c.MaxMemory == 1e9 && c.GCHeapFloor == 16<<20
			}},
		// Issue 13: a duration without a unit was "parse error".
		{name: "duration without a unit", args: []string{"--snapshot-interval", "30"},
			wantErr: `--snapshot-interval: "30" is not a duration; want a duration like 30s`},
		{name: "duration without a unit in env", env: map[string]string{"KVSTORE_REQUEST_TIMEOUT": "5"},
			wantErr: `KVSTORE_REQUEST_TIMEOUT: "5" is not a duration; want a duration like 5s`},
		{name: "not a duration", args: []string{"--shutdown-grace", "soon"},
			wantErr: `--shutdown-grace: "soon" is not a duration; want a duration like 30s, 500ms or 1h`},
		{name: "zero needs no unit", args: []string{"--snapshot-interval", "0", "--request-timeout", "0"},
			check: func(c server.Config) bool { return c.SnapshotInterval == 0 && c.RequestTimeout == 0 }},
		{name: "durations", args: []string{"--snapshot-interval", "1m30s", "--expire-interval", "250ms"},
			check: func(c server.Config) bool {
				return c.SnapshotInterval == 90*time.Second && c.ExpireInterval == 250*time.Millisecond
			}},
		{name: "negative grace", args: []string{"--shutdown-grace", "-1s"}, wantErr: "--shutdown-grace -1s is out of range: want 0s to 1h"},
		// Issue 12 item 8: each of these was accepted, and the server then
		// failed every RPC, filled the disk, spun a core or failed every
		// request.
		{name: "key limit past int32", args: []string{"--max-key-bytes", "9223372036854775807"},
			wantErr: "--max-key-bytes 9223372036854775807 is out of range: want 1 to 67108841"},
		{name: "prealloc filling the disk", args: []string{"--wal-prealloc-bytes", "1TiB"},
			wantErr: "--wal-prealloc-bytes 1TiB is out of range: want 0 (off) or 4KiB to 64MiB"},
		{name: "expiry spinning", args: []string{"--expire-interval", "1ns"}, wantErr: "--expire-interval 1ns is out of range: want 10ms to 1h"},
		{name: "timeout failing every request", env: map[string]string{"KVSTORE_REQUEST_TIMEOUT": "1ns"},
			wantErr: "--request-timeout 1ns is out of range: want 0 (none) or 10ms to 1h"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "unknown flag --nope"},
		{name: "stray argument", args: []string{"serve"}, wantErr: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			m := NewMain()
			err := m.ParseFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v; want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(m.Config) {
				t.Fatalf("err = %v, config = %+v", err, m.Config)
			}
		})
	}
}

func TestHelpListsEveryFlagWithItsEnv(t *testing.T) {
	m := NewMain()
	var out bytes.Buffer
	m.Stdout = &out
	if err := m.ParseFlags([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v; want flag.ErrHelp", err)
	}
	for _, f := range []string{"listen", "data-dir", "expire-interval", "max-key-bytes", "max-value-bytes", "shutdown-grace"} {
		if !strings.Contains(out.String(), "-"+f) || !strings.Contains(out.String(), envName(f)) {
			t.Errorf("help lacks --%s or %s:\n%s", f, envName(f), out.String())
		}
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// serverBinary builds kvstore-server once per test run.
func serverBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kvstore-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "kvstore-server")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		tb.Fatalf("build: %v", buildErr)
	}
	return binPath
}

// serverProcess is the real binary, started on a loopback port.
type serverProcess struct {
	cmd    *exec.Cmd
	addr   string
	stderr *logBuffer
	// copied is closed once all of stderr is in the buffer.
	copied chan struct{}
}

// wait waits for the process to exit and for its stderr to be read to
// the end: Wait alone returns while the last lines may still be in the
// pipe.
func (p *serverProcess) wait() error {
	err := p.cmd.Wait()
	<-p.copied
	return err
}

// logBuffer collects the server's stderr and hands each line to waitLog.
// exec writes to it from its own goroutine.
type logBuffer struct {
	mu      sync.Mutex
	text    bytes.Buffer
	partial string
	lines   chan string
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.text.Write(p)
	rest := b.partial + string(p)
	for {
		line, after, ok := strings.Cut(rest, "\n")
		if !ok {
			break
		}
		select {
		case b.lines <- line:
		default: // nobody is waiting for that many lines
		}
		rest = after
	}
	b.partial = rest
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.text.String()
}

// waitLog returns the first log line from now on that contains want, and
// fails the test on one that contains bad (if not empty).
func (p *serverProcess) waitLog(tb testing.TB, want, bad string) string {
	tb.Helper()
	for line := range p.stderr.lines {
		if bad != "" && strings.Contains(line, bad) {
			tb.Fatalf("log: %s", line)
		}
		if strings.Contains(line, want) {
			return line
		}
	}
	tb.Fatalf("server closed its stderr (exited?) before logging %q; stderr:\n%s", want, p.stderr)
	return ""
}

var portLine = regexp.MustCompile(`running on port (\d+)`)

func startBinary(tb testing.TB, args ...string) *serverProcess {
	tb.Helper()
	cmd := exec.Command(serverBinary(tb), append([]string{"--listen", "127.0.0.1:0", "--resp-listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, stderr: &logBuffer{lines: make(chan string, 1024)}, copied: make(chan struct{})}
	// A pipe of our own rather than StderrPipe, whose reads must end
	// before Wait: the copy below ends when the process has exited.
	pr, pw, err := os.Pipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	pw.Close()
	go func() {
		io.Copy(p.stderr, pr)
		pr.Close()
		close(p.stderr.lines)
		close(p.copied)
	}()
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := portLine.FindStringSubmatch(sc.Text()); m != nil {
			p.addr = "127.0.0.1:" + m[1]
			break
		}
	}
	if p.addr == "" {
		cmd.Wait()
		tb.Fatalf("server did not report its port; stderr:\n%s", p.stderr)
	}
	go io.Copy(io.Discard, stdout)
	return p
}

// TestBinarySIGHUPWithNothingToReload: issue 11 bug 4. SIGHUP used to be
// caught only with TLS or tokens configured, so on a plain server its
// default action killed the process.
func TestBinarySIGHUPWithNothingToReload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	p := startBinary(t, "--data-dir", t.TempDir())
	c := dial(t, p.addr)
	ctx := context.Background()
	if _, err := c.Set(ctx, &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "nothing to reload", "")
	if get, err := c.Get(ctx, &kvstorepb.GetRequest{Key: "k"}); err != nil || get.GetValue() != "v" {
		t.Fatalf("after SIGHUP: Get = %v, %v", get, err)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit after SIGHUP then SIGTERM: %v; stderr:\n%s", err, p.stderr)
	}
}

func TestBinaryExitsZeroOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			p := startBinary(t, "--data-dir", t.TempDir())
			c := dial(t, p.addr)
			if _, err := c.Set(context.Background(), &kvstorepb.SetRequest{Key: "k", Value: "v"}); err != nil {
				t.Fatal(err)
			}
			p.cmd.Process.Signal(sig)
			if err := p.wait(); err != nil {
				t.Fatalf("exit after %v: %v; stderr:\n%s", sig, err, p.stderr)
			}
			if !strings.Contains(p.stderr.String(), "shutdown complete") {
				t.Fatalf("no shutdown log; stderr:\n%s", p.stderr)
			}
		})
	}
}

func TestBinaryBadFlagExitsTwo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, tt := range []struct{ args []string }{
		{[]string{"--max-key-bytes", "0"}},
		{[]string{"--max-key-bytes", "9223372036854775807"}},
		{[]string{"--wal-prealloc-bytes", "1TiB"}},
		{[]string{"--expire-interval", "1ns"}},
		{[]string{"--request-timeout", "1ns"}},
	} {
		// Each names itself: "--flag VALUE is out of range: ...".
		want := tt.args[0] + " " + tt.args[1] + " is out of range"
		out, err := exec.Command(serverBinary(t), append(tt.args, "--data-dir", t.TempDir())...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("%v: err = %v; want exit status 2; output:\n%s", tt.args, err, out)
		}
		if !strings.Contains(string(out), want) {
			t.Fatalf("%v: output lacks %q:\n%s", tt.args, want, out)
		}
	}
}

// TestBinaryBadFlagSaysWhatThenWhere: issue 13. A bad flag used to get
// the whole usage before its error; now the error comes first, naming the
// setting as the user typed it, then one line pointing at --help.
func TestBinaryBadFlagSaysWhatThenWhere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const hint = "\nRun 'kvstore-server --help' for usage.\n"
	for _, tt := range []struct {
		args []string
		env  string
		want string
	}{
		{args: []string{"--bogus"}, want: "unknown flag --bogus"},
		{args: []string{"-bogus"}, want: "unknown flag --bogus"},
		{args: []string{"--listen"}, want: "--listen needs a value"},
		{args: []string{"--max-key-bytes", "lots"}, want: `--max-key-bytes: want a size like 512MiB, 2GB or 1048576, got "lots"`},
		{args: []string{"--no-final-snapshot=maybe"}, want: `--no-final-snapshot: parse error`},
		{env: "KVSTORE_MAX_KEY_BYTES=lots", want: `KVSTORE_MAX_KEY_BYTES: want a size like 512MiB, 2GB or 1048576, got "lots"`},
		{args: []string{"--max-key-bytes", "0"}, want: "--max-key-bytes 0 is out of range: want 1 to 67108841"},
		{args: []string{"--snapshot-interval", "30"}, want: `--snapshot-interval: "30" is not a duration; want a duration like 30s`},
		{args: []string{"serve"}, want: `unexpected argument "serve"`},
	} {
		cmd := exec.Command(serverBinary(t), append([]string{"--data-dir", t.TempDir()}, tt.args...)...)
		if tt.env != "" {
			cmd.Env = append(os.Environ(), tt.env)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v %s: err = %v; want exit status 2", tt.args, tt.env, err)
		}
		if want := "kvstore-server: " + tt.want + hint; stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("%v %s: stderr\n%s\nstdout\n%s\nwant stderr\n%s", tt.args, tt.env, &stderr, &stdout, want)
		}
	}
}

// TestEveryCommandHasHelp: issue 13. `kvstore-server --help` did not list
// aof and token, `aof --help` was an unknown command (exit 2) and `help`
// a stray argument. Every command and subcommand answers --help and help
// on stdout with exit 0, listing its flags.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string // each in stdout
	}{
		{[]string{"--help"}, []string{"kvstore-server aof check", "kvstore-server aof dump", "kvstore-server token new", "-listen"}},
		{[]string{"-h"}, []string{"kvstore-server aof dump", "-listen"}},
		{[]string{"help"}, []string{"kvstore-server aof check", "kvstore-server token new", "-listen"}},
		{[]string{"aof", "--help"}, []string{"kvstore-server aof check", "kvstore-server aof dump"}},
		{[]string{"aof", "help"}, []string{"kvstore-server aof check", "kvstore-server aof dump"}},
		{[]string{"help", "aof"}, []string{"kvstore-server aof check", "kvstore-server aof dump"}},
		{[]string{"aof", "check", "--help"}, []string{"Usage: kvstore-server aof check", "-data-dir", "-fix", "-force"}},
		{[]string{"aof", "check", "help"}, []string{"Usage: kvstore-server aof check", "-fix"}},
		{[]string{"aof", "help", "check"}, []string{"Usage: kvstore-server aof check", "-fix"}},
		{[]string{"aof", "dump", "--help"}, []string{"Usage: kvstore-server aof dump", "-data-dir"}},
		{[]string{"help", "aof", "dump"}, []string{"Usage: kvstore-server aof dump", "-data-dir"}},
		{[]string{"token", "--help"}, []string{"kvstore-server token new"}},
		{[]string{"token", "help"}, []string{"kvstore-server token new"}},
		{[]string{"token", "new", "--help"}, []string{"Usage: kvstore-server token new", "-role", "-name"}},
		{[]string{"help", "token", "new"}, []string{"Usage: kvstore-server token new", "-role"}},
		{[]string{"--help"}, []string{"kvstore-server backup check", "kvstore-server restore"}},
		{[]string{"backup", "--help"}, []string{"kvstore-server backup check"}},
		{[]string{"backup", "check", "--help"}, []string{"Usage: kvstore-server backup check FILE [--json]", "-json"}},
		{[]string{"help", "backup", "check"}, []string{"Usage: kvstore-server backup check FILE", "-json"}},
		{[]string{"restore", "--help"}, []string{"Usage: kvstore-server restore FILE [--data-dir D] [--force]", "-data-dir", "-force"}},
		{[]string{"restore", "help"}, []string{"Usage: kvstore-server restore FILE", "-force"}},
		{[]string{"help", "restore"}, []string{"Usage: kvstore-server restore FILE", "-force"}},
		{[]string{"cluster", "recover", "--help"}, []string{"Usage: kvstore-server cluster recover", "-members", "-node-id", "-data-dir"}},
		{[]string{"--help"}, []string{"kvstore-server cluster recover"}},
	} {
		var stdout, stderr bytes.Buffer
		code, ok := runSubcommand(tt.args, &stdout, &stderr)
		if !ok {
			// The server's own flags: main runs ParseFlags.
			m := NewMain()
			m.Stdout = &stdout
			if err := m.ParseFlags(tt.args); errors.Is(err, flag.ErrHelp) {
				code = 0
			} else {
				code = 2
			}
		}
		if code != 0 || stderr.Len() != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 0 and nothing", tt.args, code, &stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%q: stdout lacks %q:\n%s", tt.args, w, &stdout)
			}
		}
	}
}

// TestUnknownCommandSaysWhatThenWhere: a wrong subcommand or flag of a
// subcommand gets the error, then one line pointing at its --help; exit 2.
func TestUnknownCommandSaysWhatThenWhere(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // all of stderr
	}{
		{[]string{"aof"}, "kvstore-server aof: missing command (want check or dump)\nRun 'kvstore-server aof --help' for usage.\n"},
		{[]string{"aof", "frob"}, "kvstore-server aof: unknown command \"frob\" (want check or dump)\nRun 'kvstore-server aof --help' for usage.\n"},
		{[]string{"help", "frob"}, "kvstore-server: unknown command \"frob\" (want aof, backup, cluster, restore or token)\nRun 'kvstore-server --help' for usage.\n"},
		{[]string{"token"}, "kvstore-server token: missing command (want new)\nRun 'kvstore-server token --help' for usage.\n"},
		{[]string{"token", "old"}, "kvstore-server token: unknown command \"old\" (want new)\nRun 'kvstore-server token --help' for usage.\n"},
		{[]string{"aof", "dump", "--fix"}, "kvstore-server aof dump: unknown flag --fix\nRun 'kvstore-server aof dump --help' for usage.\n"},
		{[]string{"restore"}, "kvstore-server restore: missing FILE\nRun 'kvstore-server restore --help' for usage.\n"},
		{[]string{"restore", "a", "b"}, "kvstore-server restore: unexpected argument \"b\"\nRun 'kvstore-server restore --help' for usage.\n"},
		{[]string{"backup", "check", "--json"}, "kvstore-server backup check: missing FILE\nRun 'kvstore-server backup check --help' for usage.\n"},
		{[]string{"aof", "check", "--force"}, "kvstore-server aof check: --force needs --fix\nRun 'kvstore-server aof check --help' for usage.\n"},
		{[]string{"aof", "check", "now"}, "kvstore-server aof check: unexpected argument \"now\"\nRun 'kvstore-server aof check --help' for usage.\n"},
	} {
		var stdout, stderr bytes.Buffer
		code, ok := runSubcommand(tt.args, &stdout, &stderr)
		if !ok || code != 2 || stderr.String() != tt.want || stdout.Len() != 0 {
			t.Errorf("%q: ok %v, exit %d, stdout %q, stderr\n%s\nwant exit 2 and stderr\n%s", tt.args, ok, code, &stdout, &stderr, tt.want)
		}
	}
}

// TestBinaryHelp: the real binary's help goes to stdout with exit 0.
func TestBinaryHelp(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, args := range [][]string{{"--help"}, {"help"}, {"aof", "--help"}, {"aof", "dump", "--help"}, {"token", "new", "--help"}} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(serverBinary(t), args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil || stderr.Len() != 0 || !strings.Contains(stdout.String(), "Usage:") {
			t.Errorf("%q: err %v, stderr %q, stdout\n%s", args, err, &stderr, &stdout)
		}
	}
}
