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

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	kvstorepb "kvstore/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
	}))
}

func noEnv(string) string { return "" }

// MustRunMain starts an in-process server on a loopback port and closes
// it at cleanup, checking that Run returned nil.
func MustRunMain(tb testing.TB, args ...string) (*Main, *bytes.Buffer) {
	tb.Helper()
	m := NewMain()
	var stdout bytes.Buffer
	m.Stdout = &stdout
	m.Logger = slog.New(slog.DiscardHandler)
	args = append([]string{"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", tb.TempDir()}, args...)
	if err := m.ParseFlags(args, noEnv); err != nil {
		tb.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Run(context.Background()) }()
	select {
	case <-m.Ready():
	case err := <-errc:
		tb.Fatalf("Run: %v", err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Error(err)
		}
		if err := <-errc; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return m, &stdout
}

func dial(tb testing.TB, addr string) kvstorepb.KVStoreClient {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return kvstorepb.NewKVStoreClient(conn)
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
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.Listen == "localhost:50051" && c.DataDir == "./data" && c.ExpireInterval == time.Second &&
				c.MaxKeyBytes == 1024 && c.MaxValueBytes == 1<<20 && c.ShutdownGrace == 10*time.Second
		}},
		{name: "env", env: map[string]string{"KVSTORE_LISTEN": "127.0.0.1:1234", "KVSTORE_SHUTDOWN_GRACE": "3s"},
			check: func(c Config) bool { return c.Listen == "127.0.0.1:1234" && c.ShutdownGrace == 3*time.Second }},
		{name: "flag beats env", args: []string{"--listen", "127.0.0.1:9"}, env: map[string]string{"KVSTORE_LISTEN": "127.0.0.1:1234"},
			check: func(c Config) bool { return c.Listen == "127.0.0.1:9" }},
		{name: "bad env", env: map[string]string{"KVSTORE_MAX_KEY_BYTES": "lots"}, wantErr: "KVSTORE_MAX_KEY_BYTES"},
		{name: "bad duration", args: []string{"--expire-interval", "0s"}, wantErr: "--expire-interval must be positive"},
		{name: "negative key limit", args: []string{"--max-key-bytes", "-1"}, wantErr: "--max-key-bytes must be positive"},
		{name: "huge value limit", args: []string{"--max-value-bytes", "1000000000"}, wantErr: "--max-value-bytes must be between"},
		{name: "negative grace", args: []string{"--shutdown-grace", "-1s"}, wantErr: "--shutdown-grace must not be negative"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"serve"}, wantErr: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			m.Stdout = io.Discard
			err := m.ParseFlags(tt.args, func(k string) string { return tt.env[k] })
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
	if err := m.ParseFlags([]string{"--help"}, noEnv); !errors.Is(err, flag.ErrHelp) {
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
	stderr *bytes.Buffer
}

var portLine = regexp.MustCompile(`running on port (\d+)`)

func startBinary(tb testing.TB, args ...string) *serverProcess {
	tb.Helper()
	cmd := exec.Command(serverBinary(tb), append([]string{"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
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
			if err := p.cmd.Wait(); err != nil {
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
	out, err := exec.Command(serverBinary(t), "--max-key-bytes", "0").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("err = %v; want exit status 2", err)
	}
	if !strings.Contains(string(out), "--max-key-bytes must be positive") {
		t.Fatalf("output lacks the reason:\n%s", out)
	}
}
