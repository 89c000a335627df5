package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"kvstore/actor"
	"kvstore/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startServer serves a fresh store on a loopback port.
func startServer(t *testing.T) string { return startServerWith(t, rpc.ServerOptions{}) }

// startServerWith is startServer with interceptors or TLS.
func startServerWith(t *testing.T, opts rpc.ServerOptions) string {
	t.Helper()
	a := actor.New(actor.Config{ExpireInterval: -1})
	srv := rpc.NewServer(rpc.NewService(a, rpc.Options{}), opts)
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
	var out, errOut bytes.Buffer
	code = run(append([]string{"--addr", addr}, args...), func(string) string { return "" }, &out, &errOut)
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
		{args: []string{"get", "k"}, wantCode: 0, wantOut: "v\n"},
		{args: []string{"set", "t", "1", "--ttl", "30s"}, wantCode: 0},
		{args: []string{"--ttl", "30s", "set", "t", "2"}, wantCode: 0},
		{args: []string{"get", "t"}, wantCode: 0, wantOut: "2\n"},
		{args: []string{"del", "k"}, wantCode: 0},
		{args: []string{"get", "k"}, wantCode: 1, wantErrSub: `key "k" not found`},
		{args: []string{"del", "k"}, wantCode: 0},
		{args: []string{"set", "", "v"}, wantCode: 2, wantErrSub: "error: InvalidArgument: key must not be empty"},
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

func TestUnreachableServerIsAnError(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	code, _, errOut := runClient(t, addr, "--timeout", "2s", "get", "k")
	if code != 2 || !strings.Contains(errOut, "Unavailable") {
		t.Fatalf("exit %d, stderr %q; want 2 and Unavailable", code, errOut)
	}
}

func TestTokenFlag(t *testing.T) {
	token, line, err := rpc.NewToken(rpc.RoleWrite, "")
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
	addr := startServerWith(t, rpc.ServerOptions{
		Unary: []grpc.UnaryServerInterceptor{auth.UnaryInterceptor()},
	})
	if code, _, errOut := runClient(t, addr, "set", "k", "v"); code != 2 || !strings.Contains(errOut, "Unauthenticated") {
		t.Fatalf("without a token: exit %d, %q; want 2 and Unauthenticated", code, errOut)
	}
	if code, _, errOut := runClient(t, addr, "--token", token, "set", "k", "v"); code != 0 {
		t.Fatalf("with --token: exit %d, %q", code, errOut)
	}
	var out, errOut bytes.Buffer
	env := map[string]string{"KVSTORE_TOKEN": token}
	if code := run([]string{"--addr", addr, "get", "k"}, func(k string) string { return env[k] }, &out, &errOut); code != 0 || out.String() != "v\n" {
		t.Fatalf("with KVSTORE_TOKEN: exit %d, %q %q", code, out.String(), errOut.String())
	}
	if code, _, errOut := runClient(t, addr, "--tls-ca", "/nonexistent.pem", "get", "k"); code != 2 || !strings.Contains(errOut, "nonexistent.pem") {
		t.Fatalf("bad --tls-ca: exit %d, %q", code, errOut)
	}
}
