package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"kvstore/actor"
	kvstorepb "kvstore/proto"
	"kvstore/rpc"
)

func TestMain(m *testing.M) {
	// The command reads KVSTORE_* itself: a developer's own settings must
	// not change what the tests run. Tests that want one use t.Setenv.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, envPrefix+"_") {
			os.Unsetenv(name)
		}
	}
	goleak.VerifyTestMain(m)
}

// startServer serves a fresh store on a loopback port.
func startServer(t *testing.T) string { return startServerWith(t, rpc.ServerOptions{}) }

// startServerWith is startServer with interceptors or TLS.
func startServerWith(t *testing.T, opts rpc.ServerOptions) string {
	t.Helper()
	return startServerLimits(t, rpc.Options{}, opts)
}

// startServerLimits is startServerWith with the service's own options
// (limits) too.
func startServerLimits(t *testing.T, svcOpts rpc.Options, opts rpc.ServerOptions) string {
	t.Helper()
	return startServerActor(t, actor.New(actor.Config{ExpireInterval: -1}), svcOpts, opts)
}

// startServerActor serves a's store; it stops a when the test ends.
func startServerActor(t *testing.T, a *actor.Actor, svcOpts rpc.Options, opts rpc.ServerOptions) string {
	t.Helper()
	srv := rpc.NewServer(rpc.NewService(a, svcOpts), opts)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		srv.Serve(lis)
		close(served)
	}()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-served
		a.Stop()
	})
	return lis.Addr().String()
}

func runClient(t *testing.T, addr string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runClientArgs(t, append([]string{"--addr", addr}, args...)...)
}

// runClientArgs is runClient without the --addr flag.
func runClientArgs(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return runClientIn(t, "", args...)
}

// runClientIn is runClientArgs with stdin.
func runClientIn(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestDemoPrintsTheSeedLines(t *testing.T) {
	addr := startServer(t)
	code, out, errOut := runClient(t, addr)
	want := `Testing Set operation...
Set response: Success=true, Error=

Testing Get operation...
Get response: Found=true, Value=test_value, Error=

Testing Get for non-existent key...
Get response: Found=false, Value=, Error=

Testing Delete operation...
Delete response: Success=true, Error=

Verifying deletion...
Get after delete: Found=false, Value=, Error=

All tests completed successfully!
`
	if code != 0 || out != want {
		t.Fatalf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errOut, out, want)
	}
}

func TestSubcommands(t *testing.T) {
	addr := startServer(t)
	steps := []struct {
		args       []string
		wantCode   int
		wantOut    string
		wantErrSub string
	}{
		{args: []string{"set", "k", "v"}, wantCode: 0},
		{args: []string{"get", "k"}, wantCode: 0, wantOut: "v"},
		{args: []string{"set", "t", "1", "--ttl", "30s"}, wantCode: 0},
		{args: []string{"--ttl", "30s", "set", "t", "2"}, wantCode: 0},
		{args: []string{"get", "t"}, wantCode: 0, wantOut: "2"},
		{args: []string{"del", "k"}, wantCode: 0, wantOut: "deleted \"k\"\n"},
		{args: []string{"get", "k"}, wantCode: 1, wantErrSub: `key "k" not found`},
		{args: []string{"del", "k"}, wantCode: 1, wantErrSub: `key "k" not found`},
		{args: []string{"set", "", "v"}, wantCode: 2, wantErrSub: "kvstore-client: InvalidArgument: key must not be empty"},
		{args: []string{"set", "k"}, wantCode: 2, wantErrSub: "set takes 2 argument(s), got 1"},
		{args: []string{"frob"}, wantCode: 2, wantErrSub: `unknown command "frob"`},
		{args: []string{"set", "k", "v", "--ttl", "1500ms"}, wantCode: 2, wantErrSub: "whole number of seconds"},
		{args: []string{"get", "k", "--ttl", "5s"}, wantCode: 2, wantErrSub: "--ttl applies to set only"},
	}
	for _, s := range steps {
		code, out, errOut := runClient(t, addr, s.args...)
		if code != s.wantCode || out != s.wantOut || !strings.Contains(errOut, s.wantErrSub) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				s.args, code, out, errOut, s.wantCode, s.wantOut, s.wantErrSub)
		}
	}
}

// TestGetLargeValue is the regression test for a get of a value over
// grpc's default 4 MiB receive limit: it failed with ResourceExhausted
// ("received message larger than max") although the server held it.
func TestGetLargeValue(t *testing.T) {
	addr := startServerLimits(t, rpc.Options{MaxValueBytes: 8 << 20}, rpc.ServerOptions{})
	value := strings.Repeat("v", 5<<20)
	if code, _, errOut := runClient(t, addr, "set", "big", value); code != 0 {
		t.Fatalf("set: exit %d, %q", code, errOut)
	}
	code, out, errOut := runClient(t, addr, "get", "big")
	if code != 0 || out != value {
		t.Fatalf("get: exit %d, stderr %q, %d bytes out; want 0 and the %d-byte value", code, errOut, len(out), len(value))
	}
}

func TestUnreachableServerIsAnError(t *testing.T) {
	code, _, errOut := runClient(t, deadAddr(t), "--timeout", "2s", "get", "k")
	if code != 2 || !strings.Contains(errOut, "Unavailable") {
		t.Fatalf("exit %d, stderr %q; want 2 and Unavailable", code, errOut)
	}
}

// writeRoleAuth makes a token of role and an Auth that knows only it.
func writeRoleAuth(t *testing.T, role rpc.Role) (string, *rpc.Auth) {
	t.Helper()
	token, line, err := rpc.NewToken(role, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err := rpc.LoadAuth(path)
	if err != nil {
		t.Fatal(err)
	}
	return token, auth
}

func TestTokenFlag(t *testing.T) {
	token, auth := writeRoleAuth(t, rpc.RoleWrite)
	addr := startServerWith(t, rpc.ServerOptions{
		Unary: []grpc.UnaryServerInterceptor{auth.UnaryInterceptor()},
	})
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 2 || !strings.Contains(errOut, "Unauthenticated") {
		t.Fatalf("without a token: exit %d, %q; want 2 and Unauthenticated", code, errOut)
	}
	if code, _, errOut := runClient(t, addr, "--token", token, "set", "k", "v"); code != 0 {
		t.Fatalf("with --token: exit %d, %q", code, errOut)
	}
	t.Setenv("KVSTORE_TOKEN", token)
	if code, out, errOut := runClient(t, addr, "get", "k"); code != 0 || out != "v" {
		t.Fatalf("with KVSTORE_TOKEN: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := runClient(t, addr, "--tls-ca", "/nonexistent.pem", "get", "k"); code != 2 || !strings.Contains(errOut, "nonexistent.pem") {
		t.Fatalf("bad --tls-ca: exit %d, %q", code, errOut)
	}
}

// deadAddr is a loopback address nothing listens on: dialing it is
// refused at once.
func deadAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestEnvironmentSetsFlagsAndFlagsWin(t *testing.T) {
	addr := startServer(t)
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 0 {
		t.Fatalf("set: exit %d, %q", code, errOut)
	}
	// A get: were the variable ignored, it would go to a server of the
	// developer's on the default address, which it must not change.
	t.Setenv("KVSTORE_ADDR", addr)
	if code, out, errOut := runClientArgs(t, "get", "k"); code != 0 || out != "v" {
		t.Fatalf("with KVSTORE_ADDR: exit %d, %q %q", code, out, errOut)
	}
	t.Setenv("KVSTORE_ADDR", deadAddr(t))
	if code, out, errOut := runClientArgs(t, "get", "k", "--addr", addr); code != 0 || out != "v" {
		t.Fatalf("--addr over KVSTORE_ADDR: exit %d, %q %q; want the flag to win", code, out, errOut)
	}
	if code, _, errOut := runClientArgs(t, "get", "k"); code != 2 || !strings.Contains(errOut, "Unavailable") {
		t.Fatalf("KVSTORE_ADDR of nothing: exit %d, %q; want 2 and Unavailable", code, errOut)
	}

	// A dashed name, and a variable that does not parse.
	t.Setenv("KVSTORE_TLS_CA", "/nonexistent-ca.pem")
	if code, _, errOut := runClient(t, addr, "get", "k"); code != 2 || !strings.Contains(errOut, "nonexistent-ca.pem") {
		t.Errorf("with KVSTORE_TLS_CA: exit %d, %q; want 2 naming the file", code, errOut)
	}
	os.Unsetenv("KVSTORE_TLS_CA")
	t.Setenv("KVSTORE_TIMEOUT", "soon")
	if code, _, errOut := runClient(t, addr, "get", "k"); code != 2 || !strings.Contains(errOut, "KVSTORE_TIMEOUT") {
		t.Errorf("KVSTORE_TIMEOUT=soon: exit %d, %q; want 2 naming the variable", code, errOut)
	}
	if code, _, errOut := runClient(t, addr, "get", "k", "--timeout", "2s"); code != 0 {
		t.Errorf("--timeout over KVSTORE_TIMEOUT=soon: exit %d, %q; want the flag to win", code, errOut)
	}
}

// KVSTORE_TTL is the TTL of every set; get and del ignore it, where the
// --ttl flag is refused.
func TestEnvironmentTTL(t *testing.T) {
	var lastTTL atomic.Int64
	addr := startServerWith(t, rpc.ServerOptions{
		Unary: []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if set, ok := req.(*kvstorepb.SetRequest); ok {
				lastTTL.Store(set.GetTtlSeconds())
			}
			return h(ctx, req)
		}},
	})
	t.Setenv("KVSTORE_TTL", "30s")
	for _, s := range []struct {
		args    []string
		wantTTL int64
	}{
		{[]string{"set", "k", "v"}, 30},
		{[]string{"set", "k", "v", "--ttl", "10s"}, 10},
		{[]string{"set", "k", "v", "--ttl", "0s"}, 0},
	} {
		lastTTL.Store(-1)
		if code, _, errOut := runClient(t, addr, s.args...); code != 0 || lastTTL.Load() != s.wantTTL {
			t.Errorf("%q with KVSTORE_TTL=30s: exit %d, %q, server saw TTL %d; want 0 and %d", s.args, code, errOut, lastTTL.Load(), s.wantTTL)
		}
	}
	if code, out, errOut := runClient(t, addr, "get", "k"); code != 0 || out != "v" {
		t.Errorf("get with KVSTORE_TTL=30s: exit %d, %q %q; want the variable ignored", code, out, errOut)
	}
	if code, _, errOut := runClient(t, addr, "get", "k", "--ttl", "5s"); code != 2 || !strings.Contains(errOut, "--ttl applies to set only") {
		t.Errorf("get --ttl 5s: exit %d, %q; want the flag refused", code, errOut)
	}
	t.Setenv("KVSTORE_TTL", "1500ms")
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 2 || !strings.Contains(errOut, "KVSTORE_TTL must be a non-negative whole number of seconds") {
		t.Errorf("KVSTORE_TTL=1500ms: exit %d, %q; want 2 naming the variable", code, errOut)
	}
}

func TestHelpNamesEveryVariable(t *testing.T) {
	code, out, _ := runClientArgs(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, name := range []string{"addr", "timeout", "tls-ca", "tls-cert", "tls-key", "tls-server-name", "token", "ttl"} { // not file
		if !strings.Contains(out, "  -"+name+" ") || !strings.Contains(out, "(env "+envName(name)+")") {
			t.Errorf("--help does not document --%s and %s", name, envName(name))
		}
	}
	for _, name := range []string{"file", "o", "json"} {
		if !strings.Contains(out, "  -"+name) || strings.Contains(out, envName(name)) {
			t.Errorf("--help: want --%s documented without a variable", name)
		}
	}
}

// TestSetFromStdinAndFile is the regression test for values that could
// only come from argv, which the kernel caps near 128 KiB: set KEY - reads
// stdin, --file reads a file, and get gives back the same bytes.
func TestSetFromStdinAndFile(t *testing.T) {
	addr := startServerLimits(t, rpc.Options{MaxValueBytes: 1 << 20}, rpc.ServerOptions{})
	big := strings.Repeat("0123456789abcdef", 32<<10) // 512 KiB, past ARG_MAX
	if code, _, errOut := runClientIn(t, big, "--addr", addr, "set", "in", "-"); code != 0 {
		t.Fatalf("set in -: exit %d, %q", code, errOut)
	}
	if code, out, errOut := runClient(t, addr, "get", "in"); code != 0 || out != big {
		t.Fatalf("get in: exit %d, %q, %d bytes; want the %d bytes from stdin", code, errOut, len(out), len(big))
	}

	path := filepath.Join(t.TempDir(), "value")
	value := "line one\nline two\n" // a trailing newline is part of the value
	if err := os.WriteFile(path, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runClient(t, addr, "set", "f", "--file", path, "--ttl", "60s"); code != 0 {
		t.Fatalf("set --file: exit %d, %q", code, errOut)
	}
	if code, out, errOut := runClient(t, addr, "get", "f"); code != 0 || out != value {
		t.Fatalf("get f: exit %d, %q, %q; want %q", code, errOut, out, value)
	}

	for _, s := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"set", "f", "v", "--file", path}, "set takes 1 argument(s), got 2"},
		{[]string{"get", "f", "--file", path}, "--file applies to set only"},
		{[]string{"set", "f", "--file", path + ".missing"}, "value.missing"},
	} {
		if code, _, errOut := runClient(t, addr, s.args...); code != 2 || !strings.Contains(errOut, s.wantErr) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", s.args, code, errOut, s.wantErr)
		}
	}
}

// ttyBuffer is a buffer that says it is a terminal.
type ttyBuffer struct{ bytes.Buffer }

func (*ttyBuffer) Stat() (os.FileInfo, error) { return charDevice{}, nil }

type charDevice struct{ os.FileInfo }

func (charDevice) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice | 0o620 }

// A person at a terminal gets a newline after the value; a pipe or file
// gets the value alone (TestSubcommands).
func TestGetAddsNewlineOnTerminal(t *testing.T) {
	addr := startServer(t)
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 0 {
		t.Fatalf("set: exit %d, %q", code, errOut)
	}
	var out ttyBuffer
	var errOut bytes.Buffer
	if code := run([]string{"--addr", addr, "get", "k"}, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != "v\n" {
		t.Fatalf("get to a terminal: exit %d, %q, stdout %q; want \"v\\n\"", code, errOut.String(), out.String())
	}
}

// TestInvalidUTF8IsRefusedBeforeSending is the regression test for a key
// or value that is not UTF-8: grpc failed it with Internal ("string field
// contains invalid UTF-8"), which reads as a server bug. The client now
// says what is wrong and sends nothing.
func TestInvalidUTF8IsRefusedBeforeSending(t *testing.T) {
	var calls atomic.Int64
	addr := startServerWith(t, rpc.ServerOptions{
		Unary: []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			calls.Add(1)
			return h(ctx, req)
		}},
	})
	path := filepath.Join(t.TempDir(), "latin1")
	if err := os.WriteFile(path, []byte("caf\xe9"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		stdin string
		args  []string
		what  string
	}{
		{"", []string{"set", "k", "caf\xe9"}, "value"},
		{"caf\xe9", []string{"set", "k", "-"}, "value"},
		{"", []string{"set", "k", "--file", path}, "value"},
		{"", []string{"set", "\xff", "v"}, "key"},
		{"", []string{"get", "\xff"}, "key"},
		{"", []string{"del", "\xff"}, "key"},
	} {
		code, _, errOut := runClientIn(t, s.stdin, append([]string{"--addr", addr}, s.args...)...)
		want := s.what + " is not valid UTF-8 (kvstore keys and values are UTF-8 strings)"
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", s.args, code, errOut, want)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the server saw %d requests; want none sent", n)
	}
}

// TestHelpAndUsageErrors is the regression test for undiscoverable help:
// help and help CMD were unknown commands. Help goes to stdout with exit
// 0; a usage error is the error and one line pointing at --help, exit 2.
func TestHelpAndUsageErrors(t *testing.T) {
	for _, s := range []struct {
		args    []string
		wantOut string // a line of the help
	}{
		{[]string{"--help"}, "kvstore-client [flags] set KEY VALUE"},
		{[]string{"-h"}, "kvstore-client [flags] get KEY"},
		{[]string{"help"}, "kvstore-client help [set|get|del|backup|info]"},
		{[]string{"--help"}, "kvstore-client [flags] backup -o FILE"},
		{[]string{"--help"}, "kvstore-client [flags] info [--json]"},
		{[]string{"help", "backup"}, "kvstore-client [flags] backup -o -"},
		{[]string{"backup", "--help"}, "never a partial backup"},
		{[]string{"backup", "-o", "f", "-h"}, "--timeout applies to each message"},
		{[]string{"help", "info"}, "kvstore-client [flags] info --json"},
		{[]string{"info", "--help"}, "GET /v1/admin/info"},
		{[]string{"help", "set"}, "kvstore-client [flags] set KEY --file F"},
		{[]string{"set", "--help"}, "kvstore-client [flags] set KEY - "},
		{[]string{"help", "get"}, "with a newline added on a terminal"},
		{[]string{"del", "k", "-h"}, "Exit 1 if there was no such key"},
	} {
		code, out, errOut := runClientArgs(t, s.args...)
		if code != 0 || !strings.Contains(out, s.wantOut) || !strings.Contains(out, "-addr address") || errOut != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout:\n%s\nwant exit 0 and help containing %q", s.args, code, errOut, out, s.wantOut)
		}
	}
	for _, s := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--bogus"}, "kvstore-client: flag provided but not defined: -bogus"},
		{[]string{"help", "frob"}, `kvstore-client: no help for "frob" (want set, get, del, backup, info or cluster)`},
		{[]string{"frob"}, `kvstore-client: unknown command "frob" (want set, get, del, backup, info or cluster)`},
		{[]string{"get"}, "kvstore-client: get takes 1 argument(s), got 0"},
	} {
		code, out, errOut := runClientArgs(t, s.args...)
		want := s.wantErr + "\nRun 'kvstore-client --help' for usage.\n"
		if code != 2 || out != "" || errOut != want {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing on stdout, stderr %q", s.args, code, out, errOut, want)
		}
	}
}

// TestDurationFlagsSayWhatToWrite is the regression test for --ttl 30 and
// --timeout 5, which failed with the flag package's bare "parse error".
func TestDurationFlagsSayWhatToWrite(t *testing.T) {
	for _, args := range [][]string{
		{"set", "k", "v", "--ttl", "30"},
		{"--timeout", "5", "get", "k"},
	} {
		code, _, errOut := runClientArgs(t, args...)
		if code != 2 || !strings.Contains(errOut, `want a duration like 30s, got "`) {
			t.Errorf("%q: exit %d, %q; want 2 and \"want a duration like 30s\"", args, code, errOut)
		}
	}
	t.Setenv("KVSTORE_TTL", "30")
	if code, _, errOut := runClientArgs(t, "set", "k", "v"); code != 2 || !strings.Contains(errOut, "KVSTORE_TTL") || !strings.Contains(errOut, "want a duration like 30s") {
		t.Errorf("KVSTORE_TTL=30: exit %d, %q; want 2 naming the variable and the form", code, errOut)
	}
}

// --file is one set's value: a KVSTORE_FILE in the environment must not
// turn every command into a read of that file.
func TestFileFlagHasNoVariable(t *testing.T) {
	addr := startServer(t)
	t.Setenv("KVSTORE_FILE", filepath.Join(t.TempDir(), "nonexistent"))
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 0 {
		t.Fatalf("set with KVSTORE_FILE: exit %d, %q", code, errOut)
	}
	if code, out, errOut := runClient(t, addr, "get", "k"); code != 0 || out != "v" {
		t.Fatalf("get with KVSTORE_FILE: exit %d, %q %q", code, out, errOut)
	}
}

// selfSignedTLS is a server certificate for 127.0.0.1, its own CA, with
// the CA written to a PEM file for --tls-ca.
func selfSignedTLS(t *testing.T) (cfg *tls.Config, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kvstore test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, caFile
}

// TestTLSMismatchIsNamed is the regression test for a plaintext client at
// a TLS port ("error reading server preface: connection reset by peer")
// and a TLS client at a plaintext port (a handshake error): the client
// now says which side speaks TLS and what to change.
func TestTLSMismatchIsNamed(t *testing.T) {
	cfg, caFile := selfSignedTLS(t)
	tlsAddr := startServerWith(t, rpc.ServerOptions{TLS: cfg})
	plainAddr := startServer(t)

	if code, out, errOut := runClient(t, tlsAddr, "--tls-ca", caFile, "get", "k"); code != 1 || out != "" {
		t.Fatalf("TLS to TLS: exit %d, %q %q; want 1 (not found)", code, out, errOut)
	}
	code, _, errOut := runClient(t, tlsAddr, "get", "k")
	if want := "kvstore-client: " + tlsAddr + ": server speaks TLS; pass --tls-ca"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("plaintext to TLS: exit %d, %q; want 2 and %q", code, errOut, want)
	}
	code, _, errOut = runClient(t, plainAddr, "--tls-ca", caFile, "set", "k", "v")
	if want := "kvstore-client: " + plainAddr + ": server does not speak TLS; drop --tls-ca"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("TLS to plaintext: exit %d, %q; want 2 and %q", code, errOut, want)
	}
	// The demo goes the same way.
	if code, _, errOut := runClient(t, tlsAddr); code != 2 || !strings.Contains(errOut, "server speaks TLS") {
		t.Errorf("demo, plaintext to TLS: exit %d, %q", code, errOut)
	}
	// Nothing listening is no mismatch: the gRPC error stands.
	if code, _, errOut := runClient(t, deadAddr(t), "--tls-ca", caFile, "get", "k"); code != 2 || !strings.Contains(errOut, "Unavailable") {
		t.Errorf("TLS to nothing: exit %d, %q; want the Unavailable error", code, errOut)
	}
}
